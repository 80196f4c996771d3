package tdx

import (
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestLoadOptionsDigestIsTheModelsEvent: LoadOptionsDigest gives the digest
// of the LoadOptions event that Measure logs, with and without an initrd.
func TestLoadOptionsDigestIsTheModelsEvent(t *testing.T) {
	fw := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	kernel := testenv.ReadVector(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64")
	for _, initrd := range [][]byte{nil, testenv.ReadVector(t, "inputs/initrd-a.cpio")} {
		res, err := Measure(fw, Options{Kernel: kernel, Initrd: initrd, Cmdline: "console=ttyS0 quiet"})
		if err != nil {
			t.Fatal(err)
		}
		want := LoadOptionsDigest(LoadOptions("console=ttyS0 quiet", initrd != nil))
		n := 0
		for _, e := range res.Events {
			if e.RTMR == 2 && e.Type == EvEventTag && e.Digest == want {
				n++
			}
		}
		if n != 1 {
			t.Errorf("initrd %v: %d RTMR2 events have LoadOptionsDigest %s, want 1", initrd != nil, n, want)
		}
	}
}
