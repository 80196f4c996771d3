package kernel

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cocobuild/cocobuild/internal/decompress"
	"github.com/cocobuild/cocobuild/internal/procgroup"
	"github.com/cocobuild/cocobuild/kernel/internal/kconfig"
)

// kbuild runs the commands of one kernel build in a work directory.
type kbuild struct {
	work    string // absolute; everything lives below it
	tarball string // the source tarball (outside work)
	src     string // the source tree
	obj     string // the object directory (O=)
	epoch   int64
	jobs    int
	log     io.Writer // the raw log, as it happens
	// progress counts Kbuild's command lines ("  CC      kernel/fork.o").
	progress func(done, total int64)
	done     int64
	// onStage, when set, hears of each stage (extract, configure, build,
	// install modules) as it starts.
	onStage func(stage, unit string)
	// sections are the deterministic log: per command, its output lines
	// grouped by target and sorted.
	sections []string
}

func newKbuild(work string, epoch int64, jobs int, log io.Writer, progress func(done, total int64)) (*kbuild, error) {
	work, err := filepath.Abs(work)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"home", "tmp"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			return nil, err
		}
	}
	if jobs < 1 {
		jobs = 1
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	return &kbuild{work: work, epoch: epoch, jobs: jobs, log: log, progress: progress}, nil
}

// env is the complete environment of every command.
func (k *kbuild) env() []string {
	prefixMap := "-ffile-prefix-map=" + k.work + "/="
	return []string{
		"PATH=" + BuildPath,
		"HOME=" + filepath.Join(k.work, "home"),
		"TMPDIR=" + filepath.Join(k.work, "tmp"),
		"LC_ALL=C",
		"LANG=C",
		"TZ=UTC",
		"SOURCE_DATE_EPOCH=" + strconv.FormatInt(k.epoch, 10),
		"KBUILD_BUILD_TIMESTAMP=" + KbuildTimestamp(k.epoch),
		"KBUILD_BUILD_USER=" + BuildUser,
		"KBUILD_BUILD_HOST=" + BuildHost,
		"KBUILD_BUILD_VERSION=" + BuildVersion,
		"LOCALVERSION=",
		"KCFLAGS=" + prefixMap,
		"KAFLAGS=" + prefixMap,
	}
}

// stage notes a stage in the raw log.
func (k *kbuild) stage(format string, args ...any) {
	fmt.Fprintf(k.log, "== %s\n", fmt.Sprintf(format, args...))
}

// enter starts a stage the user sees (the step's progress line); the count
// of Kbuild commands starts again from zero.
func (k *kbuild) enter(stage string) {
	k.done = 0
	if k.onStage != nil {
		k.onStage(stage, "Kbuild commands")
	}
}

// kbuildLine is a Kbuild command line: two spaces, a tag, the target.
var kbuildLine = regexp.MustCompile(`^  [A-Z][A-Z0-9_-]* +\S`)

// makeLine is a message of make itself, e.g. "make[2]: Nothing to be done".
var makeLine = regexp.MustCompile(`^g?make(\[\d+\])?: `)

// run runs one command in dir; its output goes to the raw log as it
// comes and, grouped by Kbuild command line and sorted (so that the
// order of parallel jobs does not show), into the deterministic log.
func (k *kbuild) run(ctx context.Context, dir string, args ...string) error {
	title := k.title(args)
	k.stage("%s", k.clean(title))
	// make and its jobs form a process group, killed on cancellation; make
	// also dies with this process (a killed build leaves no make behind).
	cmd := procgroup.Command(ctx, args[0], args[1:]...)
	if p, ok := lookPath(args[0]); ok {
		cmd.Path = p
	}
	cmd.Dir, cmd.Env = dir, k.env()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var lines []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			l := sc.Text()
			fmt.Fprintln(k.log, l)
			if kbuildLine.MatchString(l) {
				k.done++
				k.progress(k.done, 0)
			}
			lines = append(lines, k.clean(l))
		}
		io.Copy(io.Discard, pr)
	}()
	start := time.Now()
	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	pw.Close()
	wg.Wait()
	if ps := cmd.ProcessState; ps != nil {
		// Only in the raw log: times differ from build to build.
		fmt.Fprintf(k.log, "== %s: %v wall, %v user, %v system\n", args[0], time.Since(start).Round(time.Second),
			ps.UserTime().Round(time.Second), ps.SystemTime().Round(time.Second))
	}
	k.sections = append(k.sections, "== "+k.clean(title)+"\n"+sortedByTarget(lines))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		tail := lines
		if len(tail) > 25 {
			tail = tail[len(tail)-25:]
		}
		return fmt.Errorf("%s: %w\n%s", k.clean(title), err, strings.Join(tail, "\n"))
	}
	return nil
}

// title is a command's line as the logs show it, with the job count
// written $JOBS: it is the host's core count, which must not make the
// deterministic log of one machine differ from another's.
func (k *kbuild) title(args []string) string {
	jobs := "-j" + strconv.Itoa(k.jobs)
	t := make([]string, len(args))
	for i, a := range args {
		if a == jobs {
			a = "-j$JOBS"
		}
		t[i] = a
	}
	return strings.Join(t, " ")
}

// clean replaces the work directory in a line by $WORK and the tarball's
// path by $TARBALL.
func (k *kbuild) clean(s string) string {
	if k.tarball != "" {
		s = strings.ReplaceAll(s, k.tarball, "$TARBALL")
	}
	return strings.ReplaceAll(s, k.work, "$WORK")
}

// sortedByTarget groups lines into blocks that each start at a Kbuild
// command line (the lines after it, such as compiler warnings, belong to
// it: make runs with --output-sync=target) and sorts the blocks. Lines
// before the first command line stay first.
func sortedByTarget(lines []string) string {
	var head []string
	var blocks []string
	var cur []string
	flush := func() {
		if cur != nil {
			blocks = append(blocks, strings.Join(cur, "\n"))
		}
		cur = nil
	}
	for _, l := range lines {
		if kbuildLine.MatchString(l) {
			flush()
			cur = []string{l}
			continue
		}
		if makeLine.MatchString(l) {
			// make's own messages come between targets' output.
			flush()
			blocks = append(blocks, l)
			continue
		}
		if cur == nil {
			head = append(head, l)
		} else {
			cur = append(cur, l)
		}
	}
	flush()
	sort.Strings(blocks)
	var b strings.Builder
	for _, l := range head {
		b.WriteString(l + "\n")
	}
	for _, bl := range blocks {
		b.WriteString(bl + "\n")
	}
	return b.String()
}

// Log returns the deterministic build log.
func (k *kbuild) Log() []byte { return []byte(strings.Join(k.sections, "")) }

// make runs make in the source tree with O= and ARCH=.
func (k *kbuild) make(ctx context.Context, args ...string) error {
	full := append([]string{"make", "O=" + k.obj, "ARCH=" + Arch, "--output-sync=target", "--no-print-directory"}, args...)
	return k.run(ctx, k.src, full...)
}

// extract unpacks a source tarball (any compression GNU tar recognises)
// and sets src and obj. The tree is the single top-level directory holding
// a Makefile, or the top of the archive.
func (k *kbuild) extract(ctx context.Context, tarball string) error {
	k.tarball = tarball
	dst := filepath.Join(k.work, "extract")
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	args := []string{"tar", "-xf", tarball, "-C", dst, "--no-same-owner", "--delay-directory-restore"}
	if isXZ(tarball) {
		// The xz format's blocks decompress in parallel (xz -T0: one
		// thread per core); tar alone runs a single-threaded xz while a
		// core idles. The files are the same.
		args = append(args, "--use-compress-program=xz -T0")
	}
	if err := k.run(ctx, k.work, args...); err != nil {
		return fmt.Errorf("extracting the kernel source: %w", err)
	}
	top := dst
	if _, err := os.Stat(filepath.Join(dst, "Makefile")); err != nil {
		ents, err := os.ReadDir(dst)
		if err != nil {
			return err
		}
		if len(ents) != 1 || !ents[0].IsDir() {
			return errors.New("the source tarball holds neither a Makefile at its top nor a single directory: not a kernel source tree")
		}
		top = filepath.Join(dst, ents[0].Name())
	}
	for _, f := range []string{"Makefile", "Kconfig", "scripts/kconfig/merge_config.sh"} {
		if _, err := os.Stat(filepath.Join(top, f)); err != nil {
			return fmt.Errorf("the source tarball has no %s: not a kernel source tree", f)
		}
	}
	k.src = filepath.Join(k.work, "linux")
	if err := os.Rename(top, k.src); err != nil {
		return err
	}
	k.obj = filepath.Join(k.src, objName)
	return os.Mkdir(k.obj, 0o755)
}

// isXZ says whether a file is xz-compressed (decompress.Sniff of its
// first bytes).
func isXZ(name string) bool {
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, decompress.MagicLen)
	n, _ := io.ReadFull(f, head)
	return decompress.Sniff(head[:n]) == decompress.XZ
}

// Base configurations a recipe may name; anything else is a file.
var baseTargets = []string{"tinyconfig", "defconfig", "allnoconfig"}

// configure makes the base configuration, merges the fragments with the
// kernel's merge_config.sh -m, resolves with olddefconfig and checks that
// every fragment option survived. baseFile is used when base is "".
func (k *kbuild) configure(ctx context.Context, base string, baseFile []byte, frags []Fragment) ([]byte, error) {
	dotConfig := filepath.Join(k.obj, ".config")
	if base != "" {
		// -j: the first configuration target compiles Kconfig's conf
		// program, which need not take one core only.
		if err := k.make(ctx, "-j"+strconv.Itoa(k.jobs), base); err != nil {
			return nil, err
		}
	} else if err := os.WriteFile(dotConfig, baseFile, 0o644); err != nil {
		return nil, err
	}
	if len(frags) > 0 {
		dir := filepath.Join(k.obj, "cocobuild-fragments")
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, err
		}
		args := []string{"sh", filepath.Join(k.src, "scripts/kconfig/merge_config.sh"), "-m", "-O", ".", ".config"}
		for i, f := range frags {
			name := fmt.Sprintf("%02d-%s.config", i+1, safeName(f.Name))
			if err := os.WriteFile(filepath.Join(dir, name), f.Data, 0o644); err != nil {
				return nil, err
			}
			args = append(args, "cocobuild-fragments/"+name)
		}
		if err := k.run(ctx, k.obj, args...); err != nil {
			return nil, err
		}
	}
	if err := k.make(ctx, "-j"+strconv.Itoa(k.jobs), "olddefconfig"); err != nil {
		return nil, err
	}
	resolved, err := os.ReadFile(dotConfig)
	if err != nil {
		return nil, err
	}
	if err := checkResolved(frags, resolved, nil); err != nil {
		var ue *UnsatisfiedError
		if errors.As(err, &ue) {
			k.stage("explaining %d unsatisfied fragment options from the Kconfig files", len(ue.Options))
			idx, perr := kconfig.Parse(os.DirFS(k.src), "Kconfig", map[string]string{"SRCARCH": "x86", "ARCH": Arch})
			if perr != nil {
				fmt.Fprintf(k.log, "reading the Kconfig files: %v\n", perr)
				return nil, err
			}
			return nil, checkResolved(frags, resolved, idx)
		}
		return nil, err
	}
	return resolved, nil
}

// safeName keeps letters, digits, '-', '_' and '.' of a fragment name.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

// release reads the kernel release ("6.12.117") that the build wrote to
// include/config/kernel.release (what `make kernelrelease` prints, without
// another pass over the Makefiles before the compile).
func (k *kbuild) release() (string, error) {
	b, err := os.ReadFile(filepath.Join(k.obj, "include", "config", "kernel.release"))
	if err != nil {
		return "", fmt.Errorf("the kernel release: %w", err)
	}
	r := strings.TrimSpace(string(b))
	if r == "" || strings.ContainsAny(r, " \t\n/") {
		return "", fmt.Errorf("include/config/kernel.release holds %q", r)
	}
	return r, nil
}

// hasModules says whether a resolved configuration builds loadable modules.
func hasModules(config []byte) bool {
	entries, err := parseConfig(config)
	if err != nil {
		return false
	}
	cfg := values(entries)
	if cfg["MODULES"] != "y" {
		return false
	}
	for _, v := range cfg {
		if v == "m" {
			return true
		}
	}
	return false
}

// compile builds the bzImage (and modules) and installs the modules below
// work/modules; it returns the bzImage path, the kernel release and the
// module tree root ("" when the configuration has none).
func (k *kbuild) compile(ctx context.Context, config []byte) (bzImage, release, modRoot string, err error) {
	targets := []string{"bzImage"}
	mods := hasModules(config)
	if mods {
		targets = append(targets, "modules")
	}
	if err := k.make(ctx, append([]string{"-j" + strconv.Itoa(k.jobs)}, targets...)...); err != nil {
		return "", "", "", err
	}
	if release, err = k.release(); err != nil {
		return "", "", "", err
	}
	k.stage("built %s", release)
	bzImage = filepath.Join(k.obj, "arch/x86/boot/bzImage")
	if !mods {
		return bzImage, release, "", nil
	}
	inst := filepath.Join(k.work, "modules")
	k.enter("install modules")
	// depmod is not run (DEPMOD=true): its indexes would depend on the
	// host's kmod; consumers resolve dependencies from modinfo.
	if err := k.make(ctx, "INSTALL_MOD_PATH="+inst, "DEPMOD=true", "modules_install"); err != nil {
		return "", "", "", err
	}
	return bzImage, release, filepath.Join(inst, "lib", "modules", release), nil
}

// buildResult is what Build leaves in the work directory.
type buildResult struct {
	BzImage    string
	Config     []byte // the resolved .config
	Release    string
	ModuleRoot string // lib/modules/RELEASE, "" without modules
}

// Build extracts the tarball, configures (base, fragments, olddefconfig,
// check) and compiles.
func (k *kbuild) Build(ctx context.Context, tarball, base string, baseFile []byte, frags []Fragment) (*buildResult, error) {
	k.enter("extract")
	k.stage("extract")
	if err := k.extract(ctx, tarball); err != nil {
		return nil, err
	}
	k.enter("configure")
	config, err := k.configure(ctx, base, baseFile, frags)
	if err != nil {
		return nil, err
	}
	k.enter("build")
	k.stage("build")
	bz, release, mods, err := k.compile(ctx, config)
	if err != nil {
		return nil, err
	}
	after, err := os.ReadFile(filepath.Join(k.obj, ".config"))
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(after, config) {
		return nil, errors.New("the build changed the resolved .config (the toolchain changed its answers to Kconfig's tests during the build?)")
	}
	return &buildResult{BzImage: bz, Config: config, Release: release, ModuleRoot: mods}, nil
}
