package debroot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/internal/filecopy"
	"github.com/cocobuild/cocobuild/internal/filehash"
	"github.com/cocobuild/cocobuild/internal/procgroup"
)

// ToolMissingError reports a program the package set needs that is not
// installed, with the Debian package that has it.
type ToolMissingError struct{ Tool, Package string }

func (e *ToolMissingError) Error() string {
	return fmt.Sprintf("%s not found: install the Debian package %s (apt-get install %s)", e.Tool, e.Package, e.Package)
}

// Tools are the programs Resolve and Install run, and their packages.
var Tools = [][2]string{{"mmdebstrap", "mmdebstrap"}, {"apt-ftparchive", "apt-utils"}}

// CheckTools reports the first missing tool.
func CheckTools() error {
	for _, t := range Tools {
		if _, err := exec.LookPath(t[0]); err != nil {
			return &ToolMissingError{Tool: t[0], Package: t[1]}
		}
	}
	return nil
}

// Version is mmdebstrap's version line, for step keys.
func Version(ctx context.Context) (string, error) {
	if err := CheckTools(); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "mmdebstrap", "--version")
	cmd.Env = childenv.Environ(ctx)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("mmdebstrap --version: %v: %s", err, bytes.TrimSpace(out))
	}
	return strings.TrimSpace(string(out)), nil
}

// Run is one invocation's settings.
type Run struct {
	Mode  Mode
	Epoch int64     // SOURCE_DATE_EPOCH
	Work  string    // an empty scratch directory, removed by the caller
	Log   io.Writer // mmdebstrap's output
}

// Leaks are the files a Debian installation writes that depend on the
// machine, the time or the build, and what the hooks do with them (beyond
// mmdebstrap's own cleanup of dpkg's and apt's logs, apt's lists and
// caches, ldconfig's aux-cache and the D-Bus machine-id, and its empty
// /etc/machine-id).
var Leaks = []string{
	`rm -f "$1"/etc/apt/sources.list.d/* && : > "$1"/etc/apt/sources.list`, // the build's sources
	`rm -f "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old`,           // backups
	`find "$1"/var/log "$1"/var/cache/apt -type f -delete`,                 // logs and caches
	`rm -f "$1"/etc/ssh/ssh_host_*`,                                        // host keys
	`printf 'localhost\n' > "$1"/etc/hostname && : > "$1"/etc/resolv.conf`, // copied from the build host
	`rm -f "$1"/etc/machine-id && : > "$1"/etc/machine-id`,
}

// shadowHook sets the date of the last password change in /etc/shadow to
// the epoch's day (shadow's tools take it from the clock).
func shadowHook(epoch int64) string {
	return fmt.Sprintf(`for f in "$1"/etc/shadow "$1"/etc/shadow-; do [ -f "$f" ] || continue; awk -F: -v OFS=: '$3 != "" { $3 = %d } { print }' "$f" > "$f.new" && cat "$f.new" > "$f" && rm "$f.new"; done; rm -f "$1"/etc/shadow- "$1"/etc/gshadow- "$1"/etc/passwd- "$1"/etc/group- "$1"/etc/subuid- "$1"/etc/subgid-`, epoch/86400)
}

// args are mmdebstrap's options for req; status is where the dpkg status of
// the installation (before excluded packages are purged) is copied.
func (r Run) args(req Request, statusDir string, first ...string) []string {
	a := append([]string{
		"--mode=" + r.Mode.Name, "--variant=" + req.Variant(), "--architectures=" + req.Arch,
		"--format=tar", "--aptopt=Acquire::Languages \"none\"",
		"--customize-hook=copy-out /var/lib/dpkg/status " + shellQuote(statusDir),
	}, first...)
	if len(req.Packages) > 0 {
		a = append(a, "--include="+strings.Join(sortedUnique(req.Packages), ","))
	}
	if len(req.Exclude) > 0 {
		a = append(a, "--customize-hook=chroot \"$1\" dpkg --purge --force-depends --force-remove-essential "+strings.Join(sortedUnique(req.Exclude), " "))
	}
	for _, h := range Leaks {
		a = append(a, "--customize-hook="+h)
	}
	return append(a, "--customize-hook="+shadowHook(r.Epoch))
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// mmdebstrap runs mmdebstrap with args.
func (r Run) mmdebstrap(ctx context.Context, args ...string) error {
	if err := CheckTools(); err != nil {
		return err
	}
	cmd := procgroup.Command(ctx, "mmdebstrap", args...)
	cmd.Dir = r.Work
	cmd.Env = append(cmd.Env, "LC_ALL=C", "SOURCE_DATE_EPOCH="+strconv.FormatInt(r.Epoch, 10), "TMPDIR="+r.Work)
	var tail bytes.Buffer
	w := io.Writer(&tail)
	if r.Log != nil {
		w = io.MultiWriter(r.Log, &tail)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mmdebstrap (%s mode): %v: %s", r.Mode.Name, err, lastLines(tail.String(), 3))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// Resolve installs req from the suite the sources file (deb822, apt's
// sources for that suite) describes, into outTar, and returns the set it
// installed with the paths of the .debs by sha256. apt checks every .deb
// against the suite's signed index.
func (r Run) Resolve(ctx context.Context, req Request, sourcesFile, outTar string) (*Set, map[string]string, error) {
	debs := filepath.Join(r.Work, "debs")
	status := filepath.Join(r.Work, "status")
	for _, d := range []string{debs, status} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, err
		}
	}
	args := append(r.args(req, status, "--skip=essential/unlink",
		"--customize-hook=sync-out /var/cache/apt/archives "+shellQuote(debs)),
		"--", req.Suite, outTar, sourcesFile)
	if err := r.mmdebstrap(ctx, args...); err != nil {
		return nil, nil, err
	}
	installed, err := readStatus(filepath.Join(status, "status"))
	if err != nil {
		return nil, nil, err
	}
	set := &Set{Suite: req.Suite, Request: req.Digest()}
	paths := map[string]string{}
	for _, p := range installed {
		f := filepath.Join(debs, DebFileName(p))
		sum, _, err := filehash.SHA256(f)
		if err != nil {
			return nil, nil, fmt.Errorf("package %s was installed but apt kept no .deb of it (%s): %w", p, filepath.Base(f), err)
		}
		p.SHA256 = sum
		paths[sum] = f
		set.Packages = append(set.Packages, p)
	}
	set.Sort()
	return set, paths, nil
}

// DebFileName is the name apt gives a package's .deb (':' in the version
// escaped as %3a).
func DebFileName(p Package) string {
	return p.Name + "_" + strings.ReplaceAll(p.Version, ":", "%3a") + "_" + p.Arch + ".deb"
}

// Install installs exactly set (resolved for req) into outTar: the .debs
// (debs maps their sha256 to their paths) form a local repository that is
// mmdebstrap's only source, and the installed packages are compared with
// the set afterwards.
func (r Run) Install(ctx context.Context, req Request, set *Set, debs map[string]string, outTar string) error {
	repo := filepath.Join(r.Work, "repo")
	status := filepath.Join(r.Work, "status")
	for _, d := range []string{filepath.Join(repo, "pool"), status} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, p := range set.Packages {
		src, ok := debs[p.SHA256]
		if !ok {
			return fmt.Errorf("package %s: no .deb with sha256 %s", p, p.SHA256)
		}
		dst := filepath.Join(repo, "pool", DebFileName(p))
		if err := os.Link(src, dst); err != nil {
			if _, err := filecopy.Copy(src, dst, 0o644); err != nil {
				return err
			}
		}
	}
	if err := ftparchive(ctx, repo, req.Suite, req.Arch); err != nil {
		return err
	}
	args := append(r.args(req, status),
		"--", req.Suite, outTar, "deb [trusted=yes] copy://"+repo+" "+req.Suite+" main")
	if err := r.mmdebstrap(ctx, args...); err != nil {
		return err
	}
	installed, err := readStatus(filepath.Join(status, "status"))
	if err != nil {
		return err
	}
	return compareSets(set.Packages, installed)
}

// compareSets says how the installed packages differ from the pinned ones.
func compareSets(pinned, installed []Package) error {
	key := func(p Package) string { return p.Name + ":" + p.Arch + "=" + p.Version }
	want := map[string]bool{}
	for _, p := range pinned {
		want[key(p)] = true
	}
	var extra []string
	for _, p := range installed {
		if !want[key(p)] {
			extra = append(extra, key(p))
		}
		delete(want, key(p))
	}
	var left []string
	for k := range want {
		left = append(left, k)
	}
	slices.Sort(left)
	if len(extra) > 0 || len(left) > 0 {
		return fmt.Errorf("the installation differs from the pinned set: installed but not pinned %v, pinned but not installed %v; run `cocobuild lock -update`", extra, left)
	}
	return nil
}

// ftparchive makes dir a repository of the .debs in dir/pool for suite
// and arch (component main): its Packages index and Release file.
func ftparchive(ctx context.Context, dir, suite, arch string) error {
	bin := filepath.Join(dir, "dists", suite, "main", "binary-"+arch)
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "apt-ftparchive", "packages", "pool")
	cmd.Dir, cmd.Env = dir, childenv.Environ(ctx)
	pk, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("apt-ftparchive packages: %w", err)
	}
	if err := os.WriteFile(filepath.Join(bin, "Packages"), pk, 0o644); err != nil {
		return err
	}
	cmd = exec.CommandContext(ctx, "apt-ftparchive", "-o", "APT::FTPArchive::Release::Suite="+suite,
		"-o", "APT::FTPArchive::Release::Codename="+suite, "-o", "APT::FTPArchive::Release::Architectures="+arch,
		"-o", "APT::FTPArchive::Release::Components=main", "release", ".")
	cmd.Dir, cmd.Env = filepath.Join(dir, "dists", suite), childenv.Environ(ctx)
	rel, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("apt-ftparchive release: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, "dists", suite, "Release"), rel, 0o644)
}

// readStatus reads the installed packages of a dpkg status file.
func readStatus(path string) ([]Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading dpkg's status: %w", err)
	}
	defer f.Close()
	return parseStatus(f)
}

func parseStatus(rd io.Reader) ([]Package, error) {
	var out []Package
	var p Package
	var st string
	flush := func() {
		if p.Name != "" && strings.HasSuffix(st, " installed") {
			out = append(out, p)
		}
		p, st = Package{}, ""
	}
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, " ") {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			p.Name = v
		case "Version":
			p.Version = v
		case "Architecture":
			p.Arch = v
		case "Status":
			st = v
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("dpkg's status lists no installed package")
	}
	return out, nil
}
