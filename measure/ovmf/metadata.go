package ovmf

import (
	"encoding/binary"
	"errors"
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

// parseSEVMetadata reads the SEV metadata; nil, nil when the image has none.
func parseSEVMetadata(image []byte, ft *FooterTable) ([]SEVSection, error) {
	start, ok, err := metadataAt(image, ft, SEVMetadataGUID, "SEV metadata", 16)
	if !ok || err != nil {
		return nil, err
	}
	hdr := image[start:]
	if string(hdr[0:4]) != "ASEV" {
		return nil, fmt.Errorf("SEV metadata at offset %#x has signature %q, want \"ASEV\": the image is corrupt", start, hdr[0:4])
	}
	size := binary.LittleEndian.Uint32(hdr[4:8])
	version := binary.LittleEndian.Uint32(hdr[8:12])
	n := binary.LittleEndian.Uint32(hdr[12:16])
	if version != 1 {
		return nil, fmt.Errorf("SEV metadata version %d is not supported (want 1)", version)
	}
	if size < 16 || uint64(size) > uint64(len(hdr)) || uint64(n)*12 > uint64(size-16) || n > maxMetadataSections {
		return nil, fmt.Errorf("SEV metadata of %d bytes with %d sections does not fit the image: the image is corrupt", size, n)
	}
	out := make([]SEVSection, 0, n)
	for i := 0; i < int(n); i++ {
		d := hdr[16+12*i:]
		t := binary.LittleEndian.Uint32(d[8:12])
		name, ok := sevSectionTypes[t]
		if !ok {
			name = fmt.Sprintf("unknown(%#x)", t)
		}
		out = append(out, SEVSection{GPA: binary.LittleEndian.Uint32(d[0:4]), Size: binary.LittleEndian.Uint32(d[4:8]), Type: name})
	}
	return out, nil
}

// parseHashesTable reads the SEV hashes-table location; nil when the image
// has no such footer entry or reserves no table (GPA 0).
func parseHashesTable(ft *FooterTable) (*Area, error) {
	d, ok := ft.Entry(SEVHashTableRVGUID)
	if !ok {
		return nil, nil
	}
	if len(d) < 8 {
		return nil, fmt.Errorf("SEV hashes-table footer entry is %d bytes, want 8 (GPA, size): the image is corrupt", len(d))
	}
	a := Area{GPA: binary.LittleEndian.Uint32(d[0:4]), Size: binary.LittleEndian.Uint32(d[4:8])}
	if a.GPA == 0 {
		return nil, nil
	}
	return &a, nil
}

// parseTDXMetadata reads the TDVF metadata; nil, nil when the image has none.
func parseTDXMetadata(image []byte, ft *FooterTable) (*TDXMetadata, error) {
	off, ok, err := metadataAt(image, ft, TDXMetadataGUID, "TDX metadata", 16)
	if !ok || err != nil {
		return nil, err
	}
	d := image[off:]
	if string(d[0:4]) != "TDVF" {
		return nil, fmt.Errorf("TDX metadata at offset %#x has signature %q, want \"TDVF\": the image is corrupt", off, d[0:4])
	}
	length := binary.LittleEndian.Uint32(d[4:])
	version := binary.LittleEndian.Uint32(d[8:])
	n := binary.LittleEndian.Uint32(d[12:])
	if version != 1 {
		return nil, fmt.Errorf("TDX metadata version %d is not supported (want 1)", version)
	}
	if n > maxMetadataSections || uint64(length) != 16+32*uint64(n) || uint64(length) > uint64(len(d)) {
		return nil, fmt.Errorf("TDX metadata of %d bytes with %d sections does not fit the image: the image is corrupt", length, n)
	}
	md := &TDXMetadata{Offset: off, Version: version, Sections: make([]TDXSection, n)}
	for i := range md.Sections {
		e := d[16+32*i:]
		t := binary.LittleEndian.Uint32(e[24:])
		name := fmt.Sprintf("unknown(%d)", t)
		if int(t) < len(tdxSectionTypes) {
			name = tdxSectionTypes[t]
		}
		md.Sections[i] = TDXSection{
			DataOffset:  binary.LittleEndian.Uint32(e[0:]),
			RawDataSize: binary.LittleEndian.Uint32(e[4:]),
			GPA:         binary.LittleEndian.Uint64(e[8:]),
			MemorySize:  binary.LittleEndian.Uint64(e[16:]),
			Type:        name,
			Attributes:  binary.LittleEndian.Uint32(e[28:]),
		}
	}
	return md, nil
}

// errNotFirmware reports an image with neither a footer table nor a
// firmware volume.
var errNotFirmware = errors.New("not a UEFI firmware image: no OVMF footer table at its end and no firmware volume (\"_FVH\") in it; give an OVMF/edk2 .fd file")
