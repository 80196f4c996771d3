package tdx

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// RAMType says whether a RAM range is accepted by the VMM before the TD
// starts (TDX_RAM_ADDED) or left for the guest to accept.
type RAMType uint32

// RAM range types, with the EFI resource types they map to in the TD HOB.
const (
	RAMSystemMemory RAMType = 0 // EFI_RESOURCE_SYSTEM_MEMORY: added (accepted) by the VMM
	RAMUnaccepted   RAMType = 7 // EFI_RESOURCE_MEMORY_UNACCEPTED
)

// String returns the EFI resource type name.
func (t RAMType) String() string {
	switch t {
	case RAMSystemMemory:
		return "SYSTEM_MEMORY"
	case RAMUnaccepted:
		return "UNACCEPTED"
	}
	return fmt.Sprintf("RAMType(%d)", uint32(t))
}

// MarshalText returns the EFI resource type name.
func (t RAMType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// RAMRange is one memory resource descriptor of the TD HOB.
type RAMRange struct {
	Start  uint64  `json:"start"`
	Length uint64  `json:"length"`
	Type   RAMType `json:"type"`
}

// q35 memory split (hw/i386/pc_q35.c): guests with at least 0xb0000000
// bytes of RAM get 2 GiB below 4 GiB and the rest above; smaller guests get
// all of it below.
const (
	q35LowmemLimit   = 0xb0000000
	q35LowmemSplit   = 0x80000000
	fourGiB          = 1 << 32
	efiHOBHandoff    = 0x0001
	efiHOBResource   = 0x0003
	efiHOBEnd        = 0xffff
	hobHandoffSize   = 56
	hobResourceSize  = 48
	hobEndSize       = 8
	hobHandoffVer    = 0x0009
	tdvfResourceAttr = 0x7 // PRESENT | INITIALIZED | TESTED, for both added and unaccepted RAM
)

// Q35Memory returns the RAM below and above 4 GiB of a QEMU q35 guest with
// memory bytes of RAM.
func Q35Memory(memory uint64) (below4G, above4G uint64) {
	lowmem := uint64(q35LowmemLimit)
	if memory >= q35LowmemLimit {
		lowmem = q35LowmemSplit
	}
	if memory <= lowmem {
		return memory, 0
	}
	return lowmem, memory - lowmem
}

// RAMLayout returns the TD HOB memory ranges that QEMU builds for a q35
// guest: its e820 RAM, split around the TD_HOB and TempMem sections, which it
// accepts (adds) before launch; sorted by address.
func RAMLayout(md *Metadata, memory uint64) ([]RAMRange, error) {
	below, above := Q35Memory(memory)
	if below == 0 {
		return nil, fmt.Errorf("guest memory size %d is too small", memory)
	}
	ram := []RAMRange{{Start: 0, Length: below, Type: RAMUnaccepted}}
	if above > 0 {
		ram = append(ram, RAMRange{Start: fourGiB, Length: above, Type: RAMUnaccepted})
	}
	for i, s := range md.Sections {
		if s.Type != SectionTDHOB && s.Type != SectionTempMem {
			continue
		}
		var err error
		if ram, err = accept(ram, s.MemoryAddress, s.MemoryDataSize); err != nil {
			return nil, fmt.Errorf("TDVF section %d (%v at 0x%x+0x%x): %w", i, s.Type, s.MemoryAddress, s.MemoryDataSize, err)
		}
	}
	sort.SliceStable(ram, func(i, j int) bool { return ram[i].Start < ram[j].Start })
	return ram, nil
}

// accept marks [addr, addr+length) as added, splitting the one RAM range
// that must contain it, as QEMU's tdx_accept_ram_range does.
func accept(ram []RAMRange, addr, length uint64) ([]RAMRange, error) {
	end := addr + length
	for i := range ram {
		e := &ram[i]
		eEnd := e.Start + e.Length
		if end <= e.Start || addr >= eEnd {
			continue
		}
		if e.Start > addr || eEnd < end {
			return nil, fmt.Errorf("range is not inside one guest RAM range (QEMU refuses to start); is the guest memory large enough?")
		}
		if e.Type == RAMSystemMemory {
			return ram, nil
		}
		head, tail := RAMRange{e.Start, addr - e.Start, RAMUnaccepted}, RAMRange{end, eEnd - end, RAMUnaccepted}
		*e = RAMRange{addr, length, RAMSystemMemory}
		if head.Length > 0 {
			ram = append(ram, head)
		}
		if tail.Length > 0 {
			ram = append(ram, tail)
		}
		return ram, nil
	}
	return nil, fmt.Errorf("range is outside guest RAM (QEMU refuses to start); is the guest memory large enough?")
}

// TDHOB builds the TD HOB that QEMU writes into the TD_HOB section: a PHIT
// (handoff info table) whose EfiEndOfHobList points past the end HOB, one
// resource descriptor per RAM range, and the end-of-list HOB. measured is
// the part TDVF hashes into RTMR0: everything before the end-of-list HOB.
func TDHOB(md *Metadata, ram []RAMRange) (hob []byte, measured []byte, err error) {
	sec, ok := md.Section(SectionTDHOB)
	if !ok {
		return nil, nil, fmt.Errorf("TDVF metadata has no TD_HOB section")
	}
	size := hobHandoffSize + hobResourceSize*len(ram) + hobEndSize
	if uint64(size) > sec.MemoryDataSize {
		return nil, nil, fmt.Errorf("TD HOB needs %d bytes but the TD_HOB section has %d (QEMU aborts with \"TD_HOB overrun\")", size, sec.MemoryDataSize)
	}
	b := make([]byte, 0, size)
	hdr := func(typ, length uint16) {
		b = binary.LittleEndian.AppendUint16(b, typ)
		b = binary.LittleEndian.AppendUint16(b, length)
		b = binary.LittleEndian.AppendUint32(b, 0)
	}
	hdr(efiHOBHandoff, hobHandoffSize)
	b = binary.LittleEndian.AppendUint32(b, hobHandoffVer)
	b = binary.LittleEndian.AppendUint32(b, 0)                              // BootMode: BOOT_WITH_FULL_CONFIGURATION
	b = append(b, make([]byte, 4*8)...)                                     // EfiMemoryTop/Bottom, EfiFreeMemoryTop/Bottom: zero
	b = binary.LittleEndian.AppendUint64(b, sec.MemoryAddress+uint64(size)) // EfiEndOfHobList
	for _, r := range ram {
		hdr(efiHOBResource, hobResourceSize)
		b = append(b, make([]byte, 16)...) // Owner GUID: zero
		b = binary.LittleEndian.AppendUint32(b, uint32(r.Type))
		b = binary.LittleEndian.AppendUint32(b, tdvfResourceAttr)
		b = binary.LittleEndian.AppendUint64(b, r.Start)
		b = binary.LittleEndian.AppendUint64(b, r.Length)
	}
	measuredLen := len(b)
	hdr(efiHOBEnd, hobEndSize)
	return b, b[:measuredLen], nil
}
