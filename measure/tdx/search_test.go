package tdx

import (
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestSearchMemory: the TD HOB event Measure logs for a memory size is
// found again by SearchMemory, for sizes below and above the 32-bit hole.
func TestSearchMemory(t *testing.T) {
	fw := testenv.ReadVector(t, "inputs/debian-sid_OVMF.fd")
	md, err := ParseMetadata(fw)
	if err != nil {
		t.Fatal(err)
	}
	for _, mem := range []uint64{1 << 30, 2 << 30, 3<<30 + 512<<20, 8 << 30, 256 << 30} {
		res, err := Measure(fw, Options{Memory: mem})
		if err != nil {
			t.Fatal(err)
		}
		var hob *Event
		for i := range res.Events {
			if res.Events[i].Type == EvEFIHandoffTables2 {
				hob = &res.Events[i]
			}
		}
		if hob == nil {
			t.Fatal("no TD HOB event")
		}
		got, ok := SearchMemory(md, hob.Digest)
		if !ok || got != mem {
			t.Errorf("SearchMemory of the TD HOB of %d bytes: got %d, %v", mem, got, ok)
		}
	}
}
