package cca

import (
	"encoding/json"
	"path"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// ccaVector is one vector of cca.json: realm-measurements' (commit
// 08aaf5a) output for a VMM command line and the DTB that the VMM
// generates for it.
type ccaVector struct {
	ID       string            `json:"id"`
	Host     []string          `json:"host"`
	VMMArgs  []string          `json:"vmm_args"`
	Kernel   *string           `json:"kernel"`
	Initrd   *string           `json:"initrd"`
	Firmware *string           `json:"firmware"`
	DTB      string            `json:"dtb"`
	Expected map[string]string `json:"expected"`
}

func loadCCAVectors(t *testing.T) []ccaVector {
	t.Helper()
	var f struct {
		Vectors []ccaVector `json:"vectors"`
	}
	if err := json.Unmarshal(testenv.ReadVector(t, "cca.json"), &f); err != nil {
		t.Fatalf("parsing cca.json: %v", err)
	}
	if len(f.Vectors) < 5 {
		t.Fatalf("cca.json has %d vectors, want at least 5", len(f.Vectors))
	}
	return f.Vectors
}

// TestVectors computes every vector of cca.json from its command line and
// inputs, and compares the RIM and REMs, printed as realm-measurements
// prints them (64 bytes of hex, SHA-256 values zero-padded).
func TestVectors(t *testing.T) {
	for _, v := range loadCCAVectors(t) {
		t.Run(v.ID, func(t *testing.T) {
			args, err := ParseArgs(append(append([]string(nil), v.Host...), v.VMMArgs...))
			if err != nil {
				t.Fatalf("ParseArgs: %v", err)
			}
			read := func(p *string) []byte {
				if p == nil {
					return nil
				}
				return testenv.ReadVector(t, path.Clean(*p))
			}
			in := Inputs{Kernel: read(v.Kernel), Initrd: read(v.Initrd), Firmware: read(v.Firmware), DTB: read(&v.DTB)}
			res, err := Measure(args.Host, args.VMM, args.VMMArgs, in)
			if err != nil {
				t.Fatalf("Measure: %v", err)
			}
			got := map[string]string{"rim": Padded(res.RIM)}
			for i, r := range res.REMs {
				got["rem"+string(rune('0'+i))] = Padded(r)
			}
			for _, k := range []string{"rim", "rem0", "rem1", "rem2", "rem3"} {
				if v.Expected[k] == "" {
					t.Fatalf("vector has no expected %s", k)
				}
				if got[k] != v.Expected[k] {
					t.Errorf("%s = %s, want %s (realm-measurements)", k, got[k], v.Expected[k])
				}
			}
			if len(res.RIM) != res.Hash.Size() {
				t.Errorf("RIM has %d bytes, want %d for %s", len(res.RIM), res.Hash.Size(), res.Hash)
			}
		})
	}
}
