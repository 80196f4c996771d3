package cca

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/termsafe"
	model "github.com/cocobuild/cocobuild/measure/cca"
	"github.com/cocobuild/cocobuild/tee"
)

const commandHelp = `Compute the Realm Initial Measurement (RIM) and the Realm Extensible Measurements (REMs) of an
Arm CCA realm that QEMU or kvmtool builds, without running it, as the Realm Management Monitor
computes them (RMM specification: REALM_CREATE parameters, RIPAS over all RAM, DATA_CREATE of
the firmware, kernel, initrd and DTB at the VMM's addresses, the boot vCPU's REC).

The command line is that of veraison/cca-realm-measurements' realm-measurements, and so is
the output ("RIM: " and "REM0: " .. "REM3: " lines, 64 bytes of hex, a SHA-256 value
zero-padded; base64 with --print-b64): the tool's options, then qemu or kvmtool and the VMM's
own arguments, which say what the VMM loads (qemu -kernel, -initrd, -bios; kvmtool -k, -i, -f)
while -k, -i and -f here give the files. --json prints the values at their hash size (as the
realm token and Trustee's reference value hold them), the REALM_CREATE parameters and every
measured call.

Options (before the VMM):
  -k, --kernel FILE       arm64 Linux Image (or Image.gz) the VMM loads
  -i, --initrd FILE       initrd the VMM loads
  -f, --firmware FILE     firmware the VMM loads (qemu -bios, kvmtool --firmware)
      --dtb FILE          the device tree the VMM generates for these arguments, measured as
                          it is; without it, the DTB is generated as realm-measurements
                          generates it (QEMU 9.1's virt machine, kvmtool's realm layout)
      --output-dtb FILE   write the DTB measured (the generated one, to boot the realm with)
      --ipa-bits N        host's IPA width (the VMM's need lowers it)
      --num-bps N         host's breakpoints (2-64; required)
      --num-wps N         host's watchpoints (2-64; required)
      --sve-vl N          host's SVE vector length in bits (0: none)
      --pmu-num-ctrs N    host's PMU counters (0-31)
      --pmu BOOL          the host has a PMU for realms (true/false)
      --lpa2 BOOL         the host has LPA2 (true/false)
      --hash-algo ALGO    sha256 or sha512 (QEMU's -object rme-guest,measurement-algorithm=
                          and kvmtool's --measurement-algo override it; defaults: QEMU
                          sha512, kvmtool sha256)
      --print-b64         print base64 instead of hex
      --no-measurements   check the arguments only
      --json              print JSON
      --limit NAME=VALUE  raise a bound on the input files (e.g. kernel=1GiB)
  -v, --verbose           print every measured call on stderr

Not modelled (refused): --dtb-template, configuration
files (-c), CoMID endorsements, cloud-hypervisor, kvmtool --flash. Only the boot vCPU's REC is
measured: the others are started by PSCI. With qemu -bios and -kernel the firmware loads the
kernel and initrd (fw_cfg), outside the RIM; the REMs printed are those at launch (zero),
before the realm extends them.`

// Command implements tee.TEE: `cocobuild measure cca`, with
// realm-measurements' command line. Its own parser reads it (options,
// then the VMM and the VMM's arguments, which are not cocobuild's).
func (TEE) Command(cli *tee.CLI) *cobra.Command {
	c := &cobra.Command{
		Use:   "cca [options] (qemu|kvmtool) [VMM arguments...]",
		Short: "Compute an Arm CCA realm's RIM and REMs (QEMU, kvmtool; realm-measurements compatible)",
		Long:  commandHelp,
		Example: `  cocobuild measure cca --num-bps 6 --num-wps 6 -k Image -i initrd.img --output-dtb realm.dtb kvmtool --realm -c 2 -m 1G -k Image -i initrd.img
  cocobuild measure cca --num-bps 6 --num-wps 6 --ipa-bits 52 -k Image --dtb qemu.dtb qemu -M virt,confidential-guest-support=rme0 -object rme-guest,id=rme0,measurement-algorithm=sha256 -cpu host -enable-kvm -smp 2 -m 1G -kernel Image
  cocobuild measure cca --num-bps 6 --num-wps 6 -f QEMU_EFI.fd --dtb qemu.dtb --json qemu -cpu host -m 1G -bios QEMU_EFI.fd
  cocobuild measure cca --num-bps 6 --num-wps 6 --ipa-bits 52 -k Image --output-dtb realm.dtb qemu -M virt -cpu host -smp 2 -m 1G -kernel Image`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMeasureCCA(cli, cmd, args)
		},
	}
	return c
}

func runMeasureCCA(cli *tee.CLI, cmd *cobra.Command, args []string) error {
	a, err := model.ParseArgs(args)
	if err != nil {
		return cli.Usage(tee.Escaped(err))
	}
	for _, l := range a.Limits {
		if err := cli.Limits.Set(l); err != nil {
			return cli.Usage(fmt.Errorf("--limit: %w", err))
		}
	}
	if a.Help {
		return cmd.Help()
	}
	read := func(flag, path string, l limits.Limit) ([]byte, error) {
		if path == "" {
			return nil, nil
		}
		return tee.ReadInput(cli.Limits, flag, path, l)
	}
	var in model.Inputs
	for _, f := range []struct {
		flag, path string
		l          limits.Limit
		dst        *[]byte
	}{{"kernel", a.Kernel, limits.Kernel, &in.Kernel}, {"initrd", a.Initrd, limits.Initrd, &in.Initrd},
		{"firmware", a.Firmware, limits.Firmware, &in.Firmware}, {"dtb", a.DTB, limits.File, &in.DTB}} {
		if *f.dst, err = read(f.flag, f.path, f.l); err != nil {
			return cli.Usage(err)
		}
	}
	if in.Kernel, err = Kernel(in.Kernel, cli.Limits); err != nil {
		return cli.Failure(tee.Escaped(fmt.Errorf("--kernel: %w", err)))
	}
	res, err := model.Measure(a.Host, a.VMM, a.VMMArgs, in)
	if err != nil {
		return cli.Failure(tee.Escaped(err))
	}
	if a.OutputDTB != "" {
		if err := os.WriteFile(a.OutputDTB, res.DTB, 0o644); err != nil {
			return cli.Failure(fmt.Errorf("--output-dtb: %w", err))
		}
	}
	if a.NoMeasurements {
		return nil
	}
	if cli.JSON() || a.JSON {
		return cli.PrintJSON(jsonResult(res))
	}
	for _, n := range res.Notes {
		fmt.Fprintf(cli.Stderr, "note: %s\n", termsafe.Escape(n))
	}
	if a.Verbose {
		for _, s := range res.Steps {
			fmt.Fprintf(cli.Stderr, "%s %s %#x size %#x (%d granules)\n", s.Call, s.What, s.Base, s.Size, s.Granules)
		}
	}
	show := func(m []byte) string {
		var b [model.MeasurementWidth]byte
		copy(b[:], m)
		if a.PrintB64 {
			return base64.StdEncoding.EncodeToString(b[:])
		}
		return hex.EncodeToString(b[:])
	}
	fmt.Fprintf(cli.Stdout, "RIM: %s\n", show(res.RIM))
	for i, m := range res.REMs {
		fmt.Fprintf(cli.Stdout, "REM%d: %s\n", i, show(m))
	}
	return nil
}

// jsonOutput is the --json document: the values at their hash size, hex
// and base64 (as Trustee's reference value holds the RIM), and the model's
// report.
type jsonOutput struct {
	report
	RIMBase64 string `json:"rim_base64"`
}

func jsonResult(r *model.Result) jsonOutput {
	return jsonOutput{report: newReport(r), RIMBase64: base64.StdEncoding.EncodeToString(r.RIM)}
}
