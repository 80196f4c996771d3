package main

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/tees"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/tee"
)

// app holds what every command shares: the standard streams and global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	json           bool
	// extraKinds are block kinds beyond internal/registry's (tests register
	// deliberately broken ones); childEnv is added to the environment of
	// cocobuild processes this one starts (repro).
	extraKinds []recipes.Kind
	childEnv   []string
	// jsonPrinted says the command printed its JSON result (in --json
	// mode, a command that fails without one gets {"ok": false, "error"}).
	jsonPrinted bool
	// tees are the registered TEEs (newTEEs), set by newRootCmd.
	tees tee.Set
	// limits bound what commands read from inputs they did not make
	// (--limit).
	limits limits.Values
}

// addLimitFlag gives c (and, persistent, its subcommands) the --limit
// flag, for commands that read inputs they did not make.
func (a *app) addLimitFlag(c *cobra.Command, persistent bool) {
	fs := c.Flags()
	if persistent {
		fs = c.PersistentFlags()
	}
	fs.Var(&a.limits, "limit", "raise a bound on untrusted input (repeatable); the limits and their defaults:\n"+limits.Help())
}

// printJSON writes v as indented JSON to stdout.
func (a *app) printJSON(v any) error {
	a.jsonPrinted = true
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func newRootCmd(a *app) *cobra.Command {
	a.tees = tees.All()
	root := &cobra.Command{
		Use:   "cocobuild",
		Short: "Reproducible confidential-guest images, their launch measurements and signed reference values",
		Long: `cocobuild builds confidential-VM guest images (kernel, u-root initramfs with the agent,
rootfs, disk) from an HCL recipe, reproducibly; computes the launch measurements each TEE
will report (SEV/SEV-ES/SNP, TDX MRTD/RTMRs) without booting; and publishes them as signed
reference values.`,
		Example: `  cocobuild build recipes/sample
  cocobuild measure sev --mode snp --ovmf OVMF.fd --vcpus 4 --vcpu-type EPYC-v4`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print machine-readable JSON instead of text")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr(err)
	})
	root.AddCommand(
		newBuildCmd(a),
		newPlanCmd(a),
		newValidateCmd(a),
		newFmtCmd(a),
		newLockCmd(a),
		newMeasureCmd(a),
		newRunCmd(a),
		newReproCmd(a),
		newVerifyBuildCmd(a),
		newCheckCmd(a),
		newDiffCmd(a),
		newVerityCmd(a),
		newKeygenCmd(a),
		newPublishCmd(a),
		newServeCmd(a),
		newVerifyCmd(a),
		newInspectCmd(a),
		newVersionCmd(a),
	)
	return root
}
