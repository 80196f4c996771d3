package sev

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// VMM is the hypervisor whose initial vCPU register state (VMSA) the
// measurement models.
type VMM int

// The VMSA models sev-snp-measure knows.
const (
	VMMQEMU VMM = iota // QEMU/KVM (upstream KVM, QEMU reset state)
	VMMEC2             // Amazon EC2
	VMMGCE             // Google Compute Engine
)

// String returns the name sev-snp-measure uses for the VMM.
func (v VMM) String() string {
	switch v {
	case VMMQEMU:
		return "QEMU"
	case VMMEC2:
		return "ec2"
	case VMMGCE:
		return "gce"
	}
	return fmt.Sprintf("VMM(%d)", int(v))
}

// VMMNames lists the names ParseVMM accepts.
func VMMNames() []string { return []string{"QEMU", "ec2", "gce"} }

// ParseVMM parses a VMM name, in any case: QEMU, ec2 or gce.
func ParseVMM(s string) (VMM, error) {
	for _, v := range []VMM{VMMQEMU, VMMEC2, VMMGCE} {
		if strings.EqualFold(s, v.String()) {
			return v, nil
		}
	}
	return 0, fmt.Errorf("unknown VMM type %q: want one of %s", s, strings.Join(VMMNames(), ", "))
}

// VMSA page layout (AMD APM vol. 2, table B-4; Linux struct sev_es_save_area).
// Only the fields the initial state sets are named.
const (
	vmsaES      = 0x000 // segments: selector u16, attrib u16, limit u32, base u64
	vmsaCS      = 0x010
	vmsaSS      = 0x020
	vmsaDS      = 0x030
	vmsaFS      = 0x040
	vmsaGS      = 0x050
	vmsaGDTR    = 0x060
	vmsaLDTR    = 0x070
	vmsaIDTR    = 0x080
	vmsaTR      = 0x090
	vmsaEFER    = 0x0D0
	vmsaCR4     = 0x148
	vmsaCR0     = 0x158
	vmsaDR7     = 0x160
	vmsaDR6     = 0x168
	vmsaRFLAGS  = 0x170
	vmsaRIP     = 0x178
	vmsaGPAT    = 0x268
	vmsaRDX     = 0x310
	vmsaSEVFeat = 0x3B0
	vmsaXCR0    = 0x3E8
	vmsaMXCSR   = 0x408
	vmsaX87FCW  = 0x410
)

// bspEIP is where the boot processor starts: the reset vector below 4 GiB.
const bspEIP = 0xFFFFFFF0

// ec2RDX is the RDX value of EC2's initial VMSA since sev-snp-measure 0.0.13
// (older tools, and sev-snp-measure-go, used 0).
const ec2RDX = 0x600

// vmsaModel is the register state that differs between VMMs.
type vmsaModel struct {
	csFlags, ssFlags, trFlags uint16
	rdx                       uint64
	gPAT                      uint64
	mxcsr                     uint32
	fcw                       uint16
}

// defaultGPAT is the PAT MSR at reset (AMD APM vol. 2, section A.3).
const defaultGPAT = 0x0007040600070406

// model returns the register state of vmm for a vCPU starting at eip.
func (v VMM) model(eip uint32, vcpuSig uint32, ec2LegacyRDX bool) vmsaModel {
	switch v {
	case VMMEC2:
		m := vmsaModel{csFlags: 0x9b, ssFlags: 0x92, trFlags: 0x83, rdx: ec2RDX, gPAT: defaultGPAT}
		if eip == bspEIP {
			m.csFlags = 0x9a
		}
		if ec2LegacyRDX {
			m.rdx = 0
		}
		return m
	case VMMGCE:
		// GCE's hypervisor sets its own PAT.
		return vmsaModel{csFlags: 0x9b, ssFlags: 0x93, trFlags: 0x8b, rdx: ec2RDX, gPAT: 0x00070106}
	default:
		return vmsaModel{csFlags: 0x9b, ssFlags: 0x93, trFlags: 0x8b, rdx: uint64(vcpuSig), gPAT: defaultGPAT, mxcsr: 0x1f80, fcw: 0x37f}
	}
}

// putSeg writes a VMCB segment at off.
func putSeg(p []byte, off int, selector, attrib uint16, limit uint32, base uint64) {
	binary.LittleEndian.PutUint16(p[off:], selector)
	binary.LittleEndian.PutUint16(p[off+2:], attrib)
	binary.LittleEndian.PutUint32(p[off+4:], limit)
	binary.LittleEndian.PutUint64(p[off+8:], base)
}

// buildVMSA returns the initial VMSA page of a vCPU that starts at eip.
func buildVMSA(eip uint32, sevFeatures uint64, m vmsaModel) []byte {
	p := make([]byte, PageSize)
	le := binary.LittleEndian
	putSeg(p, vmsaES, 0, 0x93, 0xffff, 0)
	putSeg(p, vmsaCS, 0xf000, m.csFlags, 0xffff, uint64(eip&0xffff0000))
	putSeg(p, vmsaSS, 0, m.ssFlags, 0xffff, 0)
	putSeg(p, vmsaDS, 0, 0x93, 0xffff, 0)
	putSeg(p, vmsaFS, 0, 0x93, 0xffff, 0)
	putSeg(p, vmsaGS, 0, 0x93, 0xffff, 0)
	putSeg(p, vmsaGDTR, 0, 0, 0xffff, 0)
	putSeg(p, vmsaLDTR, 0, 0x82, 0xffff, 0)
	putSeg(p, vmsaIDTR, 0, 0, 0xffff, 0)
	putSeg(p, vmsaTR, 0, m.trFlags, 0xffff, 0)
	le.PutUint64(p[vmsaEFER:], 0x1000) // KVM sets EFER.SVME
	le.PutUint64(p[vmsaCR4:], 0x40)    // KVM sets CR4.MCE
	le.PutUint64(p[vmsaCR0:], 0x10)
	le.PutUint64(p[vmsaDR7:], 0x400)
	le.PutUint64(p[vmsaDR6:], 0xffff0ff0)
	le.PutUint64(p[vmsaRFLAGS:], 0x2)
	le.PutUint64(p[vmsaRIP:], uint64(eip&0xffff))
	le.PutUint64(p[vmsaGPAT:], m.gPAT)
	le.PutUint64(p[vmsaRDX:], m.rdx)
	le.PutUint64(p[vmsaSEVFeat:], sevFeatures)
	le.PutUint64(p[vmsaXCR0:], 0x1)
	le.PutUint32(p[vmsaMXCSR:], m.mxcsr)
	le.PutUint16(p[vmsaX87FCW:], m.fcw)
	return p
}
