package sev

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// snpVector is one entry of the shared snp.json.
type snpVector struct {
	ID            string  `json:"id"`
	Mode          string  `json:"mode"`
	VMMType       string  `json:"vmm_type"`
	VCPUs         *int    `json:"vcpus"`
	VCPUType      *string `json:"vcpu_type"`
	VCPUSig       *string `json:"vcpu_sig"`
	FMS           []int   `json:"vcpu_family_model_stepping"`
	GuestFeatures *string `json:"guest_features"`
	Firmware      string  `json:"firmware"`
	Kernel        *string `json:"kernel"`
	Initrd        *string `json:"initrd"`
	Append        *string `json:"append"`
	Command       string  `json:"command"`
	Expected      string  `json:"expected"`
	CrossChecked  string  `json:"cross_checked_with"`
}

func loadSNPVectors(t *testing.T) []snpVector {
	t.Helper()
	var f struct {
		Vectors []snpVector `json:"vectors"`
	}
	if err := json.Unmarshal(testenv.ReadVector(t, "snp.json"), &f); err != nil {
		t.Fatalf("parsing snp.json: %v", err)
	}
	if len(f.Vectors) == 0 {
		t.Fatal("snp.json has no vectors")
	}
	return f.Vectors
}

// readInput reads a vector input; /dev/null (listed in snp.json's files as
// inputs/null, which does not exist) is the empty file.
func readInput(t *testing.T, path string) []byte {
	t.Helper()
	if path == "/dev/null" || path == "inputs/null" {
		return []byte{}
	}
	return testenv.ReadVector(t, path)
}

// cache keeps the inputs read once across subtests.
type inputCache map[string][]byte

func (c inputCache) get(t *testing.T, path string) []byte {
	t.Helper()
	if b, ok := c[path]; ok {
		return b
	}
	b := readInput(t, path)
	c[path] = b
	return b
}

func parseUint(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		t.Fatalf("bad number %q in vector: %v", s, err)
	}
	return v
}

// paramsOf turns a vector into Params the way sev-snp-measure's CLI does.
func paramsOf(t *testing.T, v snpVector, in inputCache) Params {
	t.Helper()
	mode, err := ParseMode(v.Mode)
	if err != nil {
		t.Fatal(err)
	}
	vmm, err := ParseVMM(v.VMMType)
	if err != nil {
		t.Fatal(err)
	}
	p := Params{Mode: mode, VMM: vmm, Firmware: in.get(t, v.Firmware), GuestFeatures: 1}
	if v.VCPUs != nil {
		p.VCPUs = *v.VCPUs
	}
	if v.GuestFeatures != nil {
		p.GuestFeatures = parseUint(t, *v.GuestFeatures)
	}
	switch {
	case len(v.FMS) == 3:
		p.VCPUFMS = &FMS{v.FMS[0], v.FMS[1], v.FMS[2]}
	case v.VCPUSig != nil:
		s := uint32(parseUint(t, *v.VCPUSig))
		p.VCPUSig = &s
	case v.VCPUType != nil:
		p.VCPUType = *v.VCPUType
	}
	if v.Kernel != nil {
		p.DirectBoot = &DirectBoot{Kernel: in.get(t, *v.Kernel)}
		if v.Initrd != nil {
			p.DirectBoot.Initrd = in.get(t, *v.Initrd)
		}
		if v.Append != nil {
			p.DirectBoot.Cmdline = *v.Append
		}
	}
	return p
}

// decodeExpected decodes a vector's expected output (hex, or base64 when the
// command asks for it).
func decodeExpected(t *testing.T, v snpVector) []byte {
	t.Helper()
	var b []byte
	var err error
	if strings.Contains(v.Command, "--output-format base64") {
		b, err = base64.StdEncoding.DecodeString(v.Expected)
	} else {
		b, err = hex.DecodeString(v.Expected)
	}
	if err != nil {
		t.Fatalf("vector %s: bad expected %q: %v", v.ID, v.Expected, err)
	}
	return b
}

func TestSNPVectors(t *testing.T) {
	in := inputCache{}
	prepared := map[string]*Prepared{}
	vectors := loadSNPVectors(t)
	passed := 0
	for _, v := range vectors {
		t.Run(v.ID, func(t *testing.T) {
			want := decodeExpected(t, v)
			var got []byte
			if v.Mode == "snp:ovmf-hash" {
				var err error
				if got, err = SNPFirmwareHash(in.get(t, v.Firmware)); err != nil {
					t.Fatalf("SNPFirmwareHash: %v", err)
				}
			} else {
				p := paramsOf(t, v, in)
				r, err := Measure(p)
				if err != nil {
					t.Fatalf("Measure: %v", err)
				}
				got = r.Digest
				if r.Covers.Kernel != (v.Kernel != nil) {
					t.Errorf("Covers.Kernel = %v, want %v", r.Covers.Kernel, v.Kernel != nil)
				}
				// A prepared firmware, shared by all vectors, gives the same result.
				pre, ok := prepared[v.Firmware]
				if !ok {
					if pre, err = Prepare(p.Firmware); err != nil {
						t.Fatalf("Prepare: %v", err)
					}
					prepared[v.Firmware] = pre
				}
				p.Firmware = nil
				pr, err := pre.Measure(p)
				if err != nil {
					t.Fatalf("Prepared.Measure: %v", err)
				}
				if !bytes.Equal(pr.Digest, r.Digest) || pr.Covers != r.Covers || pr.Variant != r.Variant {
					t.Errorf("Prepared.Measure = %x %+v %q, Measure = %x %+v %q", pr.Digest, pr.Covers, pr.Variant, r.Digest, r.Covers, r.Variant)
				}
			}
			if hex.EncodeToString(got) != hex.EncodeToString(want) {
				t.Errorf("digest = %x, want %x (%s)", got, want, v.Command)
				return
			}
			passed++
		})
	}
	t.Logf("%d of %d snp.json vectors pass", passed, len(vectors))
}
