package repro

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/repro/diff"
)

// Options configure Repro.
type Options struct {
	// Exe is the cocobuild binary that runs the two builds.
	Exe string
	// Args are extra arguments for both builds (-var, -var-file, --locked…).
	Args []string
	// RemoteArgs are the first build's remote cache arguments
	// (--cache-from, --cache-to). The second build gets --cache-from none
	// --cache-to none, whatever the environment or the recipe say: it
	// builds everything, so that it checks the first.
	RemoteArgs []string
	// Env is added to both builds' environment.
	Env []string
	// CacheDir is the (warm) cache of the first build; "" for the default.
	CacheDir string
	// WorkDir holds the two builds; "" for a new temporary directory,
	// removed afterwards unless Keep.
	WorkDir string
	Keep    bool
	// Reuse names blocks (e.g. "kernel.guest") whose step results build b
	// takes from build a's cache instead of building them again: for slow
	// blocks whose reproducibility is checked by other means, such as a
	// kernel compared with a published digest. The report says so.
	Reuse []string
	// Log receives the builds' output.
	Log io.Writer
	// Limits bound the comparison of the two outputs (nil: the defaults).
	Limits *limits.Values
}

// Perturbation is one way the second build's surroundings differ.
type Perturbation struct {
	Name    string `json:"name"`
	A       string `json:"a"`
	B       string `json:"b"`
	Applied bool   `json:"applied"`
	Note    string `json:"note,omitempty"`
}

// Report is what Repro found.
type Report struct {
	Recipe        string         `json:"recipe"`
	Perturbations []Perturbation `json:"perturbations"`
	OutA          string         `json:"out_a"`
	OutB          string         `json:"out_b"`
	Seconds       [2]float64     `json:"seconds"`
	Diff          *diff.Report   `json:"diff"`
}

// Reproducible says the two builds gave identical trees.
func (r *Report) Reproducible() bool { return r.Diff != nil && r.Diff.Identical() }

// otherUID is the uid the second build runs as when cocobuild runs as root.
const otherUID = 65534

// Run builds the recipe twice, the second time with every perturbation
// that could leak into an output changed — build path, working directory,
// TZ, locale, umask, HOME, TMPDIR, GOMAXPROCS, a cold cache and, as root,
// another uid — and compares the two output trees. Both builds run without
// publishing (build --no-publish): they sign nothing, need no private key
// and append to none of the recipe's feeds.
func Run(ctx context.Context, recipe string, opts Options) (*Report, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	absRecipe, err := filepath.Abs(recipe)
	if err != nil {
		return nil, err
	}
	// The two builds need no key (they only compare what they build): they
	// get none of the secrets the recipe or its arguments name.
	ctx = childenv.WithSecrets(ctx, reproSecrets(absRecipe, opts.Args)...)
	work := opts.WorkDir
	if work == "" {
		work, err = os.MkdirTemp("", "cocobuild-repro-")
		if err != nil {
			return nil, err
		}
		if !opts.Keep {
			defer os.RemoveAll(work)
		}
	}
	a, b := filepath.Join(work, "a"), filepath.Join(work, "b", "elsewhere", "deeper")
	for _, d := range []string{a, b, filepath.Join(b, "home"), filepath.Join(b, "tmp"), filepath.Join(b, "cache")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	rep := &Report{Recipe: recipe, OutA: filepath.Join(a, "out"), OutB: filepath.Join(b, "out")}
	cacheA := opts.CacheDir
	if cacheA == "" {
		if cacheA, err = builder.DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	cwd, _ := os.Getwd()
	p := func(name, va, vb string) {
		rep.Perturbations = append(rep.Perturbations, Perturbation{Name: name, A: va, B: vb, Applied: true})
	}
	p("output path", rep.OutA, rep.OutB)
	p("working directory", cwd, b)
	cold := " (cold)"
	if len(opts.Reuse) > 0 {
		cold = " (cold, except the steps of " + strings.Join(opts.Reuse, ", ") + ", copied from build a's: --reuse)"
	}
	p("cache", cacheA+" (warm)", filepath.Join(b, "cache")+cold)
	p("TZ", os.Getenv("TZ"), "Pacific/Chatham")
	p("LANG/LC_ALL", os.Getenv("LC_ALL"), "fr_FR.UTF-8")
	p("umask", "as set", "0027")
	p("HOME", os.Getenv("HOME"), filepath.Join(b, "home"))
	p("TMPDIR", os.Getenv("TMPDIR"), filepath.Join(b, "tmp"))
	p("GOMAXPROCS", os.Getenv("GOMAXPROCS"), "1")

	envB := append(childenv.Environ(ctx), opts.Env...)
	envB = append(envB, "TZ=Pacific/Chatham", "LANG=fr_FR.UTF-8", "LC_ALL=fr_FR.UTF-8", "HOME="+filepath.Join(b, "home"),
		"TMPDIR="+filepath.Join(b, "tmp"), "GOMAXPROCS=1", "GOCACHE="+filepath.Join(b, "home", "gocache"))
	exeB := opts.Exe
	var cred *syscall.Credential
	uidPert := Perturbation{Name: "uid", A: fmt.Sprint(os.Getuid()), B: fmt.Sprint(otherUID)}
	if os.Getuid() == 0 {
		if why := readableByOthers(absRecipe); why != "" {
			uidPert.Note = "skipped: " + why
		} else if why := varPathsReadableByOthers(opts.Args); why != "" {
			uidPert.Note = "skipped: " + why
		} else {
			// The other user needs its own copy of the binary and a
			// writable tree; it gets its own Go module cache too.
			exeB = filepath.Join(work, "b", "cocobuild")
			if err := copyExe(opts.Exe, exeB); err != nil {
				return nil, err
			}
			os.Chmod(work, 0o755)
			cred = &syscall.Credential{Uid: otherUID, Gid: otherUID}
			envB = append(envB, "GOMODCACHE="+filepath.Join(b, "home", "gomod"))
			uidPert.Applied = true
		}
	} else {
		uidPert.Note = "skipped: not running as root, so the second build cannot take another uid"
	}
	rep.Perturbations = append(rep.Perturbations, uidPert)

	args := func(cache, out string, remote []string) []string {
		// Without publishing: nothing is signed (no private key is needed)
		// and the recipe's feeds are never touched; the outputs compared
		// are the build's, which the signed documents only restate.
		a := append([]string{"build", "--no-publish", "--json", "--cache-dir", cache, "-o", out}, remote...)
		return append(append(a, opts.Args...), absRecipe)
	}
	fmt.Fprintf(opts.Log, "== build a (warm cache %s)\n", cacheA)
	start := time.Now()
	envA := append(childenv.Environ(ctx), opts.Env...)
	var reportA bytes.Buffer
	if err := runBuild(ctx, opts.Exe, args(cacheA, rep.OutA, opts.RemoteArgs), cwd, envA, "", nil, io.MultiWriter(opts.Log, &reportA)); err != nil {
		return rep, fmt.Errorf("build a: %w", err)
	}
	rep.Seconds[0] = time.Since(start).Seconds()
	if err := reuseSteps(reportA.Bytes(), opts.Reuse, cacheA, filepath.Join(b, "cache")); err != nil {
		return rep, err
	}
	if cred != nil {
		if err := chownTree(filepath.Join(work, "b"), otherUID); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(opts.Log, "== build b (perturbed, cold cache)\n")
	start = time.Now()
	if err := runBuild(ctx, exeB, args(filepath.Join(b, "cache"), rep.OutB, []string{"--cache-from", "none", "--cache-to", "none"}), b, envB, "027", cred, opts.Log); err != nil {
		return rep, fmt.Errorf("build b (perturbed): %w", err)
	}
	rep.Seconds[1] = time.Since(start).Seconds()
	rep.Diff, err = diff.Comparer{Limits: opts.Limits, Context: ctx}.Trees(rep.OutA, rep.OutB)
	return rep, err
}

// reproSecrets returns the variables that env:// references name in the
// recipe's files, its -var-file files and the arguments.
func reproSecrets(recipe string, args []string) []string {
	var varFiles []string
	for i, a := range args {
		a = "-" + strings.TrimLeft(a, "-")
		if a == "-var-file" && i+1 < len(args) {
			varFiles = append(varFiles, args[i+1])
		} else if f, ok := strings.CutPrefix(a, "-var-file="); ok {
			varFiles = append(varFiles, f)
		}
	}
	texts := slices.Clone(args)
	for _, src := range recipes.ReadSources(recipe, varFiles) {
		texts = append(texts, string(src))
	}
	return childenv.RefNames(texts...)
}

// reuseSteps copies the cache entries of the steps of the named blocks,
// as build a's JSON report lists them, from cache a to cache b.
func reuseSteps(report []byte, blocks []string, cacheA, cacheB string) error {
	if len(blocks) == 0 {
		return nil
	}
	var res struct {
		Steps []builder.StepReport `json:"steps"`
	}
	if err := json.Unmarshal(report, &res); err != nil {
		return fmt.Errorf("reading build a's report: %w", err)
	}
	from, err := builder.OpenCache(cacheA)
	if err != nil {
		return err
	}
	to, err := builder.OpenCache(cacheB)
	if err != nil {
		return err
	}
	return builder.ImportBlocks(to, from, res.Steps, blocks)
}

// runBuild runs exe with args; umask, when set, is applied through the shell.
func runBuild(ctx context.Context, exe string, args []string, dir string, env []string, umask string, cred *syscall.Credential, log io.Writer) error {
	var cmd *exec.Cmd
	if umask != "" {
		cmd = exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", "umask " + umask + " && exec \"$0\" \"$@\"", exe}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, exe, args...)
	}
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, log, log
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	// On cancellation the child cocobuild is interrupted, as a user's
	// Ctrl-C would: it stops its steps and their process groups itself.
	// One that has not exited after WaitDelay is killed.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 4 * time.Second
	return cmd.Run()
}

// readableByOthers explains why another uid could not read the recipe's
// directory, or returns "".
func readableByOthers(recipe string) string {
	dir := recipe
	if st, err := os.Stat(recipe); err == nil && !st.IsDir() {
		dir = filepath.Dir(recipe)
	}
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err.Error()
		}
		if st.Mode().Perm()&0o005 != 0o005 {
			return fmt.Sprintf("%s is not readable by other users (mode %v)", d, st.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return ""
		}
	}
}

// varPathsReadableByOthers checks the files that -var values name (such as
// acpi_qemu's QEMU): the other user of build b must reach them. It returns
// why not, or "".
func varPathsReadableByOthers(args []string) string {
	for i, a := range args {
		v, ok := strings.CutPrefix(a, "-var=")
		if !ok {
			v, ok = strings.CutPrefix(a, "--var=")
		}
		if !ok && (a == "-var" || a == "--var") && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if !ok {
			continue
		}
		_, val, _ := strings.Cut(v, "=")
		if !filepath.IsAbs(val) {
			continue
		}
		if _, err := os.Stat(val); err != nil {
			continue
		}
		if why := readableByOthers(val); why != "" {
			return fmt.Sprintf("-var %s: %s", v, why)
		}
	}
	return ""
}

func chownTree(root string, uid int) error {
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
}

// Format renders a report for people.
func Format(w io.Writer, r *Report) {
	fmt.Fprintf(w, "perturbations of build b:\n")
	for _, p := range r.Perturbations {
		mark := "+"
		if !p.Applied {
			mark = "-"
		}
		line := fmt.Sprintf("  %s %-18s %s -> %s", mark, p.Name, orDash(p.A), orDash(p.B))
		if p.Note != "" {
			line += "  (" + p.Note + ")"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "build a: %.1fs, build b: %.1fs\n", r.Seconds[0], r.Seconds[1])
	if r.Diff == nil {
		return
	}
	if r.Diff.Identical() {
		fmt.Fprintf(w, "reproducible: %d files identical\n", r.Diff.Compared)
		return
	}
	fmt.Fprintf(w, "NOT reproducible: %d difference(s)\n", len(r.Diff.Differences))
	for _, d := range r.Diff.Differences {
		fmt.Fprintf(w, "  %s\n", d)
	}
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(unset)"
	}
	return s
}

// copyExe copies the executable src to dst with mode 0755.
func copyExe(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.Write(dst, 0o755, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
