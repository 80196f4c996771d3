package uki

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Section is a section to add to the stub: its name (at most 8 bytes)
// and data.
type Section struct {
	Name string
	Data []byte
	// Replaces says the stub's section of the same name is dropped (its
	// header and data) for this one (.sbat, merged by the caller).
	Replaces bool
}

// sectionAlign is the alignment of the added sections' virtual addresses:
// a page, as ukify places them, whatever the stub's SectionAlignment
// (Debian 12's is 512 bytes).
const sectionAlign = 4096

// Offsets in a PE32+ optional header and a section header.
const (
	optSizeOfInitializedData = 8
	optSizeOfImage           = 56
	optSizeOfHeaders         = 60
	optCheckSum              = 64
	optDataDirectories       = 112
	dirSecurity              = 4
	sectionHeaderSize        = 40
	// scnData is IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ.
	scnData = 0x40000040
)

// Assemble returns a unified kernel image: the EFI stub with sections
// appended, in the order given, each at the next page-aligned virtual
// address after the stub's, its VirtualSize the data's exact length (what
// systemd-stub measures) and its raw data padded to the FileAlignment. The
// stub's own sections keep their addresses and contents; its COFF symbol
// table and any Authenticode signature are dropped (a signature would not
// cover the new sections), the headers grow when the section table needs
// room, and the checksum is recomputed. The result depends on the inputs
// only.
func Assemble(stub []byte, sections []Section) ([]byte, error) {
	f, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		return nil, fmt.Errorf("the stub is not a PE image: %w", err)
	}
	defer f.Close()
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok || f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
		return nil, errors.New("the stub is not an x86-64 PE32+ image (linuxx64.efi.stub)")
	}
	if oh.Subsystem != pe.IMAGE_SUBSYSTEM_EFI_APPLICATION {
		return nil, fmt.Errorf("the stub's subsystem is %d, not an EFI application (10)", oh.Subsystem)
	}
	drop := map[string]bool{}
	for _, s := range sections {
		if len(s.Name) > 8 || s.Name == "" {
			return nil, fmt.Errorf("section name %q: want 1 to 8 bytes", s.Name)
		}
		if s.Replaces {
			drop[s.Name] = true
		} else if f.Section(s.Name) != nil {
			return nil, fmt.Errorf("the stub already has a section %s: give a plain systemd-stub (linuxx64.efi.stub), not a UKI", s.Name)
		}
	}
	var kept []*pe.Section
	dropped := 0 // file bytes of the dropped sections
	for _, s := range f.Sections {
		if drop[s.Name] {
			dropped += int(s.Size)
			continue
		}
		kept = append(kept, s)
	}
	peOff := int(binary.LittleEndian.Uint32(stub[0x3c:]))
	optOff := peOff + 4 + 20
	tableOff := optOff + int(f.SizeOfOptionalHeader)
	fileAlign, secAlign := int(oh.FileAlignment), int(oh.SectionAlignment)
	if fileAlign == 0 || secAlign == 0 || sectionAlign%secAlign != 0 {
		return nil, fmt.Errorf("the stub's alignments (file %d, section %d) are not usable", fileAlign, secAlign)
	}
	oldHeaders := int(oh.SizeOfHeaders)
	if oldHeaders > len(stub) || tableOff+len(f.Sections)*sectionHeaderSize > oldHeaders {
		return nil, fmt.Errorf("the stub's headers (SizeOfHeaders %d) do not hold its section table or lie beyond its %d bytes", oldHeaders, len(stub))
	}
	n := len(kept) + len(sections)
	newHeaders := max(oldHeaders, alignUp(tableOff+n*sectionHeaderSize, fileAlign))
	delta := newHeaders - oldHeaders

	out := make([]byte, newHeaders)
	copy(out, stub[:tableOff])
	// The stub's kept sections, each at its old file offset moved by delta
	// less the dropped sections' bytes before it (raw sizes are multiples
	// of the FileAlignment, so the offsets stay aligned).
	end, vend := newHeaders, 0
	for i, s := range kept {
		h := tableOff + i*sectionHeaderSize
		copy(out[h:h+sectionHeaderSize], stub[tableOff+slices.Index(f.Sections, s)*sectionHeaderSize:])
		before := 0
		for _, d := range f.Sections {
			if drop[d.Name] && d.Offset < s.Offset {
				before += int(d.Size)
			}
		}
		if s.Offset != 0 && s.Size != 0 {
			if uint64(s.Offset)+uint64(s.Size) > uint64(len(stub)) {
				return nil, fmt.Errorf("the stub's section %s lies beyond its %d bytes", s.Name, len(stub))
			}
			at := int(s.Offset) + delta - before
			data := stub[s.Offset : s.Offset+s.Size]
			if len(out) < at {
				out = append(out, make([]byte, at-len(out))...)
			}
			if len(out) > at {
				return nil, fmt.Errorf("the stub's section %s overlaps the headers or another section", s.Name)
			}
			out = append(out, data...)
			binary.LittleEndian.PutUint32(out[h+20:], uint32(at))
			end = len(out)
		}
		vend = max(vend, int(s.VirtualAddress)+int(max(s.VirtualSize, s.Size)))
	}
	initData := int(oh.SizeOfInitializedData) - dropped
	va := alignUp(vend, sectionAlign)
	for i, s := range sections {
		at := alignUp(end, fileAlign)
		raw := alignUp(len(s.Data), fileAlign)
		out = append(out, make([]byte, at-len(out))...)
		out = append(out, s.Data...)
		out = append(out, make([]byte, raw-len(s.Data))...)
		end = len(out)
		var hdr [sectionHeaderSize]byte
		copy(hdr[:8], s.Name)
		binary.LittleEndian.PutUint32(hdr[8:], uint32(len(s.Data)))
		binary.LittleEndian.PutUint32(hdr[12:], uint32(va))
		binary.LittleEndian.PutUint32(hdr[16:], uint32(raw))
		binary.LittleEndian.PutUint32(hdr[20:], uint32(at))
		binary.LittleEndian.PutUint32(hdr[36:], scnData)
		copy(out[tableOff+(len(kept)+i)*sectionHeaderSize:], hdr[:])
		initData += raw
		va = alignUp(va+len(s.Data), sectionAlign)
		if va > 1<<32-1 || end > 1<<32-1 {
			return nil, errors.New("the UKI would exceed 4GiB, which PE32+ images cannot")
		}
	}
	vlast := vend
	if len(sections) > 0 {
		last := len(sections) - 1
		h := tableOff + (len(kept)+last)*sectionHeaderSize
		vlast = int(binary.LittleEndian.Uint32(out[h+12:])) + len(sections[last].Data)
	}
	le := binary.LittleEndian
	le.PutUint16(out[peOff+4+2:], uint16(n)) // NumberOfSections
	le.PutUint32(out[peOff+4+8:], 0)         // PointerToSymbolTable
	le.PutUint32(out[peOff+4+12:], 0)        // NumberOfSymbols
	le.PutUint32(out[optOff+optSizeOfInitializedData:], uint32(initData))
	le.PutUint32(out[optOff+optSizeOfImage:], uint32(alignUp(vlast, secAlign)))
	le.PutUint32(out[optOff+optSizeOfHeaders:], uint32(newHeaders))
	if oh.NumberOfRvaAndSizes > dirSecurity {
		d := optOff + optDataDirectories + dirSecurity*8
		le.PutUint64(out[d:], 0)
	}
	le.PutUint32(out[optOff+optCheckSum:], 0)
	le.PutUint32(out[optOff+optCheckSum:], checksum(out))
	return out, nil
}

func alignUp(v, a int) int { return (v + a - 1) / a * a }

// checksum is the PE image checksum (IMAGEHLP's CheckSumMappedFile) of
// an image whose CheckSum field is zero: the sum of its 16-bit words, the
// carries folded back in, plus the file's length.
func checksum(b []byte) uint32 {
	var sum uint64
	for i := 0; i < len(b); i += 2 {
		var w uint64
		if i+1 < len(b) {
			w = uint64(binary.LittleEndian.Uint16(b[i:]))
		} else {
			w = uint64(b[i])
		}
		sum += w
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return uint32(sum) + uint32(len(b))
}
