package main

import (
	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/tees"
	"github.com/cocobuild/cocobuild/tee"
)

// measureSubcommands lists the `cocobuild measure` subcommands: one per
// registered TEE, then those of the TEEs that have no registration
// (tees.Standalone).
func measureSubcommands(a *app) []*cobra.Command {
	cli := &tee.CLI{Stdout: a.stdout, Stderr: a.stderr, JSON: func() bool { return a.json }, PrintJSON: a.printJSON, Limits: &a.limits,
		Usage: usageErr, Failure: failErr}
	var cmds []*cobra.Command
	for _, t := range a.tees.All() {
		cmds = append(cmds, t.Command(cli))
	}
	for _, c := range tees.Standalone() {
		cmds = append(cmds, c(cli))
	}
	return cmds
}
