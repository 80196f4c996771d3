package main

import (
	"strings"

	"github.com/spf13/cobra"
)

func newMeasureCmd(a *app) *cobra.Command {
	subs := measureSubcommands(a)
	// The example is each TEE's first.
	var examples []string
	for _, s := range subs {
		if first, _, _ := strings.Cut(s.Example, "\n"); first != "" {
			examples = append(examples, first)
		}
	}
	c := &cobra.Command{
		Use:     "measure",
		Short:   "Compute launch measurements from firmware, kernel and parameters, without booting",
		Example: strings.Join(examples, "\n"),
		Args:    cobra.NoArgs,
	}
	c.AddCommand(subs...)
	a.addLimitFlag(c, true)
	return c
}
