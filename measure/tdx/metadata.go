package tdx

import (
	"errors"
	"fmt"

	"github.com/cocobuild/cocobuild/measure/ovmf"
)

// SectionType is the type of a TDVF metadata section.
type SectionType uint32

// TDVF section types (TDVF design guide, "TDVF metadata").
const (
	SectionBFV          SectionType = 0 // boot firmware volume: code, measured into MRTD
	SectionCFV          SectionType = 1 // configuration firmware volume: UEFI variables, measured into RTMR0
	SectionTDHOB        SectionType = 2 // where the VMM writes the TD HOB
	SectionTempMem      SectionType = 3 // temporary memory accepted by the VMM
	SectionPermMem      SectionType = 4 // permanent memory (td-shim)
	SectionPayload      SectionType = 5 // payload image (td-shim)
	SectionPayloadParam SectionType = 6 // payload parameters (td-shim)
)

var sectionNames = [...]string{"BFV", "CFV", "TD_HOB", "TempMem", "PermMem", "Payload", "PayloadParam"}

// String returns the TDVF name of the type ("BFV", "TD_HOB", ...).
func (t SectionType) String() string {
	if int(t) < len(sectionNames) {
		return sectionNames[t]
	}
	return fmt.Sprintf("SectionType(%d)", uint32(t))
}

// MarshalText returns the TDVF name.
func (t SectionType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText accepts the TDVF names that String returns.
func (t *SectionType) UnmarshalText(b []byte) error {
	for i, n := range sectionNames {
		if string(b) == n {
			*t = SectionType(i)
			return nil
		}
	}
	return fmt.Errorf("unknown TDVF section type %q: want one of %v", b, sectionNames)
}

// SectionAttributes are the attribute bits of a TDVF section.
type SectionAttributes uint32

// TDVF section attributes.
const (
	// AttrMRExtend asks the VMM to TDH.MR.EXTEND the section's pages into MRTD.
	AttrMRExtend SectionAttributes = 1 << 0
	// AttrPageAug marks memory that the VMM may add later with TDH.MEM.PAGE.AUG.
	AttrPageAug SectionAttributes = 1 << 1
)

// Section is one TDVF_SECTION entry of the metadata.
type Section struct {
	DataOffset     uint32            `json:"data_offset"`
	RawDataSize    uint32            `json:"raw_size"`
	MemoryAddress  uint64            `json:"gpa"`
	MemoryDataSize uint64            `json:"mem_size"`
	Type           SectionType       `json:"type"`
	Attributes     SectionAttributes `json:"attr"`
}

// Pages returns the number of 4 KiB pages the section occupies in TD memory.
func (s Section) Pages() uint64 { return s.MemoryDataSize / PageSize }

// Metadata is the TDVF metadata ("TDVF" descriptor) of a firmware image.
type Metadata struct {
	// Offset is the file offset of the descriptor.
	Offset   int       `json:"offset"`
	Version  uint32    `json:"version"`
	Sections []Section `json:"sections"`
}

// PageSize is the TDX page size.
const PageSize = 4096

const (
	// maxSections bounds the metadata: a real TDVF has fewer than a dozen.
	maxSections = 1024
	// maxSectionMemory bounds the memory all sections declare, so that a
	// corrupt image cannot make MRTD add pages for hours; real TDVF
	// sections total a few MiB.
	maxSectionMemory = 1 << 30
)

// ErrNoTDVFMetadata reports firmware without the TDX metadata footer entry.
var ErrNoTDVFMetadata = errors.New("no TDVF metadata: the firmware's OVMF footer table has no TDX metadata entry (e47a6535-984a-4798-865e-4685a7bf8ec2); use an OVMF/TDVF build with TDX support (IntelTdx or OvmfPkgX64 with TDX enabled)")

// ParseMetadata locates the TDVF metadata through the OVMF footer table and
// parses and checks it as QEMU does (version 1, page-aligned sections,
// RawDataSize <= MemoryDataSize, raw data inside the image, BFV/CFV with raw
// data, TD_HOB/TempMem without). It never panics.
func ParseMetadata(firmware []byte) (*Metadata, error) {
	ft, err := ovmf.ParseFooterTable(firmware)
	if err != nil {
		if errors.Is(err, ovmf.ErrNoFooterTable) {
			return nil, fmt.Errorf("%w (%v)", ErrNoTDVFMetadata, err)
		}
		return nil, fmt.Errorf("reading the TDVF metadata location: %w", err)
	}
	desc, present, err := ovmf.ReadTDXMetadata(firmware, ft)
	switch {
	case err != nil:
		return nil, err
	case !present:
		return nil, ErrNoTDVFMetadata
	}
	if n := len(desc.Sections); n < 2 {
		return nil, fmt.Errorf("TDVF metadata declares %d sections, want 2..%d", n, maxSections)
	}
	md := &Metadata{Offset: desc.Offset, Version: desc.Version, Sections: make([]Section, len(desc.Sections))}
	var total uint64
	for i, d := range desc.Sections {
		s := Section{DataOffset: d.DataOffset, RawDataSize: d.RawDataSize, MemoryAddress: d.MemoryAddress,
			MemoryDataSize: d.MemoryDataSize, Type: SectionType(d.Type), Attributes: SectionAttributes(d.Attributes)}
		if err := s.check(len(firmware)); err != nil {
			return nil, fmt.Errorf("TDVF metadata section %d (%v): %w", i, s.Type, err)
		}
		if total += s.MemoryDataSize; total > maxSectionMemory || s.MemoryDataSize > maxSectionMemory {
			return nil, fmt.Errorf("TDVF metadata sections declare more than %d bytes of TD memory: corrupt firmware", maxSectionMemory)
		}
		md.Sections[i] = s
	}
	return md, nil
}

func (s Section) check(imageSize int) error {
	switch {
	case uint64(s.RawDataSize) > s.MemoryDataSize:
		return fmt.Errorf("RawDataSize 0x%x exceeds MemoryDataSize 0x%x", s.RawDataSize, s.MemoryDataSize)
	case s.MemoryAddress%PageSize != 0:
		return fmt.Errorf("MemoryAddress 0x%x is not page aligned", s.MemoryAddress)
	case s.MemoryDataSize%PageSize != 0:
		return fmt.Errorf("MemoryDataSize 0x%x is not page aligned", s.MemoryDataSize)
	case s.MemoryAddress+s.MemoryDataSize < s.MemoryAddress:
		return fmt.Errorf("MemoryAddress 0x%x + MemoryDataSize 0x%x overflows", s.MemoryAddress, s.MemoryDataSize)
	case uint64(s.DataOffset)+uint64(s.RawDataSize) > uint64(imageSize):
		return fmt.Errorf("raw data 0x%x+0x%x lies outside the %d-byte image", s.DataOffset, s.RawDataSize, imageSize)
	}
	switch s.Type {
	case SectionBFV, SectionCFV:
		if s.RawDataSize == 0 {
			return errors.New("a firmware volume section needs raw data (RawDataSize is 0)")
		}
	case SectionTDHOB, SectionTempMem:
		if s.RawDataSize != 0 {
			return fmt.Errorf("RawDataSize is 0x%x, want 0 for memory sections", s.RawDataSize)
		}
	case SectionPermMem, SectionPayload, SectionPayloadParam:
		// td-shim section types; QEMU refuses them (see checkQEMU).
	default:
		return fmt.Errorf("unknown section type %d", uint32(s.Type))
	}
	return nil
}

// checkQEMU reports sections that QEMU's TDX support does not load.
func (md *Metadata) checkQEMU() error {
	hobs := 0
	for i, s := range md.Sections {
		switch s.Type {
		case SectionBFV, SectionCFV, SectionTempMem:
		case SectionTDHOB:
			hobs++
			if s.Attributes&AttrMRExtend != 0 {
				return fmt.Errorf("TDVF section %d (TD_HOB) asks for MR.EXTEND: the measured HOB would make MRTD depend on the VM's memory; this model does not support it", i)
			}
		default:
			return fmt.Errorf("TDVF section %d has type %v, which QEMU does not load (it takes BFV, CFV, TD_HOB and TempMem only)", i, s.Type)
		}
	}
	if hobs == 0 {
		return errors.New("TDVF metadata has no TD_HOB section: QEMU refuses such firmware")
	}
	return nil
}

// Section returns the first section of type t.
func (md *Metadata) Section(t SectionType) (Section, bool) {
	for _, s := range md.Sections {
		if s.Type == t {
			return s, true
		}
	}
	return Section{}, false
}
