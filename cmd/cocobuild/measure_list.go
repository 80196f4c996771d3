package main

import "github.com/spf13/cobra"

// measureSubcommands lists the `cocobuild measure` subcommands, one per TEE.
func measureSubcommands(a *app) []*cobra.Command {
	return []*cobra.Command{
		newMeasureSEVCmd(a),
		newMeasureTDXCmd(a),
	}
}
