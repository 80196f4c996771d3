package sev

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"

	"github.com/cocobuild/cocobuild/measure/ovmf"
)

// Mode is the SEV generation whose launch digest is computed.
type Mode int

// The modes. The zero Mode is invalid, so that a forgotten mode is an error.
const (
	ModeSEV   Mode = iota + 1 // SEV: SHA-256 of firmware (and hashes table)
	ModeSEVES                 // SEV-ES: SEV plus the VMSA pages
	ModeSNP                   // SEV-SNP: SHA-384 PAGE_INFO chain
)

// String returns the sev-snp-measure name of the mode: sev, seves or snp.
func (m Mode) String() string {
	switch m {
	case ModeSEV:
		return "sev"
	case ModeSEVES:
		return "seves"
	case ModeSNP:
		return "snp"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses a mode name in any case: sev; seves or sev-es; snp or sev-snp.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "sev":
		return ModeSEV, nil
	case "seves", "sev-es":
		return ModeSEVES, nil
	case "snp", "sev-snp":
		return ModeSNP, nil
	}
	return 0, fmt.Errorf("unknown SEV mode %q: want sev, seves or snp", s)
}

// MaxVCPUs is the most vCPUs a measurement accepts (KVM_MAX_VCPUS on x86).
const MaxVCPUs = 4096

// ParamError reports parameters that are wrong whatever the firmware (as
// opposed to a firmware that cannot be measured with them); test with errors.As.
type ParamError struct{ Err error }

func (e *ParamError) Error() string { return e.Err.Error() }
func (e *ParamError) Unwrap() error { return e.Err }

func paramErr(format string, args ...any) error {
	return &ParamError{Err: fmt.Errorf(format, args...)}
}

// DirectBoot is a kernel that QEMU loads directly (-kernel/-initrd/-append)
// and whose hashes it puts in the SEV hashes table for OVMF to check.
type DirectBoot struct {
	Kernel  []byte
	Initrd  []byte // nil or empty: no initrd (hashed as empty)
	Cmdline string // "" is hashed as a lone NUL, the same as no -append
	// Table, when set, is the hashes table to measure in place of the one
	// of Kernel, Initrd and Cmdline (which are then ignored): a launch
	// known by the digests of its blobs rather than their bytes.
	Table *HashTable
}

// Params are the inputs of a launch measurement.
type Params struct {
	Mode Mode
	// Firmware is the OVMF image; it ends at 4 GiB in guest memory.
	Firmware []byte
	// VCPUs is the number of vCPUs (SEV-ES and SNP).
	VCPUs int
	// The vCPU signature QEMU's VMSA carries in RDX (QEMU VMM only; EC2 and
	// GCE use a fixed value). The first set wins: VCPUFMS, VCPUSig, VCPUType.
	VCPUType string  // a QEMU CPU model name from CPUTypes
	VCPUSig  *uint32 // a CPUID Fn0000_0001_EAX signature
	VCPUFMS  *FMS    // family, model, stepping
	// VMM selects the VMSA model.
	VMM VMM
	// GuestFeatures is the SEV_FEATURES of SNP VMSAs (0x1 = SNPActive, which
	// SNP requires). SEV-ES mode ignores it, as sev-snp-measure does (with a
	// note when it has bits other than SNPActive): SEV-ES VMSAs take
	// SEVESFeatures.
	GuestFeatures uint64
	// SEVESFeatures is the SEV_FEATURES of SEV-ES VMSAs. The default, 0, is
	// what sev-snp-measure measures and what KVM sets unless told otherwise;
	// some KVM releases (Linux 6.6 to 6.9, kvm_amd debug_swap=1) set DebugSwap
	// (0x20) in SEV-ES VMSAs by default. Only SEV-ES mode takes it; SNPActive
	// (0x1) is not an SEV-ES feature.
	SEVESFeatures uint64
	// DirectBoot is the kernel, initrd and command line measured through the
	// SEV hashes table; nil when the firmware boots from disk.
	DirectBoot *DirectBoot
	// SNPFirmwareHash, if set, is a precomputed SNP digest of the firmware
	// pages (SNPFirmwareHash function) that replaces hashing Firmware; the
	// image is still needed for its metadata.
	SNPFirmwareHash []byte
	// EC2LegacyRDX models EC2 VMSAs as sev-snp-measure before 0.0.13 and
	// sev-snp-measure-go do (RDX 0 instead of 0x600). Other VMMs ignore it
	// (with a note), so that it can be set for a whole matrix.
	EC2LegacyRDX bool
	// VMSAGPA is the GPA SNP VMSA pages are measured at; nil means
	// DefaultVMSAGPA, KVM's (gce-tcb-verifier uses 0xFFFFFFFFFF000 for some
	// products). Any page-aligned GPA, 0 included, is taken as given: the
	// VMM chooses it, the guest never maps it.
	VMSAGPA *uint64
	// AnyFirmware measures a Firmware that is not an image the model
	// recognizes (ovmf.Recognize: no OVMF footer table and no firmware
	// volume), which is otherwise an error wrapping ovmf.ErrNotFirmware.
	// Only SEV mode can measure such bytes: SEV-ES and SNP need structures
	// of the footer table.
	AnyFirmware bool
	// DumpVMSA asks for the VMSA pages in Result.VMSAs.
	DumpVMSA bool

	// eachVCPU, when set, is called in SNP mode after the VMSA page of
	// every vCPU with the launch digest of a guest of that many vCPUs
	// (SearchVCPUs).
	eachVCPU func(vcpus int, digest []byte)
}

// Coverage says what a launch digest commits to.
type Coverage struct {
	// Firmware is false when the firmware part came from SNPFirmwareHash
	// rather than from the image bytes.
	Firmware bool `json:"firmware"`
	Kernel   bool `json:"kernel"`
	Initrd   bool `json:"initrd"`
	Cmdline  bool `json:"cmdline"`
}

// Result is a launch measurement.
type Result struct {
	Mode Mode
	// Digest is the launch digest: 48 bytes (SNP) or 32 bytes (SEV, SEV-ES).
	Digest []byte
	// VCPUSig is the signature put in QEMU VMSAs; HasVCPUSig is false when
	// the model does not use one (SEV, EC2, GCE).
	VCPUSig    uint32
	HasVCPUSig bool
	// VMSAGPA is the GPA the VMSA pages were measured at (SNP only).
	VMSAGPA uint64
	// Variant describes the model used: VMM, VMSA details and page order.
	Variant string
	// Covers says what the digest commits to.
	Covers Coverage
	// HashTable is the SEV hashes table measured for direct boot, or nil.
	HashTable *HashTable
	// Notes are things the caller should tell the user: parameters that
	// had no effect and parts of the guest the digest does not cover.
	Notes []string
	// VMSAs are the measured VMSA pages, one per vCPU, if Params.DumpVMSA.
	VMSAs [][]byte
}

// Measure computes the launch digest of p.
func Measure(p Params) (*Result, error) {
	r, _, err := measure(p, nil)
	return r, err
}

// stats are counters for benchmarks: bytes the SNP algorithm hashes, and
// bytes actually hashed after skipping repeated pages.
type stats struct {
	logical, hashed int64
}

// measure computes the digest of p, with the firmware of pre if it is not nil.
func measure(p Params, pre *Prepared) (*Result, stats, error) {
	var st stats
	switch p.Mode {
	case ModeSEV, ModeSEVES, ModeSNP:
	default:
		return nil, st, paramErr("SEV mode not set or unknown (%d): choose sev, seves or snp", int(p.Mode))
	}
	switch p.VMM {
	case VMMQEMU, VMMEC2, VMMGCE:
	default:
		return nil, st, paramErr("unknown VMM %d: choose QEMU, ec2 or gce", int(p.VMM))
	}
	var fw *Firmware
	var err error
	if pre != nil {
		fw = pre.fw
	} else if fw, err = ParseFirmware(p.Firmware); err != nil {
		return nil, st, err
	}
	r := &Result{Mode: p.Mode, Covers: Coverage{Firmware: true}}
	// table returns the hashes table of a direct boot (nil without one).
	// Its SHA-256 of the kernel runs on another core while the firmware is
	// hashed, and is waited for where the table is measured, after the
	// firmware, and on every return.
	var table func() *HashTable
	if p.DirectBoot != nil {
		if p.DirectBoot.Table != nil {
			t := *p.DirectBoot.Table
			table = func() *HashTable { return &t }
		} else {
			db := *p.DirectBoot
			if err := checkCmdline(db.Cmdline); err != nil {
				return nil, st, &ParamError{Err: err}
			}
			hashed := make(chan HashTable, 1)
			go func() {
				t, _ := NewHashTable(db.Kernel, db.Initrd, db.Cmdline) // its one error was checked above
				hashed <- t
			}()
			table = sync.OnceValue(func() *HashTable {
				t := <-hashed
				return &t
			})
		}
		defer func() { r.HashTable = table() }()
		r.Covers.Kernel, r.Covers.Initrd, r.Covers.Cmdline = true, true, true
	} else {
		r.Notes = append(r.Notes, "no direct boot: the digest covers no kernel, initrd or command line (the firmware must measure what it boots, or nothing vouches for it)")
	}
	if p.SNPFirmwareHash != nil && p.Mode != ModeSNP {
		return nil, st, paramErr("a precomputed SNP firmware hash only works in snp mode, not %s", p.Mode)
	}
	if p.Mode != ModeSEVES && p.SEVESFeatures != 0 {
		return nil, st, paramErr("SEV-ES features %#x only apply in seves mode, not %s: SNP VMSAs take the guest features", p.SEVESFeatures, p.Mode)
	}
	if !fw.Recognized && !p.AnyFirmware {
		return nil, st, fmt.Errorf("%s mode: the firmware is %w", p.Mode, ovmf.ErrNotFirmware)
	}
	if p.Mode != ModeSNP && p.VMSAGPA != nil {
		return nil, st, paramErr("the VMSA GPA only matters in snp mode, not %s: leave it unset", p.Mode)
	}
	if p.Mode == ModeSEV {
		if p.DumpVMSA {
			return nil, st, paramErr("SEV guests have no VMSAs to dump: use seves or snp mode")
		}
		r.Digest, err = sevDigest(fw, table, nil, pre)
		r.Variant = "SEV: SHA-256 of the firmware" + hashTableVariant(table != nil)
		return r, st, err
	}

	if p.VCPUs < 1 || p.VCPUs > MaxVCPUs {
		return nil, st, paramErr("%d vCPUs: %s needs 1..%d", p.VCPUs, p.Mode, MaxVCPUs)
	}
	if !fw.HasResetBlock {
		return nil, st, fmt.Errorf("%s needs the AP reset address: %w", p.Mode, ErrNoResetBlock)
	}
	if fw.ResetEIP == 0 && p.VCPUs > 1 {
		return nil, st, errors.New("firmware's SEV-ES reset block gives AP reset address 0: application processors cannot start; use 1 vCPU or a fixed firmware")
	}
	if err := resolveVCPU(p, r); err != nil {
		return nil, st, err
	}
	if p.EC2LegacyRDX && p.VMM != VMMEC2 {
		// Matrices set it for every VMM; it only changes EC2 VMSAs.
		r.Notes = append(r.Notes, fmt.Sprintf("the legacy EC2 VMSA option does not apply to %s VMSAs (ignored)", p.VMM))
	}
	if p.Mode == ModeSEVES {
		if p.SEVESFeatures&1 != 0 {
			return nil, st, paramErr("SEV-ES features %#x have SNPActive (0x1), which only SEV-SNP VMSAs have: leave bit 0 clear", p.SEVESFeatures)
		}
		if p.GuestFeatures&^1 != 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("guest features %#x are ignored in SEV-ES mode, as sev-snp-measure ignores them: SEV-ES VMSAs take the SEV-ES features (%#x here)", p.GuestFeatures, p.SEVESFeatures))
		}
		vmsas := makeVMSAs(p, fw, p.SEVESFeatures, r.VCPUSig)
		r.Digest, err = sevDigest(fw, table, vmsas, pre)
		r.Variant = "SEV-ES: SHA-256 of the firmware" + hashTableVariant(table != nil) + " and " + vmsaVariant(p, r) + fmt.Sprintf(", SEV_FEATURES %#x", p.SEVESFeatures)
		if p.DumpVMSA {
			r.VMSAs = vmsas
		}
		return r, st, err
	}
	st, err = snpDigest(p, fw, r, table, pre)
	return r, st, err
}

func hashTableVariant(directBoot bool) string {
	if !directBoot {
		return ""
	}
	return ", the SEV hashes table (cmdline+NUL, initrd, kernel)"
}

// resolveVCPU picks the vCPU signature, which only QEMU VMSAs carry.
func resolveVCPU(p Params, r *Result) error {
	var sig uint32
	var from string
	switch {
	case p.VCPUFMS != nil:
		s, err := p.VCPUFMS.Signature()
		if err != nil {
			return &ParamError{Err: err}
		}
		sig, from = s, fmt.Sprintf("family %d model %d stepping %d", p.VCPUFMS.Family, p.VCPUFMS.Model, p.VCPUFMS.Stepping)
	case p.VCPUSig != nil:
		sig, from = *p.VCPUSig, "signature"
	case p.VCPUType != "":
		s, err := CPUSignature(p.VCPUType)
		if err != nil {
			return &ParamError{Err: err}
		}
		sig, from = s, p.VCPUType
	default:
		if p.VMM == VMMQEMU {
			return paramErr("QEMU VMSAs carry the vCPU signature: give a vCPU type (%s), a signature or family/model/stepping", strings.Join(CPUTypes(), ", "))
		}
		return nil
	}
	if p.VMM != VMMQEMU {
		r.Notes = append(r.Notes, fmt.Sprintf("the %s VMSA model does not depend on the vCPU (%s ignored)", p.VMM, from))
		return nil
	}
	r.VCPUSig, r.HasVCPUSig = sig, true
	return nil
}

func vmsaVariant(p Params, r *Result) string {
	switch p.VMM {
	case VMMEC2:
		if p.EC2LegacyRDX {
			return "EC2 VMSAs (RDX 0 as before sev-snp-measure 0.0.13)"
		}
		return "EC2 VMSAs (RDX 0x600 as sev-snp-measure 0.0.13)"
	case VMMGCE:
		return "GCE VMSAs (RDX 0x600, PAT 0x70106)"
	default:
		return fmt.Sprintf("QEMU/KVM VMSAs (RDX = vCPU signature %#x, MXCSR 0x1f80, FCW 0x37f)", r.VCPUSig)
	}
}

// makeVMSAs returns the VMSA page of every vCPU: the BSP starts at the reset
// vector, the APs at the firmware's SEV-ES reset address. APs share a page.
// sig is the vCPU signature resolveVCPU chose (QEMU only).
func makeVMSAs(p Params, fw *Firmware, sevFeatures uint64, sig uint32) [][]byte {
	pages := make([][]byte, p.VCPUs)
	pages[0] = buildVMSA(bspEIP, sevFeatures, p.VMM.model(bspEIP, sig, p.EC2LegacyRDX))
	if p.VCPUs > 1 {
		ap := buildVMSA(fw.ResetEIP, sevFeatures, p.VMM.model(fw.ResetEIP, sig, p.EC2LegacyRDX))
		for i := 1; i < p.VCPUs; i++ {
			pages[i] = ap
		}
	}
	return pages
}

// checkHashTableArea checks that the firmware reserves room for the table.
func checkHashTableArea(fw *Firmware) error {
	if !fw.HasHashTable {
		return fmt.Errorf("a kernel was given but %w", ErrNoHashTable)
	}
	if fw.HashTable.GPA == 0 {
		return errors.New("a kernel was given but the firmware's SEV hashes table has GPA 0: this OVMF build cannot measure a directly booted kernel; use one built from OvmfPkg/AmdSev/AmdSevX64.dsc, or boot from disk")
	}
	if fw.HashTable.Size < PaddedHashTableSize {
		return fmt.Errorf("the firmware's SEV hashes table area is %d bytes, smaller than the %d-byte table QEMU writes: QEMU refuses to launch this guest", fw.HashTable.Size, PaddedHashTableSize)
	}
	return nil
}

// sevDigest is the SEV/SEV-ES launch digest: SHA-256 over the firmware, the
// padded hashes table (of table, when not nil) and the VMSAs, in launch order.
func sevDigest(fw *Firmware, table func() *HashTable, vmsas [][]byte, pre *Prepared) ([]byte, error) {
	var h hash.Hash
	if pre != nil {
		h = pre.sevHash()
	} else {
		h = sha256.New()
		h.Write(fw.Image)
	}
	if table != nil {
		if err := checkHashTableArea(fw); err != nil {
			return nil, err
		}
		h.Write(table().Bytes())
	}
	for _, v := range vmsas {
		h.Write(v)
	}
	return h.Sum(nil), nil
}

// SNPFirmwareHash returns the SNP launch digest after the firmware pages
// alone: the seed that Params.SNPFirmwareHash takes (sev-snp-measure's
// snp:ovmf-hash mode).
func SNPFirmwareHash(image []byte) ([]byte, error) {
	if err := checkSNPImage(image); err != nil {
		return nil, err
	}
	c := newChain(nil)
	c.firmwarePages(fourGiB-uint64(len(image)), image)
	return c.digest(), nil
}

func checkSNPImage(image []byte) error {
	if len(image) == 0 {
		return errors.New("firmware image is empty: give the OVMF file")
	}
	if len(image)%PageSize != 0 || len(image) > fourGiB {
		return fmt.Errorf("firmware image is %d bytes: SNP measures whole 4 KiB pages below 4 GiB; is this really an OVMF image?", len(image))
	}
	return nil
}

// firmwarePages measures the firmware as NORMAL pages. Runs of identical
// pages (erased flash, padding) are hashed once.
func (c *chain) firmwarePages(gpa uint64, data []byte) {
	var prev []byte
	var prevSum [DigestSize]byte
	for off := 0; off+PageSize <= len(data); off += PageSize {
		page := data[off : off+PageSize]
		if prev != nil && bytes.Equal(page, prev) {
			c.skipped += PageSize
			c.extend(pageTypeNormal, gpa+uint64(off), &prevSum)
			continue
		}
		prevSum = *c.pageDigest(page)
		prev = page
		c.extend(pageTypeNormal, gpa+uint64(off), &prevSum)
	}
}

// snpDigest is the SNP launch digest, with the hashes table of table (when
// not nil) in the SNP_KERNEL_HASHES section.
func snpDigest(p Params, fw *Firmware, r *Result, table func() *HashTable, pre *Prepared) (stats, error) {
	var st stats
	if !fw.HasMetadata {
		return st, fmt.Errorf("snp mode: %w (sev-snp-measure would measure no metadata pages, and such a guest does not launch)", ErrNoMetadata)
	}
	if len(fw.Sections) == 0 {
		return st, errors.New("snp mode: the firmware's SEV metadata declares no sections: such a guest has no secrets or CPUID page and does not launch")
	}
	if p.GuestFeatures&1 == 0 {
		return st, paramErr("guest features %#x lack SNPActive (0x1), which every SNP VMSA must have: add 0x1", p.GuestFeatures)
	}
	vmsaGPA := uint64(DefaultVMSAGPA)
	if p.VMSAGPA != nil {
		vmsaGPA = *p.VMSAGPA
	}
	if vmsaGPA%PageSize != 0 {
		return st, paramErr("VMSA GPA %#x is not page aligned", vmsaGPA)
	}
	r.VMSAGPA = vmsaGPA
	var hashesSection *Section
	if table != nil {
		var err error
		if hashesSection, err = kernelHashesSection(fw); err != nil {
			return st, err
		}
	} else if fw.HasSection(SectionSNPKernelHashes) {
		r.Notes = append(r.Notes, "the firmware has an SNP_KERNEL_HASHES section but no kernel was given: it is measured as zero pages")
	}

	var c *chain
	if p.SNPFirmwareHash != nil {
		if len(p.SNPFirmwareHash) != DigestSize {
			return st, paramErr("precomputed SNP firmware hash is %d bytes, want %d (SHA-384)", len(p.SNPFirmwareHash), DigestSize)
		}
		c = newChain(p.SNPFirmwareHash)
		r.Covers.Firmware = false
		r.Notes = append(r.Notes, "the firmware pages come from the precomputed SNP firmware hash, not from the image (only its metadata was read)")
	} else if pre != nil {
		seed, err := pre.snpSeed()
		if err != nil {
			return st, err
		}
		c = newChain(seed)
	} else {
		if err := checkSNPImage(fw.Image); err != nil {
			return st, err
		}
		c = newChain(nil)
		c.firmwarePages(fw.GPA, fw.Image)
	}

	for _, s := range fw.Sections {
		switch s.Type {
		case SectionSNPSecMem:
			if p.VMM == VMMGCE {
				c.emptyPages(pageTypeUnmeasured, uint64(s.GPA), uint64(s.Size))
			} else {
				c.emptyPages(pageTypeZero, uint64(s.GPA), uint64(s.Size))
			}
		case SectionSNPSecrets:
			c.extend(pageTypeSecrets, uint64(s.GPA), nil)
		case SectionCPUID:
			if p.VMM != VMMEC2 {
				c.extend(pageTypeCPUID, uint64(s.GPA), nil)
			}
		case SectionSNPKernelHashes:
			if hashesSection != nil {
				c.normalPages(uint64(s.GPA), kernelHashesPages(fw, hashesSection, *table()))
			} else {
				c.emptyPages(pageTypeZero, uint64(s.GPA), uint64(s.Size))
			}
		case SectionSVSMCAA:
			c.emptyPages(pageTypeZero, uint64(s.GPA), uint64(s.Size))
		}
	}
	order := ""
	if p.VMM == VMMEC2 {
		// EC2 measures the CPUID page after all other sections.
		for _, s := range fw.Sections {
			if s.Type == SectionCPUID {
				c.extend(pageTypeCPUID, uint64(s.GPA), nil)
			}
		}
		order = ", CPUID page measured after the other sections"
	}
	if p.VMM == VMMGCE {
		order = ", SNP_SEC_MEM measured as unmeasured pages"
	}

	vmsas := makeVMSAs(p, fw, p.GuestFeatures, r.VCPUSig)
	var prev []byte
	for i, v := range vmsas {
		if prev != nil && &v[0] == &prev[0] {
			c.skipped += PageSize
			c.extend(pageTypeVMSA, vmsaGPA, &c.sum)
		} else {
			c.vmsaPage(vmsaGPA, v)
			prev = v
		}
		if p.eachVCPU != nil {
			p.eachVCPU(i+1, c.info[:DigestSize])
		}
	}
	if p.DumpVMSA {
		r.VMSAs = vmsas
	}
	r.Digest = c.digest()
	r.Variant = fmt.Sprintf("SEV-SNP: %s, guest features %#x, VMSA GPA %#x%s", vmsaVariant(p, r), p.GuestFeatures, vmsaGPA, order)
	return stats{logical: c.skipped + c.hashed, hashed: c.hashed}, nil
}

// kernelHashesSection returns the SNP_KERNEL_HASHES section that holds the
// hashes table, after checking that the table fits in it.
func kernelHashesSection(fw *Firmware) (*Section, error) {
	if err := checkHashTableArea(fw); err != nil {
		return nil, err
	}
	var sec *Section
	for i := range fw.Sections {
		if fw.Sections[i].Type != SectionSNPKernelHashes {
			continue
		}
		if sec != nil {
			return nil, fmt.Errorf("the firmware's SEV metadata has two SNP_KERNEL_HASHES sections (GPA %#x and %#x): which one holds the table is ambiguous", sec.GPA, fw.Sections[i].GPA)
		}
		sec = &fw.Sections[i]
	}
	if sec == nil {
		return nil, errors.New("a kernel was given but the firmware's SEV metadata has no SNP_KERNEL_HASHES section: this OVMF build cannot measure a directly booted kernel under SNP; use one built from OvmfPkg/AmdSev/AmdSevX64.dsc")
	}
	gpa := fw.HashTable.GPA
	if gpa < sec.GPA || uint64(gpa)+PaddedHashTableSize > uint64(sec.GPA)+uint64(sec.Size) {
		return nil, fmt.Errorf("the SEV hashes table at GPA %#x does not lie inside the SNP_KERNEL_HASHES section %#x..%#x: the firmware is inconsistent", gpa, sec.GPA, uint64(sec.GPA)+uint64(sec.Size))
	}
	return sec, nil
}

// kernelHashesPages returns the contents of the SNP_KERNEL_HASHES section
// sec (from kernelHashesSection) with the table at the place the footer
// table names.
func kernelHashesPages(fw *Firmware, sec *Section, t HashTable) []byte {
	pages := make([]byte, sec.Size)
	t.put(pages[fw.HashTable.GPA-sec.GPA:])
	return pages
}
