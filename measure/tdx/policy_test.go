package tdx

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"testing"
	"unicode/utf16"

	"github.com/google/go-eventlog/tcg"
)

// utf16Path is name as UTF-16LE, the form a device path's file node holds
// (Trustee's parser prints it as File(name)).
func utf16Path(name string) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune(name)) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

// TestDirectBootDigestsAreTheEventLogsEvents parses the event log with
// go-eventlog and finds the two events the way Trustee's default policy
// does (ear_default_policy_cpu.rego, tdx_uefi_event_tdvfkernel_ok and
// tdx_uefi_event_tdvfkernelparams_ok): the EV_EFI_BOOT_SERVICES_APPLICATION
// whose device path names File(kernel), and the EV_EVENT_TAG whose string
// is LOADED_IMAGE::LoadOptions; their SHA-384 digests must be the ones
// DirectBootDigests returns.
func TestDirectBootDigestsAreTheEventLogsEvents(t *testing.T) {
	res := measuredForReplay(t, SeparatorCurrent, DefaultQEMUVersion)
	events, err := tcg.ParseAndReplay(res.EventLog(), rtmrBank(res).MRs(), tcg.ParseOpts{})
	if err != nil {
		t.Fatalf("go-eventlog tcg.ParseAndReplay: %v", err)
	}
	var kernel, params [][]byte
	for _, e := range events {
		switch {
		case e.Type == tcg.EFIBootServicesApplication && bytes.Contains(e.Data, utf16Path("kernel")):
			kernel = append(kernel, e.Digest)
		case e.Type == tcg.EventTag && bytes.Contains(e.Data, []byte("LOADED_IMAGE::LoadOptions\x00")):
			params = append(params, e.Digest)
		}
	}
	k, lo := res.DirectBootDigests()
	if k == nil || lo == nil {
		t.Fatalf("DirectBootDigests = %v, %v: want both", k, lo)
	}
	if len(kernel) != 1 || !bytes.Equal(kernel[0], k[:]) {
		t.Errorf("the log's kernel events have digests %x, want one: %s", kernel, k)
	}
	if len(params) != 1 || !bytes.Equal(params[0], lo[:]) {
		t.Errorf("the log's LoadOptions events have digests %x, want one: %s", params, lo)
	}
	// LoadOptions is the command line and the initrd= the stub adds, as
	// UTF-16LE with its NUL.
	want := sha512.Sum384(append(utf16Path("console=ttyS0 initrd=initrd"), 0, 0))
	if !bytes.Equal(want[:], lo[:]) {
		t.Errorf("tdvfkernelparams %s, want %x", lo, want)
	}
	if !bytes.Equal(k[:], res.KernelAuthenticodeSHA384[:]) {
		t.Errorf("tdvfkernel %s, want the kernel's Authenticode SHA-384 %s", k, res.KernelAuthenticodeSHA384)
	}
}

func TestDirectBootDigestsWithoutAKernel(t *testing.T) {
	res := &Result{Events: []Event{{RTMR: 0, Type: EvEventTag, Data: taggedEventData(loadOptionsTagID, "x")}}}
	if k, lo := res.DirectBootDigests(); k != nil || lo != nil {
		t.Errorf("got %v, %v, want nil, nil: no direct-boot events in RTMR1/RTMR2", k, lo)
	}
}
