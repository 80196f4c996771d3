package initramfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/internal/gotool"
	"github.com/cocobuild/cocobuild/internal/newc"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/cocobuild/cocobuild/internal/procgroup"
	"github.com/cocobuild/cocobuild/recipes"
)

// Guest architecture: the images are for x86-64 guests.
const (
	guestGOOS   = "linux"
	guestGOARCH = "amd64"
)

// goEnv is the environment of every go command run for the guest: a
// static binary for the guest, modules on (so GODEBUG defaults follow the
// module's go line), no VCS stamping (it would tie the binary to a commit
// rather than to its sources). It starts from childenv.Environ: no signing
// secrets reach the go command.
func goEnv(ctx context.Context) []string {
	env := []string{}
	for _, kv := range childenv.Environ(ctx) {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOOS", "GOARCH", "CGO_ENABLED", "GO111MODULE", "GOFLAGS":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOOS="+guestGOOS, "GOARCH="+guestGOARCH, "CGO_ENABLED=0", "GO111MODULE=on", "GOFLAGS=-buildvcs=false")
}

// goCmd runs the go command in dir and returns its standard output. The go
// command and the compilers it starts form a process group that is killed
// when ctx is done.
func goCmd(ctx context.Context, dir string, args ...string) ([]byte, error) {
	goBin, err := gotool.Look()
	if err != nil {
		return nil, err
	}
	cmd := procgroup.Command(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = goEnv(ctx)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("go %s (in %s): %v: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// goListPackage is what goSourceDigest reads from `go list -json`.
type goListPackage struct {
	ImportPath string
	Dir        string
	Standard   bool
	DepOnly    bool
	Module     *struct {
		Path    string
		Version string
		Main    bool
		Replace *struct{ Path, Version string }
	}
	GoFiles, CgoFiles, SFiles, CFiles, HFiles, EmbedFiles, SysoFiles []string
	Error                                                            *struct{ Err string }
}

// goSourceDigest identifies everything a build of pkgs in the module at dir
// reads: the Go toolchain and its settings, the main module's go.mod (its go
// line sets GODEBUG defaults), and for each package outside the standard
// library either its module version (immutable in the module cache) or,
// for the main module and directory replacements, the content of its
// files. It also returns the import paths of pkgs. It runs the go command
// twice, so that a cached build stays well under a second. withGoMod
// leaves go.mod out for builds that do not read it (the busybox is built
// with modules off, from the versions go list resolved).
//
// The result is remembered in the build's probe memo while every file the
// go command's answers depend on is unchanged (the go binary, its
// configuration file, go.mod, go.sum, go.work anywhere above dir, and the
// directories and files of the local packages), so a rebuild with nothing
// changed runs no go command.
func goSourceDigest(ctx context.Context, dir string, pkgs []string, withGoMod bool) (string, []string, error) {
	goBin, err := gotool.Look()
	if err != nil {
		return "", nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	var goVars []string
	for _, kv := range goEnv(ctx) {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "GO") || strings.HasPrefix(k, "CGO_") || k == "PATH" || k == "HOME" || k == "XDG_CONFIG_HOME" {
			goVars = append(goVars, kv)
		}
	}
	sort.Strings(goVars)
	key := fmt.Sprintf("go-source %s %q %v %s %q", abs, pkgs, withGoMod, goBin, goVars)
	v, err := recipes.Memoize(ctx, key, func() (string, []string, error) {
		digest, paths, files, err := computeGoSourceDigest(ctx, abs, pkgs, withGoMod)
		if err != nil {
			return "", nil, err
		}
		goenv := filepath.Join(os.Getenv("HOME"), ".config", "go", "env")
		if d, err := os.UserConfigDir(); err == nil {
			goenv = filepath.Join(d, "go", "env")
		}
		files = append(files, goBin, goenv)
		for d := abs; ; d = filepath.Dir(d) {
			files = append(files, filepath.Join(d, "go.work"))
			if d == filepath.Dir(d) {
				break
			}
		}
		return digest + "\n" + strings.Join(paths, "\n"), files, nil
	})
	if err != nil {
		return "", nil, err
	}
	digest, rest, _ := strings.Cut(v, "\n")
	if rest == "" {
		return digest, nil, nil
	}
	return digest, strings.Split(rest, "\n"), nil
}

// computeGoSourceDigest is goSourceDigest without the memo; it also
// returns the files its answer depends on.
func computeGoSourceDigest(ctx context.Context, dir string, pkgs []string, withGoMod bool) (string, []string, []string, error) {
	h := sha256.New()
	env, err := goCmd(ctx, dir, "env", "GOVERSION", "GOEXPERIMENT", "GOAMD64", "GOOS", "GOARCH", "GOMOD")
	if err != nil {
		return "", nil, nil, err
	}
	var deps []string
	envLines := strings.Split(strings.TrimRight(string(env), "\n"), "\n")
	fmt.Fprintf(h, "env %q\n", envLines[:len(envLines)-1]) // GOMOD is a host path
	if mf := strings.TrimSpace(envLines[len(envLines)-1]); mf != "" && mf != os.DevNull {
		root := filepath.Dir(mf)
		deps = append(deps, mf, filepath.Join(root, "go.sum"), filepath.Join(root, "vendor", "modules.txt"))
		if withGoMod {
			b, err := os.ReadFile(mf)
			if err != nil {
				return "", nil, nil, err
			}
			sum := sha256.Sum256(b)
			fmt.Fprintf(h, "go.mod %x\n", sum)
		}
	}
	out, err := goCmd(ctx, dir, append([]string{"list", "-deps", "-json=ImportPath,Dir,Standard,DepOnly,Module,GoFiles,CgoFiles,SFiles,CFiles,HFiles,EmbedFiles,SysoFiles,Error", "--"}, pkgs...)...)
	if err != nil {
		return "", nil, nil, err
	}
	var importPaths []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goListPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return "", nil, nil, fmt.Errorf("reading go list output: %w", err)
		}
		if p.Error != nil {
			return "", nil, nil, fmt.Errorf("go list %s: %s", p.ImportPath, p.Error.Err)
		}
		if !p.DepOnly {
			importPaths = append(importPaths, p.ImportPath)
		}
		if p.Standard {
			continue // the toolchain version covers it
		}
		if m := p.Module; m != nil && !m.Main && (m.Replace == nil || m.Replace.Version != "") {
			v, path := m.Version, m.Path
			if m.Replace != nil {
				path, v = m.Replace.Path, m.Replace.Version
			}
			fmt.Fprintf(h, "pkg %s %s@%s\n", p.ImportPath, path, v)
			continue
		}
		fmt.Fprintf(h, "pkg %s local\n", p.ImportPath)
		deps = append(deps, p.Dir)
		var files []string
		for _, l := range [][]string{p.GoFiles, p.CgoFiles, p.SFiles, p.CFiles, p.HFiles, p.EmbedFiles, p.SysoFiles} {
			files = append(files, l...)
		}
		sort.Strings(files)
		for _, f := range files {
			deps = append(deps, filepath.Join(p.Dir, f))
			b, err := os.ReadFile(filepath.Join(p.Dir, f))
			if err != nil {
				return "", nil, nil, err
			}
			sum := sha256.Sum256(b)
			fmt.Fprintf(h, "file %s %x\n", f, sum)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), importPaths, deps, nil
}

// buildGoBinary builds pkg in the module at dir into out: static, trimmed
// paths, no build ID, no VCS stamp.
func buildGoBinary(ctx context.Context, dir, pkg, out string, log io.Writer) error {
	args := []string{"build", "-trimpath", "-ldflags=-buildid=", "-o", out, "--", pkg}
	fmt.Fprintf(log, "go %s\n", strings.Join(args, " "))
	_, err := goCmd(ctx, dir, args...)
	return err
}

// builderVersions are the versions of the u-root builder compiled into
// cocobuild; they join the busybox step's key.
func builderVersions() map[string]string {
	v := map[string]string{}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	for _, d := range bi.Deps {
		switch d.Path {
		case "github.com/u-root/mkuimage", "github.com/u-root/gobusybox/src":
			if d.Replace != nil {
				d = d.Replace
			}
			v[d.Path] = d.Version
		}
	}
	return v
}

// buildBusybox builds the u-root commands as one busybox binary with
// mkuimage, in a temporary directory below work, and writes the u-root part of the archive (bbin/bb, a link per
// command, /init and /bin/sh links) to out as a sorted newc archive.
func buildBusybox(ctx context.Context, dir string, commands []string, initCmd, shell, work, out string, log io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(work, "uroot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	goBin, goroot, err := goToolchain(ctx, dir)
	if err != nil {
		return err
	}
	raw := filepath.Join(tmp, "uroot.cpio")
	req := urootRequest{Dir: dir, Commands: commands, Init: initCmd, Shell: shell, TempDir: tmp, Out: raw, GoBin: goBin, GOROOT: goroot}
	if err := mkuimage(ctx, req, log); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("building the u-root busybox (commands resolve in the Go module at %s; it needs github.com/u-root/u-root in its go.mod, kept by a tools.go that imports the commands): %w", dir, err)
	}
	f, err := os.Open(raw)
	if err != nil {
		return err
	}
	defer f.Close()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(f))
	if err != nil {
		return fmt.Errorf("reading mkuimage's archive: %w", err)
	}
	t := newTree()
	for _, r := range recs {
		e, err := entryFromRecord(r, "u-root")
		if err != nil {
			return err
		}
		// mkuimage takes modes from the files it built, which carry the
		// umask: normalise them so that the umask never reaches the image.
		switch e.mode & newc.TypeMask {
		case newc.TypeReg:
			perm := uint64(0o644)
			if e.mode&0o111 != 0 {
				perm = 0o755
			}
			e.mode = newc.TypeReg | perm
		case newc.TypeDir:
			e.mode = newc.TypeDir | 0o755
		}
		if err := t.add(e, false); err != nil {
			return err
		}
	}
	var buf bytes.Buffer
	if err := t.writeCPIO(&buf, 0); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// entryFromRecord turns a cpio record read from an archive into an entry.
func entryFromRecord(r cpio.Record, origin string) (*entry, error) {
	name, err := cleanName(r.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", origin, err)
	}
	e := &entry{name: name, mode: r.Mode, rmajor: r.Rmajor, rminor: r.Rminor, origin: origin}
	if t := r.Mode & newc.TypeMask; (t == newc.TypeReg || t == newc.TypeLink) && r.ReaderAt != nil {
		b := make([]byte, r.FileSize)
		if _, err := r.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF) && uint64(len(b)) == r.FileSize) {
			return nil, fmt.Errorf("%s: reading %s: %w", origin, r.Name, err)
		}
		e.data = b
	}
	return e, nil
}
