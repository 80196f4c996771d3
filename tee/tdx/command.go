package tdx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/termsafe"
	model "github.com/cocobuild/cocobuild/measure/tdx"
	"github.com/cocobuild/cocobuild/tee"
)

// measureTDXFlags are the flags of `cocobuild measure tdx`.
type measureTDXFlags struct {
	firmware, kernel, initrd, cmdline string
	pageOrder, memory, qemuVersion    string
	separator, acpiDir, eventLog      string
	uki, disk                         string
	failedBootOptions                 int
}

// Command implements tee.TEE: `cocobuild measure tdx`.
func (TEE) Command(cli *tee.CLI) *cobra.Command {
	var f measureTDXFlags
	c := &cobra.Command{
		Use:   "tdx",
		Short: "Compute a TD's MRTD, RTMR0-3 and expected event log (QEMU q35, TDVF, direct kernel boot)",
		Long: `Compute the Intel TDX measurements of a TD launched by QEMU with a TDVF (OVMF) firmware,
without booting it: MRTD from the firmware and the VMM's page order; RTMR0 from the TD HOB,
the variable store, the Secure Boot and boot variables and QEMU's ACPI blobs (--acpi-dir);
RTMR1 and RTMR2 for direct kernel boot (--kernel, --initrd, --append) or for a unified kernel
image booted from the disk's ESP (--uki, --disk: the UKI and the disk's GPT); RTMR3 is zero.

A register that cannot be computed from what was given (RTMR0 without --acpi-dir, RTMR1/2
without --kernel or --uki, RTMR0 of a disk boot) is left out and the reason printed. --acpi-dir names a directory with the
files table-loader, rsdp and tables (QEMU's etc/table-loader, etc/acpi/rsdp, etc/acpi/tables,
e.g. from /sys/firmware/qemu_fw_cfg/by_name/etc/.../raw in a guest of the same configuration).

The firmware must carry TDX (TDVF) metadata. Input files are read once and must be regular
files within the limits in force (--limit, e.g. firmware 64MiB, kernel 512MiB, ACPI tables
4GiB); /dev/null reads as an empty file.`,
		Example: `  cocobuild measure tdx --firmware OVMF.fd
  cocobuild measure tdx --firmware OVMF.fd --kernel vmlinuz --initrd initrd.img --append "console=ttyS0" --memory 4G
  cocobuild measure tdx --firmware OVMF.fd --page-order two-pass --qemu-version 8.2.2 --tdvf-separator legacy --kernel vmlinuz
  cocobuild measure tdx --firmware OVMF.fd --kernel vmlinuz --acpi-dir acpi/ --eventlog ccel.bin --json
  cocobuild measure tdx --firmware OVMF.fd --uki uki.efi --disk disk.raw --failed-boot-options 1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMeasureTDX(cli, cmd, f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.firmware, "firmware", "", "TDVF/OVMF firmware image (required)")
	fl.StringVar(&f.pageOrder, "page-order", string(model.PageOrderSinglePass), "MRTD page order: single-pass (upstream KVM, GCE) or two-pass (QEMU 8.2.2 TDX builds)")
	fl.StringVar(&f.kernel, "kernel", "", "kernel for QEMU direct boot (-kernel): a bzImage with an EFI stub")
	fl.StringVar(&f.initrd, "initrd", "", "initrd for direct boot (-initrd)")
	fl.StringVar(&f.cmdline, "append", "", "kernel command line (-append)")
	fl.StringVar(&f.memory, "memory", "2G", "guest memory as QEMU -m takes it, e.g. 2G, 1536M or 2048 (MiB)")
	fl.StringVar(&f.qemuVersion, "qemu-version", model.DefaultQEMUVersion.String(), "QEMU release; before 10.2 QEMU patches the kernel's setup header, which changes RTMR1")
	fl.StringVar(&f.separator, "tdvf-separator", string(model.SeparatorCurrent), "TDVF separator placement: current (RTMR1) or legacy (RTMR0, edk2 up to 202408.01)")
	fl.StringVar(&f.acpiDir, "acpi-dir", "", "directory with QEMU's ACPI fw_cfg blobs table-loader, rsdp and tables (needed for RTMR0)")
	fl.StringVar(&f.uki, "uki", "", "unified kernel image the TD boots from its disk's ESP (\\EFI\\BOOT\\BOOTX64.EFI) instead of --kernel; needs --disk")
	fl.StringVar(&f.disk, "disk", "", "the raw disk image the UKI is booted from (its GPT is measured)")
	fl.IntVar(&f.failedBootOptions, "failed-boot-options", 0, "with --uki: boot options the firmware tries, and that return, before the disk's (QEMU's empty CD-ROM drive is one)")
	fl.StringVar(&f.eventLog, "eventlog", "", "write the expected CC event log (CCEL, TCG2 crypto-agile, SHA-384) to this file")
	return c
}

func runMeasureTDX(cli *tee.CLI, cmd *cobra.Command, f measureTDXFlags) error {
	var opts model.Options
	var err error
	if f.firmware == "" {
		return cli.Usage(errors.New("--firmware is required: give the TDVF/OVMF image the TD boots"))
	}
	if f.kernel == "" && (f.initrd != "" || cmd.Flags().Changed("append")) {
		return cli.Usage(errors.New("--initrd and --append describe QEMU direct boot and need --kernel"))
	}
	if (f.uki == "") != (f.disk == "") {
		return cli.Usage(errors.New("--uki and --disk go together: the UKI and the raw disk whose ESP holds it"))
	}
	if f.uki != "" && (f.kernel != "" || f.initrd != "" || cmd.Flags().Changed("append")) {
		return cli.Usage(errors.New("--uki describes a TD that boots a UKI from its disk; --kernel, --initrd and --append describe QEMU direct boot: give one or the other"))
	}
	if f.failedBootOptions < 0 || f.failedBootOptions > 16 || (f.uki == "" && cmd.Flags().Changed("failed-boot-options")) {
		return cli.Usage(errors.New("--failed-boot-options is 0-16 and goes with --uki"))
	}
	if opts.PageOrder, err = model.ParsePageOrder(f.pageOrder); err != nil {
		return cli.Usage(fmt.Errorf("--page-order: %w", err))
	}
	if opts.Memory, err = model.ParseMemory(f.memory); err != nil {
		return cli.Usage(fmt.Errorf("--memory: %w", err))
	}
	if opts.QEMU, err = model.ParseQEMUVersion(f.qemuVersion); err != nil {
		return cli.Usage(fmt.Errorf("--qemu-version: %w", err))
	}
	if opts.Separator, err = model.ParseSeparator(f.separator); err != nil {
		return cli.Usage(fmt.Errorf("--tdvf-separator: %w", err))
	}
	// Every input file is read once, within the limits in force (--limit):
	// a pipe, a device or an oversized file is refused before reading.
	// They are mapped, not copied; every goroutine that reads them is done
	// before they are unmapped (the deferred calls run last first).
	var inputs tee.Inputs
	defer inputs.Close()
	firmware, err := inputs.Map(cli.Limits, "firmware", f.firmware, limits.Firmware)
	if err != nil {
		return cli.Usage(err)
	}
	// Whether the firmware measures into RTMRs is read from its modules
	// while the registers are computed, on another core.
	rtmr := make(chan bool, 1)
	done := make(chan struct{})
	defer func() { <-done }()
	go func() {
		defer close(done)
		v, err := tee.FirmwareVerdict(firmware)
		rtmr <- err != nil || v.MeasuresRTMR // an image that cannot be inspected gets no note
	}()
	if f.kernel != "" {
		if opts.Kernel, err = inputs.Map(cli.Limits, "kernel", f.kernel, limits.Kernel); err != nil {
			return cli.Usage(err)
		}
		opts.Cmdline = f.cmdline
	}
	if f.initrd != "" {
		// An empty file (or /dev/null) is still an initrd: non-nil.
		if opts.Initrd, err = inputs.Map(cli.Limits, "initrd", f.initrd, limits.Initrd); err != nil {
			return cli.Usage(err)
		}
	}
	// The text output prints no SHA-256 of the kernel; --json does.
	opts.NoKernelSHA256 = !cli.JSON()
	if f.uki != "" {
		u := &model.UKIBoot{FailedBootOptions: f.failedBootOptions, LinuxCC: true}
		if u.UKI, err = inputs.Map(cli.Limits, "uki", f.uki, limits.Kernel); err != nil {
			return cli.Usage(err)
		}
		if u.Disk, err = limits.ReadHead(f.disk, model.GPTHeadSize); err != nil {
			return cli.Usage(tee.Escaped(fmt.Errorf("--disk: %w", err)))
		}
		opts.UKI = u
	}
	if f.acpiDir != "" {
		opts.ACPI = &model.ACPITables{}
		for _, b := range []struct {
			name string
			dst  *[]byte
		}{{"table-loader", &opts.ACPI.TableLoader}, {"rsdp", &opts.ACPI.RSDP}, {"tables", &opts.ACPI.Tables}} {
			if *b.dst, err = tee.ReadInput(cli.Limits, "acpi-dir", filepath.Join(f.acpiDir, b.name), limits.File); err != nil {
				return cli.Usage(fmt.Errorf("%w (the directory needs table-loader, rsdp and tables)", err))
			}
		}
	}

	res, err := model.Measure(firmware, opts)
	if err != nil {
		return cli.Failure(tee.Escaped(err))
	}
	if err := inputs.Unchanged(); err != nil {
		return cli.Failure(err)
	}
	if f.eventLog != "" {
		if err := os.WriteFile(f.eventLog, res.EventLog(), 0o644); err != nil {
			return cli.Failure(fmt.Errorf("--eventlog: %w", err))
		}
	}
	rep := res.Report()
	var notes []string
	if !<-rtmr {
		notes = append(notes, noTdTcg2DxeNote)
	}
	if cli.JSON() {
		// The notes go into the document, so that --json loses nothing.
		return cli.PrintJSON(struct {
			model.Report
			Notes []string `json:"notes,omitempty"`
		}{rep, notes})
	}
	for _, n := range notes {
		fmt.Fprintf(cli.Stderr, "note: %s\n", termsafe.Escape(n))
	}
	fmt.Fprintf(cli.Stdout, "mrtd: %s\n", rep.MRTD)
	for i, d := range []*model.Digest{rep.RTMR0, rep.RTMR1, rep.RTMR2, rep.RTMR3} {
		name := "rtmr" + strconv.Itoa(i)
		if d == nil {
			fmt.Fprintf(cli.Stderr, "note: %s not computable: %s\n", name, termsafe.Escape(rep.NotComputable[name]))
			continue
		}
		fmt.Fprintf(cli.Stdout, "%s: %s\n", name, d)
	}
	return nil
}

// noTdTcg2DxeNote is what measure tdx says of a firmware without the CC
// measurement driver.
const noTdTcg2DxeNote = "the firmware has no CC measurement driver (TdTcg2Dxe): a TD booted with it does not extend the RTMRs as modelled here; the RTMR values assume a TDVF that does"
