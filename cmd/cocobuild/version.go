package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/version"
)

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print cocobuild's version",
		Example: "  cocobuild version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.json {
				return a.printJSON(map[string]string{"version": version.Version, "go": runtime.Version()})
			}
			fmt.Fprintf(a.stdout, "cocobuild %s (%s)\n", version.Version, runtime.Version())
			return nil
		},
	}
}
