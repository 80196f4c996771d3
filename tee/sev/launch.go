package sev

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cocobuild/cocobuild/manifest"
	model "github.com/cocobuild/cocobuild/measure/sev"
	"github.com/cocobuild/cocobuild/tee"
)

// SNP constants of the AMD EPYC generations that run SEV-SNP (Milan,
// Genoa, Turin): the C-bit position and the physical address bits it takes.
const (
	snpCBitPos          = 51
	snpReducedPhysBits  = 1
	snpFeatureActive    = 0x1  // SEV_FEATURES bit 0, SNPActive: every SNP guest
	snpFeatureDebugSwap = 0x20 // bit 5, DebugSwap: chosen by the host's KVM, not by QEMU
)

// Title implements tee.Launcher.
func (TEE) Title(name string) string {
	return map[string]string{"snp": "SEV-SNP", "seves": "SEV-ES", "sev": "SEV"}[name]
}

// LaunchNames implements tee.Launcher: SNP entries launch on hardware.
func (TEE) LaunchNames() []string { return []string{"snp"} }

// EmulatedDirectBoot implements tee.Launcher: SEV direct boot is measured
// through the firmware's SEV hashes table, and firmware built for that
// (edk2's AmdSev, Debian's OVMF.amdsev.fd) boots no kernel directly
// outside SEV.
func (TEE) EmulatedDirectBoot(string) bool { return false }

// LaunchArgs implements tee.Launcher: the SEV-SNP hardware command line
// (QEMU's docs/system/i386/amd-memory-encryption.rst): the sev-snp-guest
// object with the entry's policy and, when it measured a kernel,
// kernel-hashes=on; the modelled vCPU type and count.
func (TEE) LaunchArgs(e *manifest.Measurement, l tee.Launch) ([]string, []string, error) {
	if e.TEE != "snp" {
		return nil, nil, fmt.Errorf("measurement %s is a %s measurement: only SNP entries launch on hardware: %w", e.Name, e.TEE, tee.ErrNoLaunch)
	}
	var notes []string
	if vmm := tee.Param(e.Params, "vmm"); !strings.EqualFold(vmm, "QEMU") {
		return nil, nil, fmt.Errorf("measurement %s models the %s VMM's vCPU state, not QEMU's: there is no QEMU command line that gives this digest: %w", e.Name, vmm, tee.ErrNoLaunch)
	}
	cpu := tee.Param(e.Params, "vcpu_type")
	if _, err := model.CPUSignature(cpu); err != nil {
		return nil, nil, fmt.Errorf("measurement %s: %w", e.Name, err)
	}
	policy := tee.Param(e.Params, "policy")
	if policy == "" {
		return nil, nil, fmt.Errorf("measurement %s records no SNP policy: rebuild it with this cocobuild (the measure block's policy, default 0x30000)", e.Name)
	}
	gf, err := strconv.ParseUint(tee.Param(e.Params, "guest_features"), 0, 64)
	if err != nil {
		return nil, nil, fmt.Errorf("measurement %s: guest_features %q: %w", e.Name, tee.Param(e.Params, "guest_features"), err)
	}
	if gf&snpFeatureActive == 0 {
		return nil, nil, fmt.Errorf("measurement %s: guest features %#x lack SNPActive (bit 0): not an SNP launch: %w", e.Name, gf, tee.ErrNoLaunch)
	}
	if rest := gf &^ (snpFeatureActive | snpFeatureDebugSwap); rest != 0 {
		return nil, nil, fmt.Errorf("measurement %s: guest features %#x: bits %#x cannot be chosen on QEMU's command line: %w", e.Name, gf, rest, tee.ErrNoLaunch)
	}
	if gf&snpFeatureDebugSwap != 0 {
		notes = append(notes, "guest features 0x21: DebugSwap (bit 5) is enabled by the host's KVM (kvm_amd debug_swap), not by QEMU: the digest matches only on a host that sets it")
	} else {
		notes = append(notes, "guest features 0x1 (SNPActive only): a host KVM that adds DebugSwap (kvm_amd debug_swap=1) gives another digest")
	}
	obj := fmt.Sprintf("sev-snp-guest,id=sev0,cbitpos=%d,reduced-phys-bits=%d,policy=%s", snpCBitPos, snpReducedPhysBits, policy)
	if l.Kernel {
		obj += ",kernel-hashes=on"
	}
	return []string{"-accel", "kvm", "-machine", "q35,confidential-guest-support=sev0,memory-backend=ram1",
		"-object", "memory-backend-memfd,id=ram1,size=" + l.Memory + ",share=true,prealloc=false",
		"-object", obj,
		"-cpu", cpu, "-smp", strconv.Itoa(l.VCPUs), "-m", l.Memory, "-bios", l.Firmware}, notes, nil
}
