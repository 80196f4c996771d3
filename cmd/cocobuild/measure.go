package main

import "github.com/spf13/cobra"

func newMeasureCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "measure",
		Short: "Compute launch measurements from firmware, kernel and parameters, without booting",
		Example: `  cocobuild measure sev --mode snp --ovmf OVMF.fd --vcpus 4 --vcpu-type EPYC-Milan
  cocobuild measure tdx --firmware OVMF.fd --kernel vmlinuz --append "console=ttyS0"`,
		Args: cobra.NoArgs,
	}
	c.AddCommand(measureSubcommands(a)...)
	return c
}
