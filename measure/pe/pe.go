// Package pe parses PE/COFF images (headers, sections, data directories and
// the attribute certificate table) and computes their Authenticode digests
// as the Microsoft Authenticode specification and UEFI firmware (edk2) define
// them. It serves the TDX RTMR model (kernels loaded by OVMF), and is general
// enough for vTPM PCR models and unified kernel images.
//
// The package is pure: it works on byte slices, never panics on malformed
// input, and returns errors that say what is wrong with the image.
package pe

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Optional header magics.
const (
	MagicPE32     = 0x10b
	MagicPE32Plus = 0x20b
)

// Data directory indices used by this package.
const (
	DirExport      = 0
	DirImport      = 1
	DirResource    = 2
	DirException   = 3
	DirSecurity    = 4 // the attribute certificate table; its address is a file offset
	DirBaseReloc   = 5
	DirDebug       = 6
	numStandardDir = 16
)

// Structure sizes and offsets from the PE/COFF specification.
const (
	dosLfanewOff     = 0x3c
	coffHeaderSize   = 20
	sectionHeaderLen = 40
	checksumOff      = 64 // CheckSum within the optional header (PE32 and PE32+)
	dirOffPE32       = 96 // data directories within the PE32 optional header
	dirOffPE32Plus   = 112
	certHeaderLen    = 8 // WIN_CERTIFICATE: dwLength, wRevision, wCertificateType
)

// ErrNotPE reports input that does not start with an MZ header pointing at a
// "PE\0\0" signature.
var ErrNotPE = errors.New("not a PE/COFF image: no MZ header with a PE signature")

// DataDirectory is one entry of the optional header's data directory.
type DataDirectory struct {
	VirtualAddress uint32 // an RVA, except for DirSecurity where it is a file offset
	Size           uint32
}

// Section is one section header.
type Section struct {
	Name                 string
	VirtualSize          uint32
	VirtualAddress       uint32
	SizeOfRawData        uint32
	PointerToRawData     uint32
	PointerToRelocations uint32
	Characteristics      uint32
}

// Certificate is one WIN_CERTIFICATE entry of the attribute certificate table.
type Certificate struct {
	Offset   uint32 // file offset of the entry
	Length   uint32 // dwLength, header included
	Revision uint16 // 0x0200 for WIN_CERT_REVISION_2_0
	Type     uint16 // 0x0002 for WIN_CERT_TYPE_PKCS_SIGNED_DATA
	Data     []byte // bCertificate (for Authenticode: a PKCS#7 SignedData)
}

// File is a parsed PE/COFF image. It refers to the bytes given to Parse and
// must not outlive changes to them.
type File struct {
	Machine              uint16
	NumberOfSections     uint16
	TimeDateStamp        uint32
	SizeOfOptionalHeader uint16
	Characteristics      uint16

	Magic               uint16 // MagicPE32 or MagicPE32Plus
	AddressOfEntryPoint uint32
	ImageBase           uint64
	SectionAlignment    uint32
	FileAlignment       uint32
	SizeOfImage         uint32
	SizeOfHeaders       uint32
	CheckSum            uint32
	Subsystem           uint16
	DataDirectories     []DataDirectory
	Sections            []Section

	// File offsets of the fields that Authenticode skips.
	CheckSumOffset int
	// SecurityDirOffset is the file offset of the certificate table's data
	// directory entry, or -1 when the image has fewer than five directories.
	SecurityDirOffset int

	data []byte
}

// Parse parses the headers and section table of a PE/COFF image.
func Parse(b []byte) (*File, error) {
	if len(b) < dosLfanewOff+4 || b[0] != 'M' || b[1] != 'Z' {
		return nil, ErrNotPE
	}
	peOff := int(binary.LittleEndian.Uint32(b[dosLfanewOff:]))
	if peOff < dosLfanewOff+4 || peOff > len(b)-4-coffHeaderSize {
		return nil, fmt.Errorf("%w: e_lfanew 0x%x is outside the %d-byte file", ErrNotPE, peOff, len(b))
	}
	if string(b[peOff:peOff+4]) != "PE\x00\x00" {
		return nil, ErrNotPE
	}
	f := &File{data: b, SecurityDirOffset: -1}
	coff := b[peOff+4:]
	f.Machine = binary.LittleEndian.Uint16(coff[0:])
	f.NumberOfSections = binary.LittleEndian.Uint16(coff[2:])
	f.TimeDateStamp = binary.LittleEndian.Uint32(coff[4:])
	f.SizeOfOptionalHeader = binary.LittleEndian.Uint16(coff[16:])
	f.Characteristics = binary.LittleEndian.Uint16(coff[18:])

	optOff := peOff + 4 + coffHeaderSize
	optEnd := optOff + int(f.SizeOfOptionalHeader)
	if optEnd > len(b) {
		return nil, fmt.Errorf("PE optional header (%d bytes at 0x%x) runs past the end of the %d-byte file: truncated image", f.SizeOfOptionalHeader, optOff, len(b))
	}
	opt := b[optOff:optEnd]
	if len(opt) < 2 {
		return nil, fmt.Errorf("PE optional header is %d bytes: an image needs one", len(opt))
	}
	f.Magic = binary.LittleEndian.Uint16(opt)
	var dirOff, numDirOff int
	switch f.Magic {
	case MagicPE32:
		dirOff, numDirOff = dirOffPE32, dirOffPE32-4
	case MagicPE32Plus:
		dirOff, numDirOff = dirOffPE32Plus, dirOffPE32Plus-4
	default:
		return nil, fmt.Errorf("PE optional header magic 0x%x is neither PE32 (0x10b) nor PE32+ (0x20b)", f.Magic)
	}
	if len(opt) < dirOff {
		return nil, fmt.Errorf("PE optional header is %d bytes, shorter than the %d bytes its magic 0x%x needs", len(opt), dirOff, f.Magic)
	}
	f.AddressOfEntryPoint = binary.LittleEndian.Uint32(opt[16:])
	if f.Magic == MagicPE32 {
		f.ImageBase = uint64(binary.LittleEndian.Uint32(opt[28:]))
	} else {
		f.ImageBase = binary.LittleEndian.Uint64(opt[24:])
	}
	f.SectionAlignment = binary.LittleEndian.Uint32(opt[32:])
	f.FileAlignment = binary.LittleEndian.Uint32(opt[36:])
	f.SizeOfImage = binary.LittleEndian.Uint32(opt[56:])
	f.SizeOfHeaders = binary.LittleEndian.Uint32(opt[60:])
	f.CheckSum = binary.LittleEndian.Uint32(opt[checksumOff:])
	f.CheckSumOffset = optOff + checksumOff
	f.Subsystem = binary.LittleEndian.Uint16(opt[68:])

	numDirs := binary.LittleEndian.Uint32(opt[numDirOff:])
	if uint64(numDirs)*8 > uint64(len(opt)-dirOff) {
		return nil, fmt.Errorf("PE optional header declares %d data directories but has room for %d", numDirs, (len(opt)-dirOff)/8)
	}
	f.DataDirectories = make([]DataDirectory, numDirs)
	for i := range f.DataDirectories {
		d := opt[dirOff+8*i:]
		f.DataDirectories[i] = DataDirectory{
			VirtualAddress: binary.LittleEndian.Uint32(d),
			Size:           binary.LittleEndian.Uint32(d[4:]),
		}
	}
	if numDirs > DirSecurity {
		f.SecurityDirOffset = optOff + dirOff + 8*DirSecurity
	}

	secOff := optEnd
	secEnd := secOff + sectionHeaderLen*int(f.NumberOfSections)
	if secEnd > len(b) {
		return nil, fmt.Errorf("PE section table (%d sections at 0x%x) runs past the end of the %d-byte file: truncated image", f.NumberOfSections, secOff, len(b))
	}
	f.Sections = make([]Section, f.NumberOfSections)
	for i := range f.Sections {
		s := b[secOff+sectionHeaderLen*i:]
		name := s[:8]
		for j, c := range name {
			if c == 0 {
				name = name[:j]
				break
			}
		}
		f.Sections[i] = Section{
			Name:                 string(name),
			VirtualSize:          binary.LittleEndian.Uint32(s[8:]),
			VirtualAddress:       binary.LittleEndian.Uint32(s[12:]),
			SizeOfRawData:        binary.LittleEndian.Uint32(s[16:]),
			PointerToRawData:     binary.LittleEndian.Uint32(s[20:]),
			PointerToRelocations: binary.LittleEndian.Uint32(s[24:]),
			Characteristics:      binary.LittleEndian.Uint32(s[36:]),
		}
	}

	hdrs := uint64(f.SizeOfHeaders)
	if hdrs > uint64(len(b)) {
		return nil, fmt.Errorf("PE SizeOfHeaders 0x%x exceeds the %d-byte file: truncated image", f.SizeOfHeaders, len(b))
	}
	if hdrs < uint64(f.CheckSumOffset+4) || (f.SecurityDirOffset >= 0 && hdrs < uint64(f.SecurityDirOffset+8)) {
		return nil, fmt.Errorf("PE SizeOfHeaders 0x%x ends inside the optional header: corrupt image", f.SizeOfHeaders)
	}
	return f, nil
}

// Directory returns data directory i, and false when the image has fewer
// directories.
func (f *File) Directory(i int) (DataDirectory, bool) {
	if i < 0 || i >= len(f.DataDirectories) {
		return DataDirectory{}, false
	}
	return f.DataDirectories[i], true
}

// Section returns the first section called name, or nil.
func (f *File) Section(name string) *Section {
	for i := range f.Sections {
		if f.Sections[i].Name == name {
			return &f.Sections[i]
		}
	}
	return nil
}

// SectionData returns the raw file bytes of s.
func (f *File) SectionData(s *Section) ([]byte, error) {
	start, end := uint64(s.PointerToRawData), uint64(s.PointerToRawData)+uint64(s.SizeOfRawData)
	if end > uint64(len(f.data)) {
		return nil, fmt.Errorf("PE section %q (raw data 0x%x+0x%x) runs past the end of the %d-byte file: truncated image", s.Name, s.PointerToRawData, s.SizeOfRawData, len(f.data))
	}
	return f.data[start:end], nil
}

// CertificateTable returns the file offset and size of the attribute
// certificate table; size 0 means the image is not signed.
func (f *File) CertificateTable() (offset, size uint32) {
	d, _ := f.Directory(DirSecurity)
	if d.Size == 0 {
		return 0, 0
	}
	return d.VirtualAddress, d.Size
}

// Certificates parses the attribute certificate table (nil when unsigned).
func (f *File) Certificates() ([]Certificate, error) {
	off, size := f.CertificateTable()
	if size == 0 {
		return nil, nil
	}
	end := uint64(off) + uint64(size)
	if end > uint64(len(f.data)) {
		return nil, fmt.Errorf("PE certificate table 0x%x+0x%x runs past the end of the %d-byte file: truncated or corrupt signature", off, size, len(f.data))
	}
	var certs []Certificate
	pos := uint64(off)
	for pos < end {
		if end-pos < certHeaderLen {
			return nil, fmt.Errorf("PE certificate table: %d stray bytes at 0x%x, too short for a WIN_CERTIFICATE header", end-pos, pos)
		}
		h := f.data[pos:]
		n := uint64(binary.LittleEndian.Uint32(h))
		if n < certHeaderLen || n > end-pos {
			return nil, fmt.Errorf("PE certificate at 0x%x has length %d, outside %d..%d", pos, n, certHeaderLen, end-pos)
		}
		certs = append(certs, Certificate{
			Offset:   uint32(pos),
			Length:   uint32(n),
			Revision: binary.LittleEndian.Uint16(h[4:]),
			Type:     binary.LittleEndian.Uint16(h[6:]),
			Data:     f.data[pos+certHeaderLen : pos+n],
		})
		pos += (n + 7) &^ 7 // entries are quadword aligned
	}
	return certs, nil
}
