package cca

import (
	"bytes"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestGeneratedDTBs generates the DTB of each vector of cca.json (QEMU
// and kvmtool) and compares it, byte for byte, with the one
// realm-measurements generated; the RIM with it is the vector's.
func TestGeneratedDTBs(t *testing.T) {
	vmms := map[string]int{}
	for _, v := range loadCCAVectors(t) {
		vmms[v.VMMArgs[0]]++
		a, err := ParseArgs(append(append([]string(nil), v.Host...), v.VMMArgs...))
		if err != nil {
			t.Fatal(err)
		}
		read := func(p *string) []byte {
			if p == nil {
				return nil
			}
			return testenv.ReadVector(t, *p)
		}
		res, err := Measure(a.Host, a.VMM, a.VMMArgs, Inputs{Kernel: read(v.Kernel), Initrd: read(v.Initrd), Firmware: read(v.Firmware)})
		if err != nil {
			t.Fatalf("%s: %v", v.ID, err)
		}
		want := testenv.ReadVector(t, v.DTB)
		if !res.DTBGenerated || !bytes.Equal(res.DTB, want) {
			t.Errorf("%s: generated DTB (%d bytes, generated %v) differs from realm-measurements' (%d bytes) at byte %d", v.ID, len(res.DTB), res.DTBGenerated, len(want), firstDiff(res.DTB, want))
		}
		if got := Padded(res.RIM); got != v.Expected["rim"] {
			t.Errorf("%s: RIM with the generated DTB %s, want %s", v.ID, got, v.Expected["rim"])
		}
	}
	if vmms[QEMU] < 3 || vmms[Kvmtool] < 2 {
		t.Fatalf("vectors by VMM %v, want 3 qemu and 2 kvmtool", vmms)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
