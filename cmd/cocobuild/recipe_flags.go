package main

import (
	"errors"
	"fmt"
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
			a.tees, a.extraKinds...),
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
