package sev

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// upstreamTests is the part of snp-upstream-tests.json these tests read.
type upstreamTests struct {
	SevSNPMeasure struct {
		DigestVectors []struct {
			Test   string `json:"test"`
			Params struct {
				Mode          string  `json:"mode"`
				VCPUs         int     `json:"vcpus"`
				VCPUSig       *string `json:"vcpu_sig"`
				OVMF          string  `json:"ovmf"`
				Kernel        *string `json:"kernel"`
				Initrd        *string `json:"initrd"`
				Append        *string `json:"append"`
				GuestFeatures uint64  `json:"guest_features"`
				SNPOVMFHash   *string `json:"snp_ovmf_hash"`
				VMMType       *string `json:"vmm_type"`
				SVSM          *string `json:"svsm"`
			} `json:"params"`
			Expected      string `json:"expected"`
			ExpectedError string `json:"expected_error"`
		} `json:"digest_vectors"`
		IDBlock struct {
			Measurement string `json:"measurement_b64"`
			Block       string `json:"expected_id_block_b64_prefix"`
		} `json:"id_block_vector"`
	} `json:"sev-snp-measure"`
	GCE struct {
		Vectors []struct {
			Test     string `json:"test"`
			Expected string `json:"expected"`
		} `json:"vectors"`
	} `json:"gce-tcb-verifier"`
	SNPMeasureGo struct {
		Vectors []struct {
			Test     string `json:"test"`
			VCPUs    int    `json:"vcpus"`
			OVMFHash string `json:"ovmf_hash"`
			Expected string `json:"expected"`
		} `json:"vectors"`
	} `json:"sev-snp-measure-go"`
}

func loadUpstream(t *testing.T) upstreamTests {
	t.Helper()
	var u upstreamTests
	if err := json.Unmarshal(testenv.ReadVector(t, "snp-upstream-tests.json"), &u); err != nil {
		t.Fatalf("parsing snp-upstream-tests.json: %v", err)
	}
	return u
}

// upstreamInput maps an upstream test's input path to the shared inputs
// (fixtures are stored there under their base name); ok is false when the
// input is not shipped with the vectors.
func upstreamInput(t *testing.T, p string) ([]byte, bool) {
	t.Helper()
	if p == "/dev/null" {
		return []byte{}, true
	}
	rel := "inputs/" + path.Base(p)
	if _, err := os.Stat(testenv.VectorFile(t, rel)); err != nil {
		return nil, false
	}
	return testenv.ReadVector(t, rel), true
}

func wantHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad expected digest %q: %v", s, err)
	}
	return b
}

// TestSevSNPMeasureUpstream runs the digests asserted by sev-snp-measure's own
// test suite whose inputs ship with the vectors.
func TestSevSNPMeasureUpstream(t *testing.T) {
	u := loadUpstream(t)
	ran := 0
	for _, v := range u.SevSNPMeasure.DigestVectors {
		pv := v.Params
		fw, ok := upstreamInput(t, pv.OVMF)
		if !ok || pv.SVSM != nil {
			t.Logf("%s: not covered (input %s or SVSM binary not shipped; snp:svsm mode is not modelled)", v.Test, pv.OVMF)
			continue
		}
		ran++
		t.Run(path.Base(v.Test), func(t *testing.T) {
			p := Params{Firmware: fw, VCPUs: pv.VCPUs, GuestFeatures: pv.GuestFeatures}
			switch pv.Mode {
			case "SevMode.SEV":
				p.Mode = ModeSEV
			case "SevMode.SEV_ES":
				p.Mode = ModeSEVES
			case "SevMode.SEV_SNP":
				p.Mode = ModeSNP
			default:
				t.Fatalf("unexpected mode %q", pv.Mode)
			}
			if pv.VCPUSig != nil {
				name := strings.TrimSuffix(strings.TrimPrefix(*pv.VCPUSig, "vcpu_types.CPU_SIGS['"), "']")
				p.VCPUType = name
			}
			if pv.VMMType != nil {
				vmm, err := ParseVMM(strings.TrimPrefix(*pv.VMMType, "vmm_types.VMMType."))
				if err != nil {
					t.Fatal(err)
				}
				p.VMM = vmm
			}
			if pv.Kernel != nil {
				k, _ := upstreamInput(t, *pv.Kernel)
				p.DirectBoot = &DirectBoot{Kernel: k}
				if pv.Initrd != nil {
					p.DirectBoot.Initrd, _ = upstreamInput(t, *pv.Initrd)
				}
				if pv.Append != nil {
					p.DirectBoot.Cmdline = *pv.Append
				}
			}
			if pv.SNPOVMFHash != nil {
				h, err := SNPFirmwareHash(fw)
				if err != nil {
					t.Fatal(err)
				}
				p.SNPFirmwareHash = h
			}
			r, err := Measure(p)
			if v.ExpectedError != "" {
				if err == nil {
					t.Fatalf("Measure succeeded with digest %x, want an error like %q", r.Digest, v.ExpectedError)
				}
				return
			}
			if err != nil {
				t.Fatalf("Measure: %v", err)
			}
			if got, want := hex.EncodeToString(r.Digest), v.Expected; got != want {
				t.Errorf("digest = %s, want %s", got, want)
			}
		})
	}
	if ran == 0 {
		t.Fatal("no sev-snp-measure upstream vector had its inputs")
	}
}

// TestGCETCBVerifierUpstream runs gce-tcb-verifier's digests.
func TestGCETCBVerifierUpstream(t *testing.T) {
	u := loadUpstream(t)
	want := map[string]string{}
	for _, v := range u.GCE.Vectors {
		want[v.Test] = v.Expected
	}
	get := func(t *testing.T, prefix string) []byte {
		t.Helper()
		for k, v := range want {
			if strings.HasPrefix(k, prefix) {
				return wantHex(t, v)
			}
		}
		t.Fatalf("no gce-tcb-verifier vector %q", prefix)
		return nil
	}
	debian := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	gceVMSAGPA := uint64(0xFFFFFFFFFF000) // gce-tcb-verifier's for these products
	tests := []struct {
		name string
		got  func(t *testing.T) []byte
	}{
		{"sev/sev_test.go::TestUpdateData", func(t *testing.T) []byte {
			pages := make([]byte, 3*PageSize)
			copy(pages, "LGTMLGTMLGTMLGTM")
			copy(pages[len(pages)-16:], "LGTMLGTMLGTMLGTM")
			c := newChain(nil)
			c.normalPages(0, pages)
			return c.digest()
		}},
		{"sev/sev_test.go::TestZeroContentUpdateData", func(t *testing.T) []byte {
			c := newChain(nil)
			c.emptyPages(pageTypeZero, 0x9000, 3*PageSize)
			return c.digest()
		}},
		{"sev/sev_test.go::TestLaunchDigest", func(t *testing.T) []byte {
			return measureDigest(t, Params{Mode: ModeSNP, VMM: VMMGCE, VCPUs: 1, GuestFeatures: 1,
				Firmware: testenv.ReadVector(t, "inputs/gce_fake_CleanExample_0x1000.bin")})
		}},
		{"sev/sev_test.go::TestUnsignedSnp", func(t *testing.T) []byte {
			return measureDigest(t, Params{Mode: ModeSNP, VMM: VMMGCE, VCPUs: 4, GuestFeatures: 1,
				Firmware: testenv.ReadVector(t, "inputs/gce_fake_UnsignedSnp.bin")})
		}},
		{"(computed here) gce-tcb-verifier LaunchDigest product=GENOA", func(t *testing.T) []byte {
			return measureDigest(t, Params{Mode: ModeSNP, VMM: VMMGCE, VCPUs: 1, GuestFeatures: 1,
				VMSAGPA: &gceVMSAGPA, Firmware: debian})
		}},
		{"(computed here) same, 4 vCPUs", func(t *testing.T) []byte {
			return measureDigest(t, Params{Mode: ModeSNP, VMM: VMMGCE, VCPUs: 4, GuestFeatures: 1,
				VMSAGPA: &gceVMSAGPA, Firmware: debian})
		}},
	}
	if len(tests) != len(want) {
		t.Errorf("snp-upstream-tests.json has %d gce-tcb-verifier vectors, the test runs %d: update the test", len(want), len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := tc.got(t), get(t, tc.name); hex.EncodeToString(got) != hex.EncodeToString(want) {
				t.Errorf("digest = %x, want %x", got, want)
			}
		})
	}
}

func measureDigest(t *testing.T, p Params) []byte {
	t.Helper()
	r, err := Measure(p)
	if err != nil {
		t.Fatalf("Measure: %v", err)
	}
	return r.Digest
}

// TestSNPMeasureGoUpstream runs sev-snp-measure-go's EC2 digests: its
// firmware images are not shipped, but their precomputed hashes are, and
// debian12_OVMF.fd has the same metadata and reset address. The first two use
// the old EC2 VMSA (RDX 0), the last two the same inputs with 0.0.13's.
func TestSNPMeasureGoUpstream(t *testing.T) {
	u := loadUpstream(t)
	vs := u.SNPMeasureGo.Vectors
	if len(vs) != 4 {
		t.Fatalf("snp-upstream-tests.json has %d sev-snp-measure-go vectors, want 4: update the test", len(vs))
	}
	fw := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	for i, v := range vs {
		src := vs[i%2]
		t.Run(v.Test, func(t *testing.T) {
			got := measureDigest(t, Params{Mode: ModeSNP, VMM: VMMEC2, VCPUs: src.VCPUs, GuestFeatures: 1,
				Firmware: fw, SNPFirmwareHash: wantHex(t, src.OVMFHash), EC2LegacyRDX: i < 2})
			if want := wantHex(t, v.Expected); hex.EncodeToString(got) != hex.EncodeToString(want) {
				t.Errorf("digest = %x, want %x", got, want)
			}
		})
	}
}
