package sev

import (
	"errors"
	"fmt"

	"github.com/cocobuild/cocobuild/measure/ovmf"
)

// PageSize is the size of a guest page as the SNP firmware measures it.
const PageSize = 4096

// fourGiB is where the firmware image ends in guest physical memory.
const fourGiB = 1 << 32

// SectionType is the type of an OVMF SEV metadata section, as declared by
// edk2's OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm.
type SectionType uint32

// The SEV metadata section types.
const (
	SectionSNPSecMem       SectionType = 1    // pre-validated memory: SNP zero pages (GCE: unmeasured)
	SectionSNPSecrets      SectionType = 2    // the SNP secrets page
	SectionCPUID           SectionType = 3    // the SNP CPUID page
	SectionSVSMCAA         SectionType = 4    // the SVSM calling area: zero pages
	SectionSNPKernelHashes SectionType = 0x10 // the page holding the SEV hashes table
)

// String returns the edk2 name of the section type.
func (t SectionType) String() string {
	switch t {
	case SectionSNPSecMem:
		return "SNP_SEC_MEM"
	case SectionSNPSecrets:
		return "SNP_SECRETS"
	case SectionCPUID:
		return "CPUID"
	case SectionSVSMCAA:
		return "SVSM_CAA"
	case SectionSNPKernelHashes:
		return "SNP_KERNEL_HASHES"
	}
	return fmt.Sprintf("SectionType(%#x)", uint32(t))
}

func (t SectionType) known() bool {
	switch t {
	case SectionSNPSecMem, SectionSNPSecrets, SectionCPUID, SectionSVSMCAA, SectionSNPKernelHashes:
		return true
	}
	return false
}

// Section is one entry of the SEV metadata: a guest-physical range and what
// the VMM puts there before launch.
type Section struct {
	GPA  uint32
	Size uint32
	Type SectionType
}

// Area is a guest-physical range named by a footer table entry (GPA u32, size u32).
type Area struct {
	GPA  uint32
	Size uint32
}

// Errors for absent firmware structures; test with errors.Is.
var (
	// ErrNoMetadata: the image has no SEV metadata (footer GUID dc886566-…).
	ErrNoMetadata = errors.New("firmware has no SEV metadata (OVMF footer GUID dc886566-984a-4798-a75e-5585a7bf67cc): it is not an SEV-SNP capable OVMF build")
	// ErrNoResetBlock: the image has no SEV-ES reset block (footer GUID 00f771de-…).
	ErrNoResetBlock = errors.New("firmware has no SEV-ES reset block (OVMF footer GUID 00f771de-1a7e-4fcb-890e-68c77e2fb44e): it is not an SEV-ES capable OVMF build")
	// ErrNoHashTable: the image has no SEV hashes table entry (footer GUID 7255371f-…).
	ErrNoHashTable = errors.New("firmware has no SEV hashes table (OVMF footer GUID 7255371f-3a3b-4b04-927b-1da6efa8d454): it cannot measure a directly booted kernel; use an OVMF built from OvmfPkg/AmdSev/AmdSevX64.dsc")
)

// Firmware is what an SEV launch measurement needs to know about an OVMF image.
type Firmware struct {
	// Image is the firmware file, placed so that it ends at 4 GiB.
	Image []byte
	// GPA is the guest-physical address of the first byte of Image.
	GPA uint64
	// Sections are the SEV metadata sections in firmware order; nil without metadata.
	Sections []Section
	// HasMetadata reports whether the image carries SEV metadata (possibly with no sections).
	HasMetadata bool
	// ResetEIP is the SEV-ES AP reset address; valid if HasResetBlock.
	ResetEIP      uint32
	HasResetBlock bool
	// HashTable is where QEMU writes the SEV hashes table; valid if
	// HasHashTable. A GPA of 0 means the build reserves none.
	HashTable    Area
	HasHashTable bool
	// Recognized says the image is a firmware image the model knows: it has
	// an OVMF footer table or a firmware volume (ovmf.Recognize).
	Recognized bool
}

// ParseFirmware parses the OVMF footer table of image and the structures it
// points to. An image without a footer table parses to a Firmware with
// nothing in it (SEV without direct boot needs nothing more), Recognized
// when it has a firmware volume; a corrupt footer table or SEV metadata is
// an error. It never panics. Image is kept, not copied.
func ParseFirmware(image []byte) (*Firmware, error) {
	if len(image) == 0 {
		return nil, errors.New("firmware image is empty: give the OVMF file")
	}
	if len(image) > fourGiB {
		return nil, fmt.Errorf("firmware image is %d bytes, larger than the 4 GiB below which it must fit", len(image))
	}
	fw := &Firmware{Image: image, GPA: fourGiB - uint64(len(image))}
	ft, err := ovmf.ParseFooterTable(image)
	if errors.Is(err, ovmf.ErrNoFooterTable) {
		fw.Recognized = ovmf.Recognize(image) == nil
		return fw, nil
	}
	if err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	fw.Recognized = true
	fw.Sections, err = parseMetadata(image, ft)
	switch {
	case err == nil:
		fw.HasMetadata = true
	case !errors.Is(err, ErrNoMetadata):
		return nil, err
	}
	fw.ResetEIP, err = parseResetBlock(ft)
	switch {
	case err == nil:
		fw.HasResetBlock = true
	case !errors.Is(err, ErrNoResetBlock):
		return nil, err
	}
	fw.HashTable, err = parseHashTableArea(ft)
	switch {
	case err == nil:
		fw.HasHashTable = true
	case !errors.Is(err, ErrNoHashTable):
		return nil, err
	}
	return fw, nil
}

// ParseMetadata returns the SEV metadata sections of an OVMF image, or an
// error wrapping ErrNoMetadata (or ovmf.ErrNoFooterTable) when it has none.
func ParseMetadata(image []byte) ([]Section, error) {
	ft, err := ovmf.ParseFooterTable(image)
	if err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	return parseMetadata(image, ft)
}

// ParseResetBlock returns the SEV-ES AP reset address of an OVMF image, or an
// error wrapping ErrNoResetBlock (or ovmf.ErrNoFooterTable) when it has none.
func ParseResetBlock(image []byte) (uint32, error) {
	ft, err := ovmf.ParseFooterTable(image)
	if err != nil {
		return 0, fmt.Errorf("firmware: %w", err)
	}
	return parseResetBlock(ft)
}

// ParseHashTableArea returns where an OVMF image wants the SEV hashes table,
// or an error wrapping ErrNoHashTable (or ovmf.ErrNoFooterTable) when it has no
// entry for it. A GPA of 0 means the build reserves no table.
func ParseHashTableArea(image []byte) (Area, error) {
	ft, err := ovmf.ParseFooterTable(image)
	if err != nil {
		return Area{}, fmt.Errorf("firmware: %w", err)
	}
	return parseHashTableArea(ft)
}

func parseMetadata(image []byte, ft *ovmf.FooterTable) ([]Section, error) {
	descs, present, err := ovmf.ReadSEVMetadata(image, ft)
	if err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	if !present {
		return nil, ErrNoMetadata
	}
	sections := make([]Section, 0, len(descs))
	for i, d := range descs {
		s := Section{GPA: d.GPA, Size: d.Size, Type: SectionType(d.Type)}
		if !s.Type.known() {
			return nil, fmt.Errorf("firmware: SEV metadata section %d (GPA %#x) has unknown type %#x: this firmware is newer than cocobuild's model", i, s.GPA, uint32(s.Type))
		}
		if s.GPA%PageSize != 0 || s.Size%PageSize != 0 {
			return nil, fmt.Errorf("firmware: SEV metadata section %d (%s) at GPA %#x, size %#x is not page aligned: the image is corrupt", i, s.Type, s.GPA, s.Size)
		}
		if uint64(s.GPA)+uint64(s.Size) > fourGiB {
			return nil, fmt.Errorf("firmware: SEV metadata section %d (%s) at GPA %#x, size %#x runs past 4 GiB: the image is corrupt", i, s.Type, s.GPA, s.Size)
		}
		sections = append(sections, s)
	}
	return sections, nil
}

func parseResetBlock(ft *ovmf.FooterTable) (uint32, error) {
	eip, ok := ft.Uint32(ovmf.SEVESResetBlockGUID, 0)
	if !ok {
		if _, present := ft.Entry(ovmf.SEVESResetBlockGUID); present {
			return 0, errors.New("firmware: SEV-ES reset block footer entry is shorter than 4 bytes: the image is corrupt")
		}
		return 0, ErrNoResetBlock
	}
	return eip, nil
}

func parseHashTableArea(ft *ovmf.FooterTable) (Area, error) {
	a, present, err := ovmf.ReadHashesTableArea(ft)
	switch {
	case err != nil:
		return Area{}, fmt.Errorf("firmware: %w", err)
	case !present:
		return Area{}, ErrNoHashTable
	}
	return Area{GPA: a.GPA, Size: a.Size}, nil
}

// HasSection reports whether the firmware declares a section of type t.
func (fw *Firmware) HasSection(t SectionType) bool {
	for _, s := range fw.Sections {
		if s.Type == t {
			return true
		}
	}
	return false
}
