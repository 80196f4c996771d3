package tdx

import (
	"encoding/binary"
	"fmt"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// logEntry names an event of a parsed log: MR index, type, and the action
// string or variable name it carries.
func logEntry(index int, typ uint32, data []byte) string {
	s := fmt.Sprintf("MR%d %s", index, EventType(typ))
	switch EventType(typ) {
	case EvEFIAction:
		s += " " + string(data)
	case EvEFIVariableBoot, EvEFIVariableDriverConfig:
		if len(data) >= 32 {
			n := int(binary.LittleEndian.Uint64(data[16:]))
			if 32+2*n <= len(data) {
				u := make([]uint16, n)
				for i := range u {
					u[i] = binary.LittleEndian.Uint16(data[32+2*i:])
				}
				s += " " + string(utf16.Decode(u))
			}
		}
	}
	return s
}

// TestEventLogOrderAsTDVF checks the order of the events in the log bytes
// against edk2's direct boot path: TryRunningQemuKernel loads the kernel
// (LoadImage measures it into RTMR1), then signals ReadyToBoot, where
// TdTcg2Dxe measures BootOrder and Boot#### (RTMR0), "Calling EFI
// Application from Boot Option" and the separator; then the kernel's EFI
// stub measures LoadOptions and the initrd (RTMR2) and calls
// ExitBootServices. The log is parsed by go-eventlog, and the Spec ID event
// has PCRIndex 1 as TdTcg2Dxe writes it.
func TestEventLogOrderAsTDVF(t *testing.T) {
	fw := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	kernel := testenv.ReadVector(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64")
	initrd := testenv.ReadVector(t, "inputs/initrd-a.cpio")
	for _, c := range []struct {
		name   string
		opts   Options
		suffix []string // the events after the ACPI tables
	}{
		{"direct boot", Options{Kernel: kernel, Initrd: initrd, Cmdline: "console=ttyS0"}, []string{
			"MR2 EV_EFI_BOOT_SERVICES_APPLICATION",
			"MR1 EV_EFI_VARIABLE_BOOT BootOrder",
			"MR1 EV_EFI_VARIABLE_BOOT Boot0000",
			"MR2 EV_EFI_ACTION Calling EFI Application from Boot Option",
			"MR2 EV_SEPARATOR",
			"MR3 EV_EVENT_TAG",
			"MR3 EV_EVENT_TAG",
			"MR2 EV_EFI_ACTION Exit Boot Services Invocation",
			"MR2 EV_EFI_ACTION Exit Boot Services Returned with Success",
		}},
		{"direct boot, legacy separator", Options{Kernel: kernel, Cmdline: "console=ttyS0", Separator: SeparatorLegacy}, []string{
			"MR2 EV_EFI_BOOT_SERVICES_APPLICATION",
			"MR1 EV_EFI_VARIABLE_BOOT BootOrder",
			"MR1 EV_EFI_VARIABLE_BOOT Boot0000",
			"MR2 EV_EFI_ACTION Calling EFI Application from Boot Option",
			"MR1 EV_SEPARATOR",
			"MR3 EV_EVENT_TAG",
			"MR2 EV_EFI_ACTION Exit Boot Services Invocation",
			"MR2 EV_EFI_ACTION Exit Boot Services Returned with Success",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.ACPI = syntheticACPI()
			res, err := Measure(fw, c.opts)
			if err != nil {
				t.Fatalf("Measure: %v", err)
			}
			log := res.EventLog()
			if got := binary.LittleEndian.Uint32(log[0:]); got != 1 {
				t.Errorf("Spec ID event PCRIndex = %d, want 1 (TdTcg2Dxe)", got)
			}
			parsed, err := tcg.ParseEventLog(log, tcg.ParseOpts{})
			if err != nil {
				t.Fatalf("go-eventlog ParseEventLog: %v", err)
			}
			var got []string
			for _, e := range parsed.Events(register.HashSHA384) {
				got = append(got, logEntry(e.Index, uint32(e.Type), e.Data))
			}
			// The RTMR0 events before ReadyToBoot: TD HOB, CFV, Secure Boot
			// configuration and its separator, then the ACPI tables.
			head := []string{
				"MR1 EV_EFI_HANDOFF_TABLES2",
				"MR1 EV_EFI_PLATFORM_FIRMWARE_BLOB2",
				"MR1 EV_EFI_VARIABLE_DRIVER_CONFIG SecureBoot",
				"MR1 EV_EFI_VARIABLE_DRIVER_CONFIG PK",
				"MR1 EV_EFI_VARIABLE_DRIVER_CONFIG KEK",
				"MR1 EV_EFI_VARIABLE_DRIVER_CONFIG db",
				"MR1 EV_EFI_VARIABLE_DRIVER_CONFIG dbx",
				"MR1 EV_SEPARATOR",
			}
			acpi, err := acpiEvents(c.opts.ACPI)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range acpi {
				head = append(head, logEntry(int(e.MRIndex()), uint32(e.Type), e.Data))
			}
			want := append(head, c.suffix...)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("event order in the log (-want +got):\n%s", diff)
			}
			// Still replays to the registers.
			if _, err := tcg.ParseAndReplay(log, rtmrBank(res).MRs(), tcg.ParseOpts{}); err != nil {
				t.Errorf("go-eventlog ParseAndReplay: %v", err)
			}
		})
	}
}
