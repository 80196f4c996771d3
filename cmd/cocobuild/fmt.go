package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/recipes"
)

func newFmtCmd(a *app) *cobra.Command {
	var check bool
	c := &cobra.Command{
		Use:   "fmt [PATH...]",
		Short: "Rewrite recipe files in the canonical HCL style",
		Long: `Fmt rewrites .hcl files (the given files, or every .hcl file in the given
directories; default the current directory) in the canonical style. With -check
it changes nothing and exits 1 when a file is not formatted.`,
		Example: `  cocobuild fmt recipes/sample
  cocobuild fmt -check recipes/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"."}
			}
			files, err := hclFiles(args)
			if err != nil {
				return usageErr(err)
			}
			var unformatted []string
			for _, f := range files {
				src, err := os.ReadFile(f)
				if err != nil {
					return failErr(err)
				}
				_, diags := hclwrite.ParseConfig(src, f, hcl.InitialPos)
				if diags.HasErrors() {
					recipes.WriteDiagnostics(a.stderr, map[string][]byte{f: src}, diags)
					return &exitError{code: exitUsage, err: fmt.Errorf("%s does not parse", f)}
				}
				out := hclwrite.Format(src)
				if bytes.Equal(out, src) {
					continue
				}
				unformatted = append(unformatted, f)
				if check {
					continue
				}
				st, err := os.Stat(f)
				if err != nil {
					return failErr(err)
				}
				if err := atomicfile.WriteFile(f, out, st.Mode().Perm()); err != nil {
					return failErr(err)
				}
			}
			if a.json {
				a.printJSON(map[string]any{"unformatted": unformatted, "check": check})
			} else {
				for _, f := range unformatted {
					fmt.Fprintln(a.stdout, f)
				}
			}
			if check && len(unformatted) > 0 {
				return &exitError{code: exitFailure, err: fmt.Errorf("%d file(s) not formatted: run cocobuild fmt", len(unformatted)), printed: a.json}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&check, "check", false, "change nothing; exit 1 if a file is not formatted")
	return c
}

// hclFiles expands directories to the .hcl files below them, sorted.
func hclFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != p && (d.Name() == "testdata" || d.Name()[0] == '.') {
				return filepath.SkipDir
			}
			if !d.IsDir() && filepath.Ext(path) == ".hcl" {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}
