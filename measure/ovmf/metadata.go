package ovmf

import (
	"encoding/binary"
	"fmt"
)

// SEVSection is one section of the SEV metadata ("ASEV") that edk2's
// OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm declares: a guest-physical
// range and what the VMM puts there before an SEV-SNP launch.
type SEVSection struct {
	GPA  uint32 `json:"gpa"`
	Size uint32 `json:"size"`
	// Type is the edk2 name: SNP_SEC_MEM, SNP_SECRETS, CPUID, SVSM_CAA,
	// SNP_KERNEL_HASHES, or "unknown(0xN)".
	Type string `json:"type"`
}

// SEV metadata section type names, by value.
var sevSectionTypes = map[uint32]string{1: "SNP_SEC_MEM", 2: "SNP_SECRETS", 3: "CPUID", 4: "SVSM_CAA", 0x10: "SNP_KERNEL_HASHES"}

// Area is a guest-physical range.
type Area struct {
	GPA  uint32 `json:"gpa"`
	Size uint32 `json:"size"`
}

// TDXSection is one TDVF_SECTION of the TDX metadata ("TDVF").
type TDXSection struct {
	DataOffset  uint32 `json:"data_offset"`
	RawDataSize uint32 `json:"raw_size"`
	GPA         uint64 `json:"gpa"`
	MemorySize  uint64 `json:"mem_size"`
	// Type is the TDVF name: BFV, CFV, TD_HOB, TempMem, PermMem, Payload,
	// PayloadParam, or "unknown(N)".
	Type string `json:"type"`
	// Attributes: bit 0 MR.EXTEND (measured into MRTD), bit 1 PAGE.AUG.
	Attributes uint32 `json:"attributes"`
}

var tdxSectionTypes = []string{"BFV", "CFV", "TD_HOB", "TempMem", "PermMem", "Payload", "PayloadParam"}

// TDXMetadata is the TDVF metadata that tells a VMM how to load a TD.
type TDXMetadata struct {
	Offset   int          `json:"offset"` // of the descriptor in the image
	Version  uint32       `json:"version"`
	Sections []TDXSection `json:"sections"`
}

// maxMetadataSections bounds both metadata tables: real ones have fewer
// than a dozen sections.
const maxMetadataSections = 1024

// The wire sizes of the two metadata tables.
const (
	sevMetadataHeaderSize = 16 // "ASEV", size, version, number of sections
	sevSectionSize        = 12 // GPA, size, type
	tdxDescriptorSize     = 16 // "TDVF", length, version, number of sections
	tdxSectionSize        = 32
)

// SEVSectionDesc is one section descriptor of the SEV metadata ("ASEV") as
// the image stores it: a guest-physical range and its type (edk2's
// OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm).
type SEVSectionDesc struct{ GPA, Size, Type uint32 }

// ReadSEVMetadata reads the SEV metadata that the footer table's
// SEVMetadataGUID entry points at: the one reader of that format, which
// Inspect and the SEV model share. present is false when the image has no
// such entry. It checks the layout (signature, version 1, the sections fit
// the declared size, at most 1024 sections), not what the sections mean. It
// never panics.
func ReadSEVMetadata(image []byte, ft *FooterTable) (sections []SEVSectionDesc, present bool, err error) {
	start, ok, err := metadataAt(image, ft, SEVMetadataGUID, "SEV metadata", sevMetadataHeaderSize)
	if !ok || err != nil {
		return nil, ok, err
	}
	hdr := image[start:]
	if string(hdr[0:4]) != "ASEV" {
		return nil, true, fmt.Errorf("SEV metadata at offset %#x has signature %q, want \"ASEV\": the image is corrupt", start, hdr[0:4])
	}
	size := binary.LittleEndian.Uint32(hdr[4:8])
	version := binary.LittleEndian.Uint32(hdr[8:12])
	n := binary.LittleEndian.Uint32(hdr[12:16])
	if version != 1 {
		return nil, true, fmt.Errorf("SEV metadata version %d is not supported (want 1)", version)
	}
	if size < sevMetadataHeaderSize || uint64(size) > uint64(len(hdr)) {
		return nil, true, fmt.Errorf("SEV metadata size %d is outside %d..%d: the image is corrupt", size, sevMetadataHeaderSize, len(hdr))
	}
	if room := (size - sevMetadataHeaderSize) / sevSectionSize; n > room || n > maxMetadataSections {
		return nil, true, fmt.Errorf("SEV metadata declares %d sections but has room for %d: the image is corrupt", n, min(room, maxMetadataSections))
	}
	out := make([]SEVSectionDesc, n)
	for i := range out {
		d := hdr[sevMetadataHeaderSize+sevSectionSize*i:]
		out[i] = SEVSectionDesc{GPA: binary.LittleEndian.Uint32(d[0:4]), Size: binary.LittleEndian.Uint32(d[4:8]), Type: binary.LittleEndian.Uint32(d[8:12])}
	}
	return out, true, nil
}

// ReadHashesTableArea reads the footer table's SEVHashTableRVGUID entry:
// where the VMM puts the SEV hashes table of a directly booted kernel (a
// GPA of 0 reserves none). present is false without the entry.
func ReadHashesTableArea(ft *FooterTable) (a Area, present bool, err error) {
	d, ok := ft.Entry(SEVHashTableRVGUID)
	if !ok {
		return Area{}, false, nil
	}
	if len(d) < 8 {
		return Area{}, true, fmt.Errorf("SEV hashes table footer entry is %d bytes, want 8 (GPA, size): the image is corrupt", len(d))
	}
	return Area{GPA: binary.LittleEndian.Uint32(d[0:4]), Size: binary.LittleEndian.Uint32(d[4:8])}, true, nil
}

// TDXSectionDesc is one TDVF_SECTION of the TDX metadata ("TDVF") as the
// image stores it.
type TDXSectionDesc struct {
	DataOffset, RawDataSize uint32
	MemoryAddress           uint64
	MemoryDataSize          uint64
	Type, Attributes        uint32
}

// TDXMetadataDesc is the TDVF metadata descriptor as the image stores it.
type TDXMetadataDesc struct {
	Offset   int // of the descriptor in the image
	Version  uint32
	Sections []TDXSectionDesc
}

// ReadTDXMetadata reads the TDVF metadata that the footer table's
// TDXMetadataGUID entry points at: the one reader of that format, which
// Inspect and the TDX model share. present is false when the image has no
// such entry. It checks the layout (signature, version 1, a length that
// matches the sections and lies inside the image, at most 1024 sections),
// not what the sections mean. It never panics.
func ReadTDXMetadata(image []byte, ft *FooterTable) (md *TDXMetadataDesc, present bool, err error) {
	off, ok, err := metadataAt(image, ft, TDXMetadataGUID, "TDVF metadata", tdxDescriptorSize)
	if !ok || err != nil {
		return nil, ok, err
	}
	d := image[off:]
	if string(d[0:4]) != "TDVF" {
		return nil, true, fmt.Errorf("TDVF metadata at offset %#x has signature %q, want \"TDVF\": the image is corrupt", off, d[0:4])
	}
	length := binary.LittleEndian.Uint32(d[4:])
	version := binary.LittleEndian.Uint32(d[8:])
	n := binary.LittleEndian.Uint32(d[12:])
	if version != 1 {
		return nil, true, fmt.Errorf("TDVF metadata version %d is not supported (want 1)", version)
	}
	if n > maxMetadataSections {
		return nil, true, fmt.Errorf("TDVF metadata declares %d sections, more than %d: the image is corrupt", n, maxMetadataSections)
	}
	if want := uint64(tdxDescriptorSize) + uint64(n)*tdxSectionSize; uint64(length) != want {
		return nil, true, fmt.Errorf("TDVF metadata length %d does not match its %d sections (want %d): the image is corrupt", length, n, want)
	}
	if uint64(length) > uint64(len(d)) {
		return nil, true, fmt.Errorf("TDVF metadata (%d bytes at offset %#x) runs past the end of the %d-byte image: the image is corrupt", length, off, len(image))
	}
	md = &TDXMetadataDesc{Offset: off, Version: version, Sections: make([]TDXSectionDesc, n)}
	for i := range md.Sections {
		e := d[tdxDescriptorSize+tdxSectionSize*i:]
		md.Sections[i] = TDXSectionDesc{
			DataOffset:     binary.LittleEndian.Uint32(e[0:]),
			RawDataSize:    binary.LittleEndian.Uint32(e[4:]),
			MemoryAddress:  binary.LittleEndian.Uint64(e[8:]),
			MemoryDataSize: binary.LittleEndian.Uint64(e[16:]),
			Type:           binary.LittleEndian.Uint32(e[24:]),
			Attributes:     binary.LittleEndian.Uint32(e[28:]),
		}
	}
	return md, true, nil
}

// metadataAt returns the image offset that a footer entry holding an
// offset from the end of the image points at; ok is false without the entry.
func metadataAt(image []byte, ft *FooterTable, g GUID, what string, headerSize int) (int, bool, error) {
	d, present := ft.Entry(g)
	if !present {
		return 0, false, nil
	}
	if len(d) < 4 {
		return 0, true, fmt.Errorf("%s footer entry is %d bytes, want 4: the image is corrupt", what, len(d))
	}
	fromEnd := binary.LittleEndian.Uint32(d)
	if uint64(fromEnd) > uint64(len(image)) || int(fromEnd) < headerSize {
		return 0, true, fmt.Errorf("%s offset %#x from the end lies outside the %d-byte image: the image is corrupt or truncated", what, fromEnd, len(image))
	}
	return len(image) - int(fromEnd), true, nil
}

// inspectSEVMetadata names the SEV metadata for Inspect; nil, nil when the
// image has none.
func inspectSEVMetadata(image []byte, ft *FooterTable) ([]SEVSection, error) {
	descs, _, err := ReadSEVMetadata(image, ft)
	if err != nil || descs == nil {
		return nil, err
	}
	out := make([]SEVSection, len(descs))
	for i, d := range descs {
		name, ok := sevSectionTypes[d.Type]
		if !ok {
			name = fmt.Sprintf("unknown(%#x)", d.Type)
		}
		out[i] = SEVSection{GPA: d.GPA, Size: d.Size, Type: name}
	}
	return out, nil
}

// inspectHashesTable is the hashes-table location for Inspect; nil when the
// image has no such footer entry or reserves no table (GPA 0).
func inspectHashesTable(ft *FooterTable) (*Area, error) {
	a, ok, err := ReadHashesTableArea(ft)
	if !ok || err != nil || a.GPA == 0 {
		return nil, err
	}
	return &a, nil
}

// inspectTDXMetadata names the TDVF metadata for Inspect; nil, nil when the
// image has none.
func inspectTDXMetadata(image []byte, ft *FooterTable) (*TDXMetadata, error) {
	md, _, err := ReadTDXMetadata(image, ft)
	if err != nil || md == nil {
		return nil, err
	}
	out := &TDXMetadata{Offset: md.Offset, Version: md.Version, Sections: make([]TDXSection, len(md.Sections))}
	for i, s := range md.Sections {
		name := fmt.Sprintf("unknown(%d)", s.Type)
		if int(s.Type) < len(tdxSectionTypes) {
			name = tdxSectionTypes[s.Type]
		}
		out.Sections[i] = TDXSection{DataOffset: s.DataOffset, RawDataSize: s.RawDataSize, GPA: s.MemoryAddress,
			MemorySize: s.MemoryDataSize, Type: name, Attributes: s.Attributes}
	}
	return out, nil
}
