package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/registry"
	"github.com/cocobuild/cocobuild/recipes"
)

// recipeFlags are the flags of every command that loads a recipe.
type recipeFlags struct {
	vars          []string
	varFiles      []string
	cacheDir      string
	allowUnpinned bool
	locked        bool
}

func (f *recipeFlags) register(c *cobra.Command) {
	c.Flags().StringArrayVar(&f.vars, "var", nil, "set a variable: -var name=value (repeatable)")
	c.Flags().StringArrayVar(&f.varFiles, "var-file", nil, "read variables from an HCL file of name = value lines (repeatable)")
	c.Flags().StringVar(&f.cacheDir, "cache-dir", "", "the build cache (default $XDG_CACHE_HOME/cocobuild)")
	c.Flags().BoolVar(&f.allowUnpinned, "allow-unpinned", false, "accept inputs without a sha256 pin (never for a release)")
	c.Flags().BoolVar(&f.locked, "locked", false, "refuse any difference between the recipe and cocobuild.lock.hcl")
}

// load reads and checks the recipe; recipe errors are printed as
// diagnostics and turn into exit code 2.
func (a *app) load(f *recipeFlags, args []string, resolving bool) (*builder.Loaded, error) {
	path := "."
	if len(args) > 0 {
		path = args[0]
	}
	vars := map[string]string{}
	for _, v := range f.vars {
		name, val, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return nil, usageErr(fmt.Errorf("-var %q: want name=value", v))
		}
		vars[name] = val
	}
	l, err := builder.Load(path, builder.LoadOptions{
		LoadOptions: recipes.LoadOptions{Vars: vars, VarFiles: f.varFiles},
		CacheDir:    f.cacheDir,
		Kinds: registry.Kinds(input.Options{AllowUnpinned: f.allowUnpinned || resolving, Locked: f.locked, Resolving: resolving},
			a.tees, &a.limits, a.extraKinds...),
	})
	if err != nil {
		return nil, a.recipeError(err)
	}
	return l, nil
}

// recipeError prints diagnostics and maps them to exit code 2; other errors
// are failures (exit 1).
func (a *app) recipeError(err error) error {
	var de *builder.DiagError
	if errors.As(err, &de) {
		if a.json {
			a.printJSON(map[string]any{"ok": false, "diagnostics": diagJSON(de)})
		} else {
			recipes.WriteDiagnostics(a.stderr, de.Files, de.Diags)
		}
		n := len(de.Diags.Errs())
		return &exitError{code: exitUsage, err: fmt.Errorf("%d error(s) in the recipe", n), printed: a.json}
	}
	return failErr(err)
}

type jsonDiag struct {
	Severity string `json:"severity"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
}

func diagJSON(de *builder.DiagError) []jsonDiag {
	out := []jsonDiag{}
	for _, d := range de.Diags {
		j := jsonDiag{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity != 1 {
			j.Severity = "warning"
		}
		if d.Subject != nil {
			j.File, j.Line, j.Column = d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column
		}
		out = append(out, j)
	}
	return out
}

// remoteFlags are the remote cache flags of build, plan, repro and
// verify-build.
type remoteFlags struct {
	from, to []string
	cmd      *cobra.Command
}

func (f *remoteFlags) register(c *cobra.Command) {
	f.cmd = c
	c.Flags().StringArrayVar(&f.from, "cache-from", nil, "pull step results missing locally from this remote cache, oci://HOST[:PORT]/REPO (repeatable; default $"+builder.EnvCacheFrom+", else the recipe's cache setting; none: no remote cache)")
	c.Flags().StringArrayVar(&f.to, "cache-to", nil, "push step results to this remote cache, oci://HOST[:PORT]/REPO (repeatable; default $"+builder.EnvCacheTo+", else the recipe's cache setting; none: push nowhere)")
}

// refs are the remote caches of each direction: the flags', else the
// environment's, else the recipe's (nil r: the recipe's are not known).
func (f *remoteFlags) refs(a *app, r *recipes.Recipe) (from, to []string, err error) {
	var rf, rt []string
	if r != nil {
		rf, rt = r.Cache.From, r.Cache.To
	}
	from = builder.RemoteRefs(f.from, f.cmd.Flags().Changed("cache-from"), os.Getenv(builder.EnvCacheFrom), rf)
	to = builder.RemoteRefs(f.to, f.cmd.Flags().Changed("cache-to"), os.Getenv(builder.EnvCacheTo), rt)
	for _, flag := range []struct {
		name string
		vals []string
		env  string
	}{{"--cache-from", f.from, builder.EnvCacheFrom}, {"--cache-to", f.to, builder.EnvCacheTo}} {
		for _, ref := range append(flag.vals, builder.RemoteRefs(nil, false, os.Getenv(flag.env), nil)...) {
			if ref == builder.RemoteNone {
				continue
			}
			if _, err := builder.ParseRemoteRef(ref); err != nil {
				return nil, nil, usageErr(fmt.Errorf("%s (%s or $%s): %w", flag.name, flag.name, flag.env, err))
			}
		}
	}
	return from, to, nil
}

// apply opens the remote caches for the builds and plans of l.
func (f *remoteFlags) apply(a *app, l *builder.Loaded) error {
	from, to, err := f.refs(a, l.Recipe)
	if err != nil {
		return err
	}
	if err := l.UseRemote(from, to, 0); err != nil {
		return a.recipeError(err)
	}
	return nil
}
