package main

import (
	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/tee"
	"github.com/cocobuild/cocobuild/tee/sgx"
)

// measureSubcommands lists the `cocobuild measure` subcommands: one per
// registered TEE, then SGX's, which is no tee.TEE (see tee/sgx).
func measureSubcommands(a *app) []*cobra.Command {
	cli := &tee.CLI{Stdout: a.stdout, Stderr: a.stderr, JSON: func() bool { return a.json }, PrintJSON: a.printJSON, Limits: &a.limits,
		Usage: usageErr, Failure: failErr}
	var cmds []*cobra.Command
	for _, t := range a.tees.All() {
		cmds = append(cmds, t.Command(cli))
	}
	return append(cmds, sgx.Command(cli))
}
