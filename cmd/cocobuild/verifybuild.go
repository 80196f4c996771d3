package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/sign"
	"github.com/cocobuild/cocobuild/repro"
)

func newVerifyBuildCmd(a *app) *cobra.Command {
	var rf recipeFlags
	var rmf remoteFlags
	var against, key, out string
	var jobs int
	c := &cobra.Command{
		Use:   "verify-build [RECIPE] --against RELEASE --key PUB",
		Short: "Rebuild a recipe and check that a published release comes from it",
		Long: `Verify-build rebuilds the recipe and checks a published release against the
rebuild: the signatures (with --key), every subject's digest against the rebuilt
files, every reference value against the rebuilt measurements, and the unsigned
contents of every document (the statement payload, the RVPS message, the CoRIMs'
CoMIDs) against the release the rebuild makes with the published release's name,
version and expiry. RELEASE is a release directory (OUT/publish/NAME, as a feed or
a build wrote it) or its statement.sigstore.json. Exit 0 when everything matches,
1 otherwise.

The rebuild does not publish: it signs nothing, needs no private key (the recipe's
key may be unset) and appends to none of the recipe's feeds. With --cache-from (or
$COCOBUILD_CACHE_FROM, or the recipe's cache setting) it takes step results from that
remote cache, trusting whoever may push to it: --cache-from none rebuilds everything.

The published release is read before anything is built, each document within the
document limit (64MiB; --limit document=SIZE raises it) and only from a regular file:
a larger document, a named pipe or a device fails at once (exit 1).`,
		Example: `  # --key: your copy of the publisher's public key, obtained out of band,
  # never the cosign.pub shipped inside the release
  cocobuild verify-build recipes/sample --against published/sample --key keys/publisher.pub`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if against == "" || key == "" {
				return usageErr(errors.New("--against (the published release) and --key (your copy of the publisher's public key, obtained out of band) are required"))
			}
			pub, err := sign.LoadPublicKey(key, "")
			if err != nil {
				return usageErr(err)
			}
			if sign.IsDevKey(pub) {
				fmt.Fprintln(a.stderr, "WARNING: --key is the DEVELOPMENT key, which is public: a rebuild that matches shows the values come from this recipe, not who signed them")
			}
			l, err := a.load(&rf, args, false)
			if err != nil {
				return err
			}
			if err := rmf.apply(a, l); err != nil {
				return err
			}
			if out == "" {
				if out, err = os.MkdirTemp("", "cocobuild-verify-build-"); err != nil {
					return failErr(err)
				}
				defer os.RemoveAll(out)
			}
			prog := newProgress(a)
			rep, err := repro.VerifyBuild(cmd.Context(), l, a.tees, against, &a.limits, out, pub, jobs, prog)
			prog.Close()
			if errors.Is(err, limits.ErrExceeded) || errors.Is(err, publish.ErrNotRegular) || isNotRegularFile(err) {
				return a.verifyFailed(err) // the published release is wrong
			}
			if err != nil {
				return a.recipeError(err)
			}
			if a.json {
				a.printJSON(map[string]any{"ok": rep.OK(), "report": rep})
			} else {
				// What the published release says (names, versions, errors
				// that quote them) is escaped; --json keeps it exact.
				for _, n := range rep.Notes { // e.g. a corrupt cache entry evicted and rebuilt
					fmt.Fprintln(a.stderr, escDoc(n))
				}
				for _, c := range rep.Checked {
					fmt.Fprintf(a.stdout, "ok  %s\n", escDoc(c))
				}
				for _, m := range rep.Mismatches {
					fmt.Fprintf(a.stdout, "MISMATCH  %s\n", escDoc(m))
				}
			}
			if !rep.OK() {
				return &exitError{code: exitFailure, err: fmt.Errorf("%s does not come from this recipe as it builds now", escDoc(against)), printed: a.json}
			}
			if !a.json {
				fmt.Fprintf(a.stdout, "%s comes from this recipe: the rebuild matches it\n", escDoc(rep.Release))
			}
			return nil
		},
	}
	rf.register(c)
	rmf.register(c)
	c.Flags().StringVar(&against, "against", "", "the published release: a release directory or its statement.sigstore.json")
	c.Flags().StringVar(&key, "key", "", "your copy of the publisher's public key (PEM file or env://VAR), obtained out of band, not the cosign.pub inside the release")
	c.Flags().StringVarP(&out, "out", "o", "", "where to rebuild (default: a temporary directory)")
	c.Flags().IntVarP(&jobs, "jobs", "j", 0, "steps to run at once (default: one per CPU)")
	a.addLimitFlag(c, false)
	return c
}

// isNotRegularFile says err is limits' refusal of a path that is not a regular
// file (a named pipe, a device).
func isNotRegularFile(err error) bool {
	var nr *limits.NotRegularError
	return errors.As(err, &nr)
}
