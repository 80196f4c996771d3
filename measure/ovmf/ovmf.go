// Package ovmf parses the parts of an OVMF (edk2) firmware image that launch
// measurements depend on: its GUIDed footer table, which edk2 places just
// below the reset vector, 32 bytes before the end of the image; and, with
// Inspect, what the image holds and so what its measurements can vouch
// for: SEV and TDX metadata, the modules of its firmware volumes (walked
// with fiano's pkg/uefi), its variable store and Secure Boot keys.
package ovmf

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// GUID is a UEFI GUID in its on-disk (mixed-endian) byte order.
type GUID [16]byte

// ParseGUID parses the canonical text form "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
// into the on-disk byte order (first three fields little-endian).
func ParseGUID(s string) (GUID, error) {
	var g GUID
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 || len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, fmt.Errorf("malformed GUID %q: want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", s)
	}
	var raw [16]byte
	if _, err := hex.Decode(raw[:], []byte(h)); err != nil {
		return g, fmt.Errorf("malformed GUID %q: %w", s, err)
	}
	// Data1 (4 bytes), Data2 (2), Data3 (2) are little-endian on disk.
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	copy(g[8:], raw[8:])
	return g, nil
}

// MustGUID is ParseGUID for constants; it panics on a malformed literal.
func MustGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// String returns the canonical lowercase text form.
func (g GUID) String() string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(g[0:4]), binary.LittleEndian.Uint16(g[4:6]),
		binary.LittleEndian.Uint16(g[6:8]), g[8:10], g[10:16])
}

// Well-known footer table entries.
var (
	// FooterTableGUID marks the footer table itself.
	FooterTableGUID = MustGUID("96b582de-1fb2-45f7-baea-a366c55a082d")
	// SEVHashTableRVGUID locates the SEV kernel hashes table (GPA u32, size u32).
	SEVHashTableRVGUID = MustGUID("7255371f-3a3b-4b04-927b-1da6efa8d454")
	// SEVESResetBlockGUID holds the SEV-ES AP reset vector address (u32).
	SEVESResetBlockGUID = MustGUID("00f771de-1a7e-4fcb-890e-68c77e2fb44e")
	// SEVMetadataGUID holds the offset, from the end of the image, of the SEV metadata (u32).
	SEVMetadataGUID = MustGUID("dc886566-984a-4798-a75e-5585a7bf67cc")
	// SEVSecretBlockGUID locates the SEV launch secret area (GPA u32, size u32).
	SEVSecretBlockGUID = MustGUID("4c2eb361-7d9b-4cc3-8081-127c90d3d294")
	// TDXMetadataGUID holds the offset, from the end of the image, of the TDVF metadata (u32).
	TDXMetadataGUID = MustGUID("e47a6535-984a-4798-865e-4685a7bf8ec2")
)

// entryHeaderSize is the size of a footer entry's trailer: u16 length then GUID.
const entryHeaderSize = 2 + 16

// FooterTable is the parsed footer table: entry GUID to entry data.
type FooterTable struct {
	entries map[GUID][]byte
	order   []GUID
}

// ErrNoFooterTable reports an image without an OVMF footer table.
var ErrNoFooterTable = errors.New("no OVMF footer table (GUID 96b582de-1fb2-45f7-baea-a366c55a082d) 32 bytes before the end of the image: not an OVMF build with SEV/TDX support")

// ParseFooterTable walks the footer table backwards from the end of image.
// An image without a table gives ErrNoFooterTable; a corrupt table gives a
// descriptive error. It never panics.
func ParseFooterTable(image []byte) (*FooterTable, error) {
	start := len(image) - 32 - entryHeaderSize
	if start < 0 {
		return nil, ErrNoFooterTable
	}
	footer := image[start : start+entryHeaderSize]
	if GUID(footer[2:18]) != FooterTableGUID {
		return nil, ErrNoFooterTable
	}
	size := int(binary.LittleEndian.Uint16(footer[0:2]))
	tableSize := size - entryHeaderSize
	if tableSize < 0 || tableSize > start {
		return nil, fmt.Errorf("OVMF footer table: length %d is out of range (image %d bytes)", size, len(image))
	}
	table := image[start-tableSize : start]
	ft := &FooterTable{entries: map[GUID][]byte{}}
	for len(table) >= entryHeaderSize {
		hdr := table[len(table)-entryHeaderSize:]
		n := int(binary.LittleEndian.Uint16(hdr[0:2]))
		g := GUID(hdr[2:18])
		if n < entryHeaderSize || n > len(table) {
			return nil, fmt.Errorf("OVMF footer table: entry %s has length %d, outside 18..%d", g, n, len(table))
		}
		data := table[len(table)-n : len(table)-entryHeaderSize]
		if _, dup := ft.entries[g]; !dup {
			ft.order = append(ft.order, g)
		}
		ft.entries[g] = append([]byte(nil), data...)
		table = table[:len(table)-n]
	}
	return ft, nil
}

// Entry returns the data of the entry with GUID g.
func (t *FooterTable) Entry(g GUID) ([]byte, bool) {
	if t == nil {
		return nil, false
	}
	d, ok := t.entries[g]
	return d, ok
}

// GUIDs lists the entries in the order they were found (from the end backwards).
func (t *FooterTable) GUIDs() []GUID {
	if t == nil {
		return nil
	}
	return append([]GUID(nil), t.order...)
}

// Uint32 returns the little-endian u32 at off in the entry g.
func (t *FooterTable) Uint32(g GUID, off int) (uint32, bool) {
	d, ok := t.Entry(g)
	if !ok || off < 0 || off+4 > len(d) {
		return 0, false
	}
	return binary.LittleEndian.Uint32(d[off:]), true
}
