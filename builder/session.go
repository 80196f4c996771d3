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

	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/recipes"
)

// LoadOptions are the settings for Load.
type LoadOptions struct {
	recipes.LoadOptions
	CacheDir string // "" for DefaultCacheDir
	// Kinds makes the block kinds the recipe may use, given the opened
	// cache and the recipe's directory (where a kind finds the files it
	// keeps beside the recipe, such as the input kind's lock file). The
	// command line composes them (internal/registry). An error
	// that is hcl.Diagnostics is reported as a recipe error.
	Kinds func(c *Cache, recipeDir string) ([]recipes.Kind, error)
}

// Loaded is a recipe ready to plan or build, with its cache.
type Loaded struct {
	Recipe *recipes.Recipe
	Cache  *Cache
	// SkipPostBuild builds without publishing (cocobuild build
	// --no-publish): the post-build work of PostBuilder blocks is not run,
	// so nothing is signed or delivered and no key is needed; plans and
	// reports list it as skipped.
	SkipPostBuild bool
	// Remote is the shared layer of the cache (see UseRemote); nil for
	// none.
	Remote *Remote
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

// DiagnosticError is an error of a step that knows where in the recipe, or
// in a file beside it, its cause is written (input.PinMismatchError: the
// sha256 pin that the bytes do not match).
type DiagnosticError interface {
	error
	// Diagnostic is the error at its place; nil when the place is unknown.
	Diagnostic() *hcl.Diagnostic
	// DiagnosticFiles are the sources, beyond the recipe's files, that
	// the diagnostic points into (name → bytes); may be nil.
	DiagnosticFiles() map[string][]byte
}

// Diagnose turns an error that says where in the recipe it comes from
// (hcl.Diagnostics, or a DiagnosticError with a place) into a *DiagError
// showing it there; other errors are returned as they are.
func (l *Loaded) Diagnose(err error) error {
	// A step that says what in the recipe is wrong (hcl.Diagnostics, e.g.
	// a measure block's firmware that cannot vouch for what it models)
	// gets its diagnostics shown, with the snippet.
	var diags hcl.Diagnostics
	if errors.As(err, &diags) && diags.HasErrors() {
		return &DiagError{Diags: diags, Files: l.Recipe.Files, Err: err}
	}
	var de DiagnosticError
	if !errors.As(err, &de) {
		return err
	}
	d := de.Diagnostic()
	if d == nil {
		return err
	}
	files := map[string][]byte{}
	for k, v := range l.Recipe.Files {
		files[k] = v
	}
	for k, v := range de.DiagnosticFiles() {
		files[k] = v
	}
	return &DiagError{Diags: hcl.Diagnostics{d}, Files: files, Err: err}
}

// Load opens the cache, makes the block kinds (opts.Kinds), reads the
// recipe at path (a file or directory) and checks every block. Recipe problems come back as a
// *DiagError holding all of them.
func Load(path string, opts LoadOptions) (*Loaded, error) {
	if opts.Kinds == nil {
		return nil, errors.New("loading a recipe with no block kinds (LoadOptions.Kinds is nil): compose them as internal/registry does")
	}
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
	kinds, err := opts.Kinds(cache, dir)
	var diags hcl.Diagnostics
	if errors.As(err, &diags) && diags.HasErrors() {
		return nil, &DiagError{Diags: diags, Err: err}
	}
	if err != nil {
		return nil, err
	}
	r, diags := recipes.Load(path, recipes.NewRegistry(kinds...), opts.LoadOptions)
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
	return &Loaded{Recipe: r, Cache: cache}, nil
}

// BuildResult is what Build made.
type BuildResult struct {
	Report   *Report
	Manifest *manifest.Manifest
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
			warnings = append(warnings, l.Remote.Warnings()...)
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
	c := l.Cache
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
	l.Remote.distrust(key)  // built here now, even if pulled before
	var dependents []string // those that had an entry
	if rep != nil {
		for _, k := range rep.builtFrom(key) {
			removed, err := c.Evict(ctx, k)
			if err != nil {
				return "", err
			}
			l.Remote.distrust(k)
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
	rep, err := Run(ctx, l.Recipe, Options{Cache: l.Cache, Jobs: jobs, Observer: obs, Remote: l.Remote})
	if err != nil {
		var re *RecipeError
		if asRecipeError(err, &re) {
			return nil, rep, &DiagError{Diags: re.Diags, Files: l.Recipe.Files}
		}
		return &BuildResult{Report: rep}, rep, l.Diagnose(err) // the report says which step failed
	}
	built, err := NewManifest(l.Recipe, rep)
	if err != nil {
		return nil, rep, err
	}
	st, err := newOutputStage(absOut, l.Cache)
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
	notes, deliveries, cleanup, err := l.postBuild(ctx, rep, built, obs)
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
	rep, err := Run(ctx, l.Recipe, Options{Cache: l.Cache, DryRun: true, Remote: l.Remote})
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("%w\nRun cocobuild build: it evicts the corrupt cache entry and rebuilds what was made from it (plan only looks)", err)
		}
		return nil, l.Diagnose(err)
	}
	if err := l.planPostBuild(rep); err != nil {
		return nil, err
	}
	return rep, nil
}
