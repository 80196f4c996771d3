package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/tee"
)

// LoadOptions are the settings for Load.
type LoadOptions struct {
	recipes.LoadOptions
	CacheDir      string // "" for DefaultCacheDir
	AllowUnpinned bool
	Locked        bool
	Resolving     bool // for `cocobuild lock`: unpinned inputs are what it resolves
	// ExtraKinds are block kinds beyond NewRegistry's (tests use this).
	ExtraKinds []recipes.Kind
	// TEEs are the TEEs that measure blocks and publishing know.
	TEEs tee.Set
}

// Loaded is a recipe ready to plan or build, with its environment.
type Loaded struct {
	Recipe *recipes.Recipe
	Env    *Env
	TEEs   tee.Set // those the recipe was loaded with
	// SkipPostBuild builds without publishing (cocobuild build
	// --no-publish): the post-build work of PostBuilder blocks is not run,
	// so nothing is signed or delivered and no key is needed; plans and
	// reports list it as skipped.
	SkipPostBuild bool
}

// DiagError carries recipe diagnostics (exit code 2) with the sources to
// show them against.
type DiagError struct {
	Diags hcl.Diagnostics
	Files map[string][]byte
	Err   error // the error the diagnostics stand for, if any
}

func (e *DiagError) Error() string { return e.Diags.Error() }

// Unwrap returns the error the diagnostics stand for.
func (e *DiagError) Unwrap() error { return e.Err }

// pinDiag turns a pin mismatch whose pin has a place (the recipe's sha256
// attribute, or the lock file's) into a diagnostic there, and a step's
// diagnostics into a recipe error; other errors are returned as they are.
func (l *Loaded) pinDiag(err error) error {
	// A step that says what in the recipe is wrong (hcl.Diagnostics, e.g.
	// a measure block's firmware that cannot vouch for what it models)
	// gets its diagnostics shown, with the snippet.
	var diags hcl.Diagnostics
	if errors.As(err, &diags) && diags.HasErrors() {
		return &DiagError{Diags: diags, Files: l.Recipe.Files, Err: err}
	}
	var pm *PinMismatchError
	if !errors.As(err, &pm) {
		return err
	}
	d := pm.Diagnostic()
	if d == nil {
		return err
	}
	files := map[string][]byte{}
	for k, v := range l.Recipe.Files {
		files[k] = v
	}
	if lk := l.Env.Lock; lk != nil && lk.src != nil {
		files[lk.Path] = lk.src
	}
	return &DiagError{Diags: hcl.Diagnostics{d}, Files: files, Err: err}
}

// Load reads the recipe at path (a file or directory) with its lock file,
// opens the cache and checks every block. Recipe problems come back as a
// *DiagError holding all of them.
func Load(path string, opts LoadOptions) (*Loaded, error) {
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		cacheDir = d
	}
	cache, err := OpenCache(cacheDir)
	if err != nil {
		return nil, err
	}
	dir := path
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		dir = filepath.Dir(path) // recipes.Load says whether the file is a recipe
	}
	lock, diags := ReadLock(LockPath(dir))
	if diags.HasErrors() {
		return nil, &DiagError{Diags: diags}
	}
	env := &Env{Cache: cache, Lock: lock, AllowUnpinned: opts.AllowUnpinned, Locked: opts.Locked, Resolving: opts.Resolving}
	r, diags := recipes.Load(path, NewRegistry(env, opts.TEEs, opts.ExtraKinds...), opts.LoadOptions)
	if diags.HasErrors() {
		files := map[string][]byte{}
		if r != nil {
			files = r.Files
		} else {
			files = recipes.ReadSources(path, opts.VarFiles)
		}
		return nil, &DiagError{Diags: diags, Files: files}
	}
	if d := r.Validate(); d.HasErrors() {
		return nil, &DiagError{Diags: d, Files: r.Files}
	}
	return &Loaded{Recipe: r, Env: env, TEEs: opts.TEEs}, nil
}

// BuildResult is what Build made.
type BuildResult struct {
	Report   *Report
	Manifest *Manifest
	OutDir   string
	Notes    []string // messages of post-build blocks (see PostBuilder), e.g. warnings
}

// DefaultOutDir is out/<recipe name>.
func DefaultOutDir(r *recipes.Recipe) string { return filepath.Join("out", r.Name) }

// maxEvictions bounds how many corrupt cache entries one build evicts and
// rebuilds before it gives up.
const maxEvictions = 16

// Build runs every step that is not cached and writes the output directory.
// When a step fails, the result holds only the report, with the step that
// failed and the steps stopped because of it. When a delivery fails, OUT is
// written: the result holds it, with the notes of the deliveries done.
//
// The bytes of cached results are checked where they are used: when a step
// that runs reads them, when a block reads them to finish (measurements)
// and as they are copied into the output directory. A cached file whose
// bytes are not what its record states evicts its entry; the build warns
// (a note naming the step and the file) and runs again, rebuilding that
// step, so that no tampered byte is copied or signed.
//
// Publishing is in two phases: post-build work (signing) runs once the
// artifacts are assembled beside OUT, on the manifest whose digests the
// copies were just checked against; deliveries (feed appends) run only once
// OUT is complete and in place.
func (l *Loaded) Build(ctx context.Context, outDir string, jobs int, obs Observer) (*BuildResult, error) {
	if outDir == "" {
		outDir = DefaultOutDir(l.Recipe)
	}
	// Written at the absolute path, reported as given.
	absOut, err := filepath.Abs(outDir)
	if err != nil {
		return nil, err
	}
	var warnings []string
	for evicted := 0; ; evicted++ {
		res, rep, err := l.buildOnce(ctx, outDir, absOut, jobs, obs)
		var ce *CorruptError
		if err == nil || !errors.As(err, &ce) || evicted == maxEvictions {
			if res != nil {
				res.Notes = append(warnings, res.Notes...)
			}
			if err != nil && len(warnings) > 0 {
				err = fmt.Errorf("%w\n(%s)", err, strings.Join(warnings, "\n"))
			}
			return res, err
		}
		w, err := l.evict(ctx, rep, ce)
		if err != nil {
			return res, err
		}
		warnings = append(warnings, w)
	}
}

// evict removes the cache entry that holds the corrupt file of ce, and
// those of the steps built from it (whose cached results may have been
// made from the corrupt bytes: their keys name the recorded digest, not
// the bytes they read), and returns the warning that says so.
func (l *Loaded) evict(ctx context.Context, rep *Report, ce *CorruptError) (string, error) {
	c := l.Env.Cache
	key, ok := c.EntryOf(ce.Path)
	if !ok {
		return "", fmt.Errorf("%w: it is no step's file in the cache %s, so it cannot be rebuilt: restore or remove it", ce, c.Dir)
	}
	name := func(k string) string {
		if rep != nil {
			for _, s := range rep.Steps {
				if s.Key == k {
					return s.Block + ":" + s.Step
				}
			}
		}
		return fmt.Sprintf("with key %.12s", k)
	}
	file, err := filepath.Rel(filepath.Join(c.stepDir(key), "files"), ce.Path)
	if err != nil {
		file = ce.Path
	}
	if _, err := c.Evict(ctx, key); err != nil {
		return "", err
	}
	var dependents []string // those that had an entry
	if rep != nil {
		for _, k := range rep.builtFrom(key) {
			removed, err := c.Evict(ctx, k)
			if err != nil {
				return "", err
			}
			if removed {
				dependents = append(dependents, k)
			}
		}
	}
	got := "missing"
	if ce.Got != "" {
		got = "sha256 " + ce.Got
	}
	done := "evicted the cache entry " + key[:min(12, len(key))] + " and rebuilt the step"
	if len(dependents) > 0 {
		names := make([]string, len(dependents))
		for i, k := range dependents {
			names[i] = name(k)
		}
		sort.Strings(names)
		done = fmt.Sprintf("evicted the cache entry %.12s and those of the steps built from it (%s), and rebuilt them", key, strings.Join(names, ", "))
	}
	return fmt.Sprintf("WARNING: step %s: cached file %s is not what its cache record states (%s, recorded sha256 %s): %s",
		name(key), filepath.ToSlash(file), got, ce.Want, done), nil
}

// buildOnce runs the steps, assembles the output beside absOut (checking
// every copied byte), signs (post-build work), swaps the output in and then
// delivers. It returns the report whatever happens.
func (l *Loaded) buildOnce(ctx context.Context, outDir, absOut string, jobs int, obs Observer) (*BuildResult, *Report, error) {
	rep, err := Run(ctx, l.Recipe, Options{Cache: l.Env.Cache, Jobs: jobs, Observer: obs})
	if err != nil {
		var re *RecipeError
		if asRecipeError(err, &re) {
			return nil, rep, &DiagError{Diags: re.Diags, Files: l.Recipe.Files}
		}
		return &BuildResult{Report: rep}, rep, l.pinDiag(err) // the report says which step failed
	}
	built, err := NewManifest(l.Recipe, rep)
	if err != nil {
		return nil, rep, err
	}
	st, err := newOutputStage(absOut)
	if err != nil {
		return nil, rep, fmt.Errorf("writing %s: %w", outDir, err)
	}
	defer st.abort()
	// The artifacts are copied, hashed as they are, before anything is
	// signed: what post-build work signs is the manifest whose digests the
	// bytes going into OUT were just checked against.
	if err := st.addArtifacts(built, rep); err != nil {
		return nil, rep, fmt.Errorf("writing %s: %w", outDir, err)
	}
	enc, err := built.Encode()
	if err != nil {
		return nil, rep, err
	}
	notes, deliveries, cleanup, err := l.postBuild(ctx, rep, enc, obs)
	defer cleanup()
	if err != nil {
		return nil, rep, err
	}
	m, err := NewManifest(l.Recipe, rep)
	if err != nil {
		return nil, rep, err
	}
	if err := st.addArtifacts(m, rep); err != nil {
		return nil, rep, fmt.Errorf("writing %s: %w", outDir, err)
	}
	if err := st.commit(m); err != nil {
		return nil, rep, fmt.Errorf("writing %s: %w", outDir, err)
	}
	// OUT is complete: only now does anything leave the build.
	dn, err := deliver(ctx, deliveries)
	notes = append(notes, dn...)
	if err != nil {
		// The result keeps the notes of the feeds already delivered to.
		return &BuildResult{Report: rep, Manifest: m, OutDir: outDir, Notes: notes}, rep,
			fmt.Errorf("%s is written, but delivering it failed: %w\nRun the build again: nothing rebuilds, and a feed that already holds the identical release does not append it twice", outDir, err)
	}
	return &BuildResult{Report: rep, Manifest: m, OutDir: outDir, Notes: notes}, rep, nil
}

// Plan reports, without running anything, which steps are cached and which
// would run, and the post-build steps (publishing) that every build runs.
func (l *Loaded) Plan(ctx context.Context) (*Report, error) {
	rep, err := Run(ctx, l.Recipe, Options{Cache: l.Env.Cache, DryRun: true})
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("%w\nRun cocobuild build: it evicts the corrupt cache entry and rebuilds what was made from it (plan only looks)", err)
		}
		return nil, l.pinDiag(err)
	}
	if err := l.planPostBuild(rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// UpdateLock resolves every input of the recipe (fetching what it must) and
// writes the lock file. With update, Debian packages without a version in
// the recipe move to the version apt serves now, and every pin is recomputed.
func (l *Loaded) UpdateLock(ctx context.Context, update bool) (*Lock, error) {
	lock := &Lock{Path: l.Env.Lock.Path, Pins: map[string]Pin{}}
	ctx = childenv.WithSecrets(ctx, l.Recipe.SecretEnv()...) // apt-get gets no env:// key variable
	ctxEval := l.Recipe.EvalContext(nil)
	for _, b := range l.Recipe.Blocks {
		if b.Type != "input" {
			continue
		}
		node, diags := b.Kind.Decode(b, ctxEval)
		if diags.HasErrors() {
			return nil, &DiagError{Diags: diags, Files: l.Recipe.Files}
		}
		name, pin, err := ResolvePin(ctx, node, update)
		if err != nil {
			return nil, l.pinDiag(err)
		}
		lock.Pins[name] = pin
	}
	if err := lock.Write(); err != nil {
		return nil, err
	}
	return lock, nil
}
