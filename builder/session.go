package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/recipes"
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
}

// Loaded is a recipe ready to plan or build, with its environment.
type Loaded struct {
	Recipe *recipes.Recipe
	Env    *Env
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
	r, diags := recipes.Load(path, NewRegistry(env, opts.ExtraKinds...), opts.LoadOptions)
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
	return &Loaded{Recipe: r, Env: env}, nil
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

// Build runs every step that is not cached and writes the output directory.
// When a step fails, the result holds only the report, with the step that
// failed and the steps stopped because of it.
func (l *Loaded) Build(ctx context.Context, outDir string, jobs int, obs Observer) (*BuildResult, error) {
	rep, err := Run(ctx, l.Recipe, Options{Cache: l.Env.Cache, Jobs: jobs, Observer: obs})
	if err != nil {
		var re *RecipeError
		if asRecipeError(err, &re) {
			return nil, &DiagError{Diags: re.Diags, Files: l.Recipe.Files}
		}
		return &BuildResult{Report: rep}, l.pinDiag(err) // the report says which step failed
	}
	notes, cleanup, err := l.postBuild(ctx, rep, obs)
	defer cleanup()
	if err != nil {
		return nil, err
	}
	m, err := NewManifest(l.Recipe, rep)
	if err != nil {
		return nil, err
	}
	if outDir == "" {
		outDir = DefaultOutDir(l.Recipe)
	}
	// Written at the absolute path, reported as given.
	absOut, err := filepath.Abs(outDir)
	if err != nil {
		return nil, err
	}
	if err := WriteOutput(absOut, m, rep); err != nil {
		return nil, fmt.Errorf("writing %s: %w", outDir, err)
	}
	return &BuildResult{Report: rep, Manifest: m, OutDir: outDir, Notes: notes}, nil
}

// Plan reports, without running anything, which steps are cached and which
// would run, and the post-build steps (publishing) that every build runs.
func (l *Loaded) Plan(ctx context.Context) (*Report, error) {
	rep, err := Run(ctx, l.Recipe, Options{Cache: l.Env.Cache, DryRun: true})
	if err != nil {
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
