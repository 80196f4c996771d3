package tdx

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/google/go-eventlog/ccel"
	"github.com/google/go-eventlog/extract"
	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"
)

// syntheticACPI returns ACPI blobs shaped like QEMU's: a table-loader that
// allocates etc/acpi/tables and then etc/acpi/rsdp, and two blobs.
func syntheticACPI() *ACPITables {
	loader := make([]byte, 3*loaderEntrySize)
	for i, name := range []string{fwCfgTables, fwCfgRSDP} {
		cmd := loader[i*loaderEntrySize:]
		binary.LittleEndian.PutUint32(cmd, loaderCmdAlloc)
		copy(cmd[4:], name)
	}
	binary.LittleEndian.PutUint32(loader[2*loaderEntrySize:], 2) // ADD_POINTER: not an allocation
	return &ACPITables{TableLoader: loader, RSDP: []byte("RSD PTR synthetic"), Tables: bytes.Repeat([]byte("DSDT"), 100)}
}

func rtmrBank(r *Result) register.RTMRBank {
	var bank register.RTMRBank
	for i, reg := range r.RTMR {
		bank.RTMRs = append(bank.RTMRs, register.RTMR{Index: i, Digest: append([]byte(nil), reg.Value[:]...)})
	}
	return bank
}

// ccelACPITable builds a CCEL ACPI table (TDX) pointing at a log of n bytes.
func ccelACPITable(n int) []byte {
	t := make([]byte, 56)
	copy(t, "CCEL")
	binary.LittleEndian.PutUint32(t[4:], uint32(len(t)))
	t[8] = 1                                         // revision
	t[36] = 2                                        // CC type: TDX
	binary.LittleEndian.PutUint64(t[40:], uint64(n)) // LAML
	return t
}

func measuredForReplay(t *testing.T, sep Separator, qemu QEMUVersion) *Result {
	t.Helper()
	fw := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	res, err := Measure(fw, Options{
		Kernel:    testenv.ReadVector(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64"),
		Initrd:    testenv.ReadVector(t, "inputs/initrd-a.cpio"),
		Cmdline:   "console=ttyS0",
		ACPI:      syntheticACPI(),
		Separator: sep,
		QEMU:      qemu,
	})
	if err != nil {
		t.Fatalf("Measure: %v", err)
	}
	for i, r := range res.RTMR {
		if !r.Computable {
			t.Fatalf("RTMR%d not computable: %s", i, r.Reason)
		}
	}
	return res
}

func TestEventLogReplaysWithGoEventlog(t *testing.T) {
	for _, c := range []struct {
		sep  Separator
		qemu QEMUVersion
	}{{SeparatorCurrent, DefaultQEMUVersion}, {SeparatorLegacy, QEMUVersion{8, 2, 2}}} {
		t.Run(string(c.sep)+"-"+c.qemu.String(), func(t *testing.T) {
			res := measuredForReplay(t, c.sep, c.qemu)
			log := res.EventLog()
			events, err := tcg.ParseAndReplay(log, rtmrBank(res).MRs(), tcg.ParseOpts{})
			if err != nil {
				t.Fatalf("go-eventlog tcg.ParseAndReplay: %v", err)
			}
			if len(events) != len(res.Events) {
				t.Errorf("go-eventlog replayed %d events, want %d", len(events), len(res.Events))
			}
			// The CCEL path as a TD guest reads it: ACPI table, log padded
			// with 0xff. Its extraction step expects a GRUB/shim boot and
			// fails on direct boot, after the replay succeeded; a replay
			// failure reads "failed to replay".
			padded := append(append([]byte(nil), log...), bytes.Repeat([]byte{0xff}, 64)...)
			_, err = ccel.ReplayAndExtract(ccelACPITable(len(padded)), padded, rtmrBank(res), extract.Opts{Loader: extract.GRUB})
			if err != nil && strings.Contains(err.Error(), "replay") {
				t.Errorf("go-eventlog ccel.ReplayAndExtract does not replay the log: %v", err)
			}
			bank := rtmrBank(res)
			bank.RTMRs[1].Digest[0] ^= 1
			_, err = ccel.ReplayAndExtract(ccelACPITable(len(padded)), padded, bank, extract.Opts{Loader: extract.GRUB})
			if err == nil || !strings.Contains(err.Error(), "replay") {
				t.Errorf("ccel.ReplayAndExtract against a wrong RTMR1 = %v, want a replay error", err)
			}
		})
	}
}

func TestEventLogOneBitChangeRejected(t *testing.T) {
	res := measuredForReplay(t, SeparatorCurrent, DefaultQEMUVersion)
	log := res.EventLog()
	mrs := rtmrBank(res).MRs()
	if _, err := tcg.ParseAndReplay(log, mrs, tcg.ParseOpts{}); err != nil {
		t.Fatalf("unmodified log does not replay: %v", err)
	}
	// Flip one bit in each event's digest in turn, and one bit of each RTMR.
	off := specIDEventLen(t, log)
	for i := range res.Events {
		evOff := off + 4 + 4 + 4 + 2 // MR index, type, digest count, algorithm
		bad := append([]byte(nil), log...)
		bad[evOff+i%DigestSize] ^= 1 << (i % 8)
		if _, err := tcg.ParseAndReplay(bad, mrs, tcg.ParseOpts{}); err == nil {
			t.Errorf("event %d (%s) with one digest bit flipped still replays", i, res.Events[i].Description)
		}
		off = evOff + DigestSize + 4 + int(binary.LittleEndian.Uint32(log[evOff+DigestSize:]))
	}
	if off != len(log) {
		t.Fatalf("walked %d of %d log bytes: log layout unexpected", off, len(log))
	}
	for i := range res.RTMR[:3] {
		bank := rtmrBank(res)
		bank.RTMRs[i].Digest[47] ^= 0x80
		if _, err := tcg.ParseAndReplay(log, bank.MRs(), tcg.ParseOpts{}); err == nil {
			t.Errorf("log replays against RTMR%d with one bit flipped", i)
		}
	}
}

// specIDEventLen returns the length of the leading Spec ID event.
func specIDEventLen(t *testing.T, log []byte) int {
	t.Helper()
	if len(log) < 32 {
		t.Fatalf("log of %d bytes has no Spec ID event", len(log))
	}
	return 32 + int(binary.LittleEndian.Uint32(log[28:]))
}
