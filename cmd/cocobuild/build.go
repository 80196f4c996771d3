package main

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
)

func newBuildCmd(a *app) *cobra.Command {
	var rf recipeFlags
	var rmf remoteFlags
	var out string
	var jobs int
	var noPublish bool
	c := &cobra.Command{
		Use:   "build [RECIPE]",
		Short: "Build a recipe into its output directory, with manifest.json",
		Long: `Build runs every step of the recipe that is not in the cache and writes the
output directory (default out/<recipe name>) with its artifacts and manifest.json.
RECIPE is a .hcl file or a directory of them (default: the current directory).

Every cached file is hashed as it is copied into the output directory (and where a
step or a measurement reads it) and compared with its cache record: a file that
differs evicts its cache entry, and the build warns and rebuilds that step, so that
no tampered byte is copied or signed.

Publish blocks sign their release once the output is assembled, and append it to
their feeds only once the output directory is complete. With --no-publish nothing is
signed or appended (no signing key is needed): the output has no publish/ files.

--cache-from oci://HOST/REPO pulls a step missing locally from a registry before running
it, every blob checked against its digest and the step's record (a mismatch or a registry
that is down is a warning and a local build); --cache-to pushes the build's step results.
Credentials come from docker/oras login. See docs/remote-cache.md.`,
		Example: `  cocobuild build recipes/sample
  cocobuild build -o /tmp/out -var release=1.2.0 recipes/sample/sample.hcl
  cocobuild build --no-publish recipes/sample
  cocobuild build --cache-from oci://127.0.0.1:5000/cache --cache-to oci://127.0.0.1:5000/cache recipes/sample`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := a.load(&rf, args, false)
			if err != nil {
				return err
			}
			if err := rmf.apply(a, l); err != nil {
				return err
			}
			l.SkipPostBuild = noPublish
			prog := newProgress(a)
			res, err := l.Build(cmd.Context(), out, jobs, prog)
			prog.Close()
			var de *builder.DiagError
			if err != nil && res != nil && a.json && !errors.As(err, &de) {
				return a.buildFailedJSON(res.Report, res.Notes, err)
			}
			if err != nil {
				if res != nil { // e.g. the feeds delivered to before one failed
					for _, n := range res.Notes {
						fmt.Fprintln(a.stderr, n)
					}
				}
				return a.recipeError(err)
			}
			mpath := filepath.Join(res.OutDir, "manifest.json")
			if a.json {
				return a.printJSON(map[string]any{"ok": true, "out": res.OutDir, "manifest": mpath,
					"steps": res.Report.Steps, "ran": res.Report.Ran(), "pulled": res.Report.Pulled(), "notes": append([]string{}, res.Notes...)})
			}
			for _, n := range res.Notes {
				fmt.Fprintln(a.stderr, strings.ReplaceAll(n, "OUT/", res.OutDir+"/"))
			}
			fmt.Fprintf(a.stdout, "built %s: %d step(s) ran, %d cached", l.Recipe.Name, res.Report.Ran(), res.Report.Cached())
			if n := res.Report.Pulled(); n > 0 {
				fmt.Fprintf(a.stdout, " (%d pulled from a remote cache)", n)
			}
			fmt.Fprintln(a.stdout)
			for _, art := range res.Manifest.Artifacts {
				if art.Kind == "eventlog" {
					continue // listed in manifest.json; one per measurement
				}
				fmt.Fprintf(a.stdout, "  %-20s %-14s %s  %s\n", art.Name, art.Kind, art.SHA256[:16], filepath.Join(res.OutDir, art.Path))
			}
			if len(res.Manifest.Measurements) > 0 {
				fmt.Fprintf(a.stdout, "measurements (%d):\n", len(res.Manifest.Measurements))
				for _, m := range res.Manifest.Measurements {
					fmt.Fprintf(a.stdout, "  %s\n", m.Name)
					for _, k := range sortedKeys(m.Values) {
						fmt.Fprintf(a.stdout, "    %-18s %v\n", k, m.Values[k])
					}
				}
			}
			fmt.Fprintf(a.stdout, "manifest: %s\n", mpath)
			return nil
		},
	}
	rf.register(c)
	rmf.register(c)
	a.addLimitFlag(c, false)
	c.Flags().StringVarP(&out, "out", "o", "", "output directory (default out/<recipe name>)")
	c.Flags().IntVarP(&jobs, "jobs", "j", 0, "steps to run at once (default: one per CPU)")
	c.Flags().BoolVar(&noPublish, "no-publish", false, "build without publishing: sign nothing, append to no feed (no signing key needed)")
	return c
}

// buildFailedJSON prints the --json result of a failed build: the error,
// the step that failed, every step's status and the notes of the build
// (such as the feeds delivered to before one failed).
func (a *app) buildFailedJSON(rep *builder.Report, notes []string, err error) error {
	var steps []builder.StepReport
	failed := []string{}
	if rep != nil {
		steps = rep.Steps
		for _, s := range rep.Steps {
			if s.Status == builder.StatusFailed {
				failed = append(failed, s.Block+":"+s.Step)
			}
		}
	}
	a.printJSON(map[string]any{"ok": false, "error": err.Error(), "failed": failed, "steps": steps, "notes": append([]string{}, notes...)})
	return failErr(err)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func newPlanCmd(a *app) *cobra.Command {
	var rf recipeFlags
	var rmf remoteFlags
	var noPublish bool
	c := &cobra.Command{
		Use:   "plan [RECIPE]",
		Short: "Show the build graph: each step, cached or to run, and why",
		Example: `  cocobuild plan recipes/sample
  cocobuild plan --json recipes/sample | jq '.steps[] | select(.status=="run")'
  cocobuild plan --no-publish recipes/sample`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := a.load(&rf, args, false)
			if err != nil {
				return err
			}
			if err := rmf.apply(a, l); err != nil {
				return err
			}
			l.SkipPostBuild = noPublish
			rep, err := l.Plan(cmd.Context())
			if err != nil {
				return a.recipeError(err)
			}
			for _, w := range l.Remote.Warnings() {
				fmt.Fprintln(a.stderr, w)
			}
			if a.json {
				return a.printJSON(map[string]any{"recipe": l.Recipe.Name, "steps": rep.Steps, "to_run": rep.Ran(), "to_pull": rep.ToPull(), "cached": rep.Cached(), "always": rep.Always(), "skipped": rep.Skipped()})
			}
			for _, s := range rep.Steps {
				key := s.Key
				if len(key) > 12 {
					key = key[:12]
				}
				fmt.Fprintf(a.stdout, "%-7s %-30s %-18s %-12s %s\n", s.Status, s.Block+":"+s.Step, s.Kind, key, s.Reason)
			}
			if rep.Ran() == 0 && rep.ToPull() == 0 {
				fmt.Fprintf(a.stdout, "nothing to do: %d step(s) cached", rep.Cached())
			} else {
				fmt.Fprintf(a.stdout, "%d step(s) to run, %d cached", rep.Ran(), rep.Cached())
			}
			if n := rep.ToPull(); n > 0 {
				fmt.Fprintf(a.stdout, ", %d to pull from a remote cache", n)
			}
			if n := rep.Always(); n > 0 {
				fmt.Fprintf(a.stdout, ", %d run on every build (post-build)", n)
			}
			if n := rep.Skipped(); n > 0 {
				fmt.Fprintf(a.stdout, ", %d post-build skipped (--no-publish)", n)
			}
			fmt.Fprintln(a.stdout)
			return nil
		},
	}
	rf.register(c)
	rmf.register(c)
	c.Flags().BoolVar(&noPublish, "no-publish", false, "plan a build without publishing: the post-build steps are skipped")
	return c
}

func newValidateCmd(a *app) *cobra.Command {
	var rf recipeFlags
	c := &cobra.Command{
		Use:   "validate [RECIPE]",
		Short: "Check a recipe without building: syntax, types, references, pins",
		Long: `Validate loads the recipe and checks every block. Each problem is printed
as file:line:col with the source line; the exit code is 2 when there is any.`,
		Example: `  cocobuild validate recipes/sample`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := a.load(&rf, args, false)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(map[string]any{"ok": true, "recipe": l.Recipe.Name, "blocks": len(l.Recipe.Blocks)})
			}
			fmt.Fprintf(a.stdout, "%s: valid (%d blocks)\n", l.Recipe.Name, len(l.Recipe.Blocks))
			return nil
		},
	}
	rf.register(c)
	return c
}

func newLockCmd(a *app) *cobra.Command {
	var rf recipeFlags
	var update bool
	c := &cobra.Command{
		Use:   "lock [RECIPE]",
		Short: "Resolve every input and write the pins to cocobuild.lock.hcl",
		Long: `Lock fetches every input of the recipe and records its exact source and sha256
in cocobuild.lock.hcl beside the recipe. Builds take pins from it; --locked builds
refuse any drift. With -update, Debian packages without a version in the recipe
move to the version the archive serves now and every pin is recomputed. A rootfs
with a packages block gets its whole Debian package set pinned (every package's
version, architecture and .deb sha256), resolved again only when its request
changed or with -update.`,
		Example: `  cocobuild lock recipes/sample
  cocobuild lock -update recipes/sample`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := a.load(&rf, args, true)
			if err != nil {
				return err
			}
			lock, err := input.UpdateLock(cmd.Context(), l.Recipe, update)
			if err != nil {
				return a.recipeError(l.Diagnose(err))
			}
			if a.json {
				return a.printJSON(map[string]any{"lock": lock.Path, "pins": lock.Pins, "packages": lock.Packages})
			}
			pkgs := ""
			for _, addr := range slices.Sorted(maps.Keys(lock.Packages)) {
				set := lock.Packages[addr]
				pkgs += fmt.Sprintf(", %s: %d Debian packages of %s", addr, len(set.Packages), set.Suite)
			}
			fmt.Fprintf(a.stdout, "wrote %s (%d inputs%s)\n", lock.Path, len(lock.Pins), pkgs)
			return nil
		},
	}
	rf.register(c)
	c.Flags().BoolVarP(&update, "update", "u", false, "move unversioned Debian packages to the current version and recompute every pin")
	return c
}
