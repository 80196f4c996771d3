package sev

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// sevesFeaturesVector is one entry of testdata/seves-features.json.
type sevesFeaturesVector struct {
	SEVFeatures string `json:"sev_features"`
	VCPUs       int    `json:"vcpus"`
	VCPUType    string `json:"vcpu_type"`
	VMM         string `json:"vmm"`
	Firmware    string `json:"firmware"`
	Kernel      string `json:"kernel"`
	Initrd      string `json:"initrd"`
	Append      string `json:"append"`
	Expected    string `json:"expected"`
}

// TestSEVESFeaturesMatchSevSnpMeasure checks SEV-ES digests with SEV_FEATURES
// in the VMSAs against sev-snp-measure's own seves computation.
func TestSEVESFeaturesMatchSevSnpMeasure(t *testing.T) {
	b, err := os.ReadFile("testdata/seves-features.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []sevesFeaturesVector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("parsing seves-features.json: %v", err)
	}
	if len(f.Vectors) == 0 {
		t.Fatal("seves-features.json has no vectors")
	}
	in := inputCache{}
	nonZero := 0
	for _, v := range f.Vectors {
		name := v.VMM + "-" + v.VCPUType + "-" + v.SEVFeatures + "-" + v.Firmware
		t.Run(name, func(t *testing.T) {
			vmm, err := ParseVMM(v.VMM)
			if err != nil {
				t.Fatal(err)
			}
			// GuestFeatures 0x21 as a script might pass for every mode: ignored.
			p := Params{Mode: ModeSEVES, VMM: vmm, VCPUs: v.VCPUs, VCPUType: v.VCPUType, Firmware: in.get(t, v.Firmware),
				GuestFeatures: 0x21, SEVESFeatures: parseUint(t, v.SEVFeatures)}
			if v.Kernel != "" {
				p.DirectBoot = &DirectBoot{Kernel: in.get(t, v.Kernel), Initrd: in.get(t, v.Initrd), Cmdline: v.Append}
			}
			p.DumpVMSA = true
			r, err := Measure(p)
			if err != nil {
				t.Fatalf("Measure: %v", err)
			}
			if got := hex.EncodeToString(r.Digest); got != v.Expected {
				t.Errorf("digest = %s, want %s (sev-snp-measure)", got, v.Expected)
			}
			for i, page := range r.VMSAs {
				if got := binary.LittleEndian.Uint64(page[vmsaSEVFeat:]); got != p.SEVESFeatures {
					t.Errorf("VMSA %d SEV_FEATURES = %#x, want %#x", i, got, p.SEVESFeatures)
				}
			}
			if !strings.Contains(r.Variant, "SEV_FEATURES "+v.SEVFeatures) {
				t.Errorf("variant %q does not say SEV_FEATURES %s", r.Variant, v.SEVFeatures)
			}
		})
		if v.SEVFeatures != "0x0" {
			nonZero++
		}
	}
	if nonZero == 0 {
		t.Error("no vector with non-zero SEV-ES features")
	}
}

func TestSEVESFeaturesDefaultUnchanged(t *testing.T) {
	// The zero value keeps today's digest: the snp.json seves vectors, which
	// sev-snp-measure computed with sev_features 0, also pass in
	// TestSNPVectors; this pins one of them with guest features that SEV-ES
	// ignores.
	fw := readInput(t, "inputs/debian12_OVMF.fd")
	for _, gf := range []uint64{0, 1, 0x21} {
		r, err := Measure(Params{Mode: ModeSEVES, VMM: VMMQEMU, VCPUs: 1, VCPUType: "EPYC-v4", Firmware: fw, GuestFeatures: gf})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := hex.EncodeToString(r.Digest), "5bcbb5a45e7a9fa4699b6cc8f775382a810ff5a0186d3b90069ba28b1840b38f"; got != want {
			t.Errorf("guest features %#x: digest = %s, want %s", gf, got, want)
		}
	}
}

func TestSEVESFeaturesErrors(t *testing.T) {
	fw := readInput(t, "inputs/debian12_OVMF.fd")
	for _, c := range []struct {
		name string
		p    Params
		want string
	}{
		{"SNPActive in SEV-ES", Params{Mode: ModeSEVES, SEVESFeatures: 0x21}, "SNPActive"},
		{"SEV-ES features in snp mode", Params{Mode: ModeSNP, GuestFeatures: 1, SEVESFeatures: 0x20}, "only apply in seves mode"},
		{"SEV-ES features in sev mode", Params{Mode: ModeSEV, SEVESFeatures: 0x20}, "only apply in seves mode"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.p.VMM, c.p.VCPUs, c.p.VCPUType, c.p.Firmware = VMMQEMU, 1, "EPYC-v4", fw
			_, err := Measure(c.p)
			var pe *ParamError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got error %v, want a ParamError saying %q", err, c.want)
			}
		})
	}
}

// TestEmptyInitrdHashesTable: QEMU hashes the initrd it was given, or nothing
// without one, and OVMF's SEV hashes verifier hashes the blob it fetched (no
// bytes for a size-0 initrd) against the table; sev-snp-measure hashes b""
// for a missing initrd. So an empty initrd and none give the same table and
// digest, whose initrd entry is SHA-256 of nothing.
func TestEmptyInitrdHashesTable(t *testing.T) {
	fw := readInput(t, "inputs/ovmf_AmdSev_suffix.bin")
	kernel := readInput(t, "inputs/tiny-kernel.bin")
	emptySHA256 := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	for _, mode := range []Mode{ModeSEV, ModeSEVES, ModeSNP} {
		t.Run(mode.String(), func(t *testing.T) {
			digest := func(initrd []byte) *Result {
				t.Helper()
				p := Params{Mode: mode, VMM: VMMQEMU, Firmware: fw, DirectBoot: &DirectBoot{Kernel: kernel, Initrd: initrd, Cmdline: "console=ttyS0"}}
				if mode != ModeSEV {
					p.VCPUs, p.VCPUType, p.GuestFeatures = 1, "EPYC-v4", 1
				}
				r, err := Measure(p)
				if err != nil {
					t.Fatalf("Measure: %v", err)
				}
				return r
			}
			none, empty := digest(nil), digest([]byte{})
			if got, want := hex.EncodeToString(empty.Digest), hex.EncodeToString(none.Digest); got != want {
				t.Errorf("digest with an empty initrd = %s, want %s (as with none)", got, want)
			}
			if got := hex.EncodeToString(empty.HashTable.Initrd[:]); got != emptySHA256 {
				t.Errorf("hashes table initrd entry = %s, want %s (SHA-256 of nothing)", got, emptySHA256)
			}
		})
	}
}
