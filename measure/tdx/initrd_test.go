package tdx

import (
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestEmptyInitrdIsNoInitrd: OVMF serves no initrd of size 0, so an empty
// -initrd file measures like none in RTMR2 (no " initrd=initrd", no initrd
// event); QEMU before 10.2 still patches the header for it (RTMR1).
func TestEmptyInitrdIsNoInitrd(t *testing.T) {
	fw := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	kernel := testenv.ReadVector(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64")
	measure := func(t *testing.T, q QEMUVersion, initrd []byte) *Result {
		t.Helper()
		r, err := Measure(fw, Options{Kernel: kernel, Initrd: initrd, Cmdline: "console=ttyS0", QEMU: q})
		if err != nil {
			t.Fatalf("Measure: %v", err)
		}
		return r
	}
	for _, c := range []struct {
		qemu           QEMUVersion
		sameRTMR1AsNil bool // QEMU < 10.2 writes the empty initrd's address into the header
	}{
		{DefaultQEMUVersion, true},
		{QEMUVersion{8, 2, 2}, false},
	} {
		t.Run(c.qemu.String(), func(t *testing.T) {
			none, empty := measure(t, c.qemu, nil), measure(t, c.qemu, []byte{})
			if got, want := empty.RTMR[2].Value, none.RTMR[2].Value; got != want {
				t.Errorf("RTMR2 with an empty initrd = %s, want %s (as with none)", got, want)
			}
			if got := empty.RTMR[1].Value == none.RTMR[1].Value; got != c.sameRTMR1AsNil {
				t.Errorf("RTMR1 same as without initrd: got %v, want %v", got, c.sameRTMR1AsNil)
			}
			var rtmr2 []string
			for _, e := range empty.Events {
				if e.RTMR == 2 {
					rtmr2 = append(rtmr2, e.Description)
				}
			}
			if len(rtmr2) != 1 || !strings.Contains(rtmr2[0], `LoadOptions "console=ttyS0"`) {
				t.Errorf("RTMR2 events = %q, want only the LoadOptions \"console=ttyS0\" event", rtmr2)
			}
			if got, want := empty.RTMR[2].Value, Replay(sha384(widenASCII("console=ttyS0"))); got != want {
				t.Errorf("RTMR2 = %s, want %s (UTF-16LE \"console=ttyS0\" and its NUL)", got, want)
			}
			// A one-byte initrd is an initrd.
			one := measure(t, c.qemu, []byte{0})
			if want := Replay(sha384(widenASCII("console=ttyS0 initrd=initrd")), sha384([]byte{0})); one.RTMR[2].Value != want {
				t.Errorf("RTMR2 with a 1-byte initrd = %s, want %s", one.RTMR[2].Value, want)
			}
		})
	}
}
