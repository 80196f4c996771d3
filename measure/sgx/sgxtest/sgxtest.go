// Package sgxtest builds small enclave ELF images for the tests of
// measure/sgx and its command line.
package sgxtest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
)

// Prog is a program header of a test ELF.
type Prog struct {
	Type        elf.ProgType
	Flags       elf.ProgFlag
	Off, Filesz uint64
}

// ELF returns a 64-bit x86-64 ELF of size bytes with the program headers
// progs; its bytes from 0x1000 on are their page number plus one, so that
// every page differs.
func ELF(size int, progs ...Prog) []byte {
	b := make([]byte, size)
	for i := 0x1000; i < size; i++ {
		b[i] = byte(i>>12) + 1
	}
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: uint16(len(progs))}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var w bytes.Buffer
	binary.Write(&w, binary.LittleEndian, h)
	for _, p := range progs {
		binary.Write(&w, binary.LittleEndian, elf.Prog64{Type: uint32(p.Type), Flags: uint32(p.Flags), Off: p.Off, Filesz: p.Filesz, Memsz: p.Filesz, Align: 4096})
	}
	copy(b, w.Bytes())
	return b
}

// SelftestLike returns an ELF with the kernel SGX selftest enclave's
// segments: two TCS pages, a page of code, a note, and 0x5800 bytes of
// data that end past the file's end (in its last page).
func SelftestLike() []byte {
	return ELF(0xa000,
		Prog{elf.PT_LOAD, elf.PF_R | elf.PF_W, 0x1000, 0x2000},
		Prog{elf.PT_LOAD, elf.PF_R | elf.PF_X, 0x3000, 0x1000},
		Prog{elf.PT_NOTE, elf.PF_R, 0x40, 0x10},
		Prog{elf.PT_LOAD, elf.PF_R | elf.PF_W, 0x4000, 0x5800})
}
