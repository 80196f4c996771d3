package sev

import (
	"bytes"
	"context"
	"fmt"
	"slices"
)

// SearchVCPUs measures p for every vCPU count from 1 to p.VCPUs in one pass
// (a guest of n+1 vCPUs extends the digest of n vCPUs by one AP VMSA page)
// and returns the first count whose digest is want, or 0. Only SNP digests
// grow this way; other modes are an error.
func (pr *Prepared) SearchVCPUs(p Params, want []byte) (int, error) {
	if p.Mode != ModeSNP {
		return 0, paramErr("a vCPU search needs snp mode, not %s", p.Mode)
	}
	found := 0
	p.DumpVMSA = false
	p.eachVCPU = func(n int, d []byte) {
		if found == 0 && bytes.Equal(d, want) {
			found = n
		}
	}
	if _, _, err := measure(p, pr); err != nil {
		return 0, err
	}
	return found, nil
}

// Neighbourhood is the launch parameters around a published set that a
// search for an unexplained SNP launch digest tries.
type Neighbourhood struct {
	// MaxVCPUs is the highest vCPU count tried (from 1).
	MaxVCPUs int
	// VMMs are the VMSA models tried.
	VMMs []VMM
	// CPUTypes are the QEMU CPU models tried (QEMU VMSAs only); models
	// with one CPUID signature are tried once.
	CPUTypes []string
	// GuestFeatures are the SEV_FEATURES tried.
	GuestFeatures []uint64
	// Boots are the direct-boot settings tried: nil is a launch without
	// -kernel (the firmware's hashes area measured as zero pages).
	Boots []*DirectBoot
}

// DefaultGuestFeatures are SEV_FEATURES values hosts commonly set:
// SNPActive alone, with DebugSwap (0x20, set by KVM since Linux 6.6 unless
// kvm_amd debug_swap=0), and with DebugSwap and SecureTSC (0x200).
var DefaultGuestFeatures = []uint64{0x1, 0x21, 0x221}

// DefaultNeighbourhood returns the search space of a check: vCPUs 1..512,
// every VMM and CPU type the model knows, DefaultGuestFeatures, and the
// given direct-boot settings.
func DefaultNeighbourhood(boots []*DirectBoot) Neighbourhood {
	return Neighbourhood{MaxVCPUs: 512, VMMs: []VMM{VMMQEMU, VMMEC2, VMMGCE}, CPUTypes: CPUTypes(),
		GuestFeatures: slices.Clone(DefaultGuestFeatures), Boots: boots}
}

// Found is a set of launch parameters whose SNP digest is the one searched.
type Found struct {
	VCPUs int
	VMM   VMM
	// CPUTypes are the CPU models of the signature used (QEMU only; they
	// all give this digest), and CPUSig their signature.
	CPUTypes      []string
	CPUSig        uint32
	GuestFeatures uint64
	// Boot is the index into Neighbourhood.Boots.
	Boot int
}

// Search looks for want among the SNP digests of the neighbourhood n of
// the prepared firmware. It returns every parameter set that gives want
// (usually one; several when the parameters do not change the digest).
func (pr *Prepared) Search(ctx context.Context, n Neighbourhood, want []byte) ([]Found, error) {
	if n.MaxVCPUs < 1 || n.MaxVCPUs > MaxVCPUs {
		return nil, paramErr("a vCPU search up to %d: want 1..%d", n.MaxVCPUs, MaxVCPUs)
	}
	type sigGroup struct {
		sig   uint32
		names []string
	}
	var groups []sigGroup
	for _, t := range n.CPUTypes {
		sig, err := CPUSignature(t)
		if err != nil {
			return nil, &ParamError{Err: err}
		}
		i := slices.IndexFunc(groups, func(g sigGroup) bool { return g.sig == sig })
		if i < 0 {
			groups = append(groups, sigGroup{sig: sig})
			i = len(groups) - 1
		}
		groups[i].names = append(groups[i].names, t)
	}
	var out []Found
	for bi, boot := range n.Boots {
		for _, vmm := range n.VMMs {
			cpus := groups
			if vmm != VMMQEMU || len(cpus) == 0 {
				cpus = []sigGroup{{}} // only QEMU VMSAs carry the signature
			}
			for _, g := range cpus {
				for _, gf := range n.GuestFeatures {
					if err := ctx.Err(); err != nil {
						return nil, err
					}
					p := Params{Mode: ModeSNP, VCPUs: n.MaxVCPUs, VMM: vmm, GuestFeatures: gf, DirectBoot: boot}
					if vmm == VMMQEMU {
						sig := g.sig
						p.VCPUSig = &sig
					}
					nv, err := pr.SearchVCPUs(p, want)
					if err != nil {
						return nil, fmt.Errorf("%s VMSAs, guest features %#x: %w", vmm, gf, err)
					}
					if nv > 0 {
						out = append(out, Found{VCPUs: nv, VMM: vmm, CPUTypes: g.names, CPUSig: g.sig, GuestFeatures: gf, Boot: bi})
					}
				}
			}
		}
	}
	return out, nil
}
