package sev

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// TestSearchFindsPeerVectors: every SNP vector of snp.json on a QEMU or EC2
// or GCE model with a CPU type and at most 512 vCPUs is found by a search
// that is told nothing but its firmware and direct-boot blobs, with the
// vector's vCPU count, VMM, CPU type and guest features. The digests are
// sev-snp-measure's, not this model's.
func TestSearchFindsPeerVectors(t *testing.T) {
	c := inputCache{}
	n := 0
	for _, v := range loadSNPVectors(t) {
		if v.Mode != "snp" || v.VCPUs == nil || *v.VCPUs > 512 || v.VCPUSig != nil || v.FMS != nil ||
			(v.VCPUType == nil && v.VMMType == "QEMU") || len(v.Expected) != 96 || containsFlag(v.Command, "--ec2-legacy-vmsa", "--vmsa-gpa", "--snp-ovmf-hash") {
			continue
		}
		t.Run(v.ID, func(t *testing.T) {
			pr, err := Prepare(c.get(t, v.Firmware))
			if err != nil {
				t.Fatal(err)
			}
			var boot *DirectBoot
			if v.Kernel != nil {
				boot = &DirectBoot{Kernel: c.get(t, *v.Kernel)}
				if v.Initrd != nil {
					boot.Initrd = c.get(t, *v.Initrd)
				}
				if v.Append != nil {
					boot.Cmdline = *v.Append
				}
				// The search knows the blobs by digest only, as a release does.
				tab, err := NewHashTable(boot.Kernel, boot.Initrd, boot.Cmdline)
				if err != nil {
					t.Fatal(err)
				}
				boot = &DirectBoot{Table: &tab}
			}
			want, _ := hex.DecodeString(v.Expected)
			nb := DefaultNeighbourhood([]*DirectBoot{nil, boot})
			if boot == nil {
				nb.Boots = []*DirectBoot{nil}
			}
			found, err := pr.Search(context.Background(), nb, want)
			if err != nil {
				t.Fatal(err)
			}
			vmm, _ := ParseVMM(v.VMMType)
			gf := uint64(1)
			if v.GuestFeatures != nil {
				gf = parseUint(t, *v.GuestFeatures)
			}
			ok := false
			for _, f := range found {
				if f.VCPUs == *v.VCPUs && f.VMM == vmm && f.GuestFeatures == gf && f.Boot == len(nb.Boots)-1 &&
					(vmm != VMMQEMU || slices.Contains(f.CPUTypes, *v.VCPUType)) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("search found %+v, want %d vCPUs of %s %v, guest features %#x", found, *v.VCPUs, vmm, v.VCPUType, gf)
			}
		})
		n++
	}
	if n < 10 {
		t.Fatalf("only %d vectors searched, want at least 10", n)
	}
}

func containsFlag(cmd string, flags ...string) bool {
	return slices.ContainsFunc(flags, func(f string) bool { return strings.Contains(cmd, f) })
}

// TestSearchVCPUsAgreesWithMeasure: the one-pass digests of 1..n vCPUs are
// those Measure computes for each count on its own.
func TestSearchVCPUsAgreesWithMeasure(t *testing.T) {
	fw := inputCache{}.get(t, "inputs/debian-sid_OVMF.amdsev.fd")
	pr, err := Prepare(fw)
	if err != nil {
		t.Fatal(err)
	}
	tab := HashTable{Kernel: sha256.Sum256([]byte("k")), Initrd: sha256.Sum256(nil), Cmdline: sha256.Sum256([]byte("x\x00"))}
	for _, nv := range []int{1, 2, 3, 7, 64} {
		p := Params{Mode: ModeSNP, VCPUs: nv, VCPUType: "EPYC-Milan", GuestFeatures: 1, DirectBoot: &DirectBoot{Table: &tab}}
		r, err := pr.Measure(p)
		if err != nil {
			t.Fatal(err)
		}
		p.VCPUs = 100
		got, err := pr.SearchVCPUs(p, r.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if got != nv {
			t.Errorf("SearchVCPUs found %d vCPUs, want %d", got, nv)
		}
	}
}
