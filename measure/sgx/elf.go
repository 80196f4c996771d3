package sgx

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
)

// SelftestSSAFrameSize is the SSA frame size, in pages, of the selftest's
// enclaves.
const SelftestSSAFrameSize = 1

// SelftestLayout returns the page list that the Linux kernel's SGX
// selftest (tools/testing/selftests/sgx/load.c, encl_load) adds for the
// enclave ELF image with a heap of heapSize bytes. The layout follows
// the segments' file offsets, not their addresses, as encl_load does:
//
//   - the first PT_LOAD segment must be read-write; its pages are thread
//     control structures (TCS), and its page-aligned file offset is the
//     enclave's base;
//   - every other PT_LOAD segment is regular pages with the segment's
//     permissions, at its page-aligned file offset from the base, of its
//     file size rounded up to whole pages;
//   - every segment of the file is measured; the heap, regular read-write
//     pages, follows the last one and is not;
//   - the enclave's size is the smallest power of two, at least a page,
//     that holds them all, and its SSA frame is one page.
func SelftestLayout(image []byte, heapSize uint64) (*Layout, error) {
	if heapSize == 0 || heapSize%PageSize != 0 {
		return nil, fmt.Errorf("heap size %d is not a positive multiple of the page size %d", heapSize, PageSize)
	}
	if heapSize/PageSize > MaxPages {
		return nil, fmt.Errorf("heap size %d is over %d pages", heapSize, MaxPages)
	}
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil {
		return nil, fmt.Errorf("reading the enclave ELF: %w", err)
	}
	if f.Class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("the enclave ELF is %v: the selftest loads 64-bit enclaves", f.Class)
	}
	// The file is read as whole pages (encl_load maps it): bytes past its
	// end in its last page read as zeros, and a page past that does not
	// exist.
	mapped := (uint64(len(image)) + PageSize - 1) &^ (PageSize - 1)
	l := &Layout{SSAFrameSize: SelftestSSAFrameSize}
	var base uint64
	for i, p := range f.Progs {
		if p.Type != elf.PT_LOAD {
			continue
		}
		name := fmt.Sprintf("PT_LOAD %d (program header %d)", len(l.Segments), i)
		if p.Flags&^(elf.PF_R|elf.PF_W|elf.PF_X) != 0 {
			return nil, fmt.Errorf("%s has invalid segment flags %#x", name, uint32(p.Flags))
		}
		var flags uint64
		if len(l.Segments) == 0 {
			if p.Flags != elf.PF_R|elf.PF_W {
				return nil, fmt.Errorf("%s holds the TCS pages and must be read-write, not %v", name, p.Flags)
			}
			base = p.Off &^ (PageSize - 1)
			flags = SecInfoFlags(PageTCS, 0)
			name = "TCS"
		} else {
			var perm uint64
			if p.Flags&elf.PF_R != 0 {
				perm |= PermR
			}
			if p.Flags&elf.PF_W != 0 {
				perm |= PermW
			}
			if p.Flags&elf.PF_X != 0 {
				perm |= PermX
			}
			flags = SecInfoFlags(PageREG, perm)
		}
		start := p.Off &^ (PageSize - 1)
		if start < base {
			return nil, fmt.Errorf("%s starts at file offset %#x, before the TCS segment's %#x", name, p.Off, base)
		}
		if p.Filesz > mapped {
			return nil, fmt.Errorf("%s has %d bytes, more than the file's %d", name, p.Filesz, len(image))
		}
		size := (p.Filesz + PageSize - 1) &^ (PageSize - 1)
		if start > mapped-size {
			return nil, fmt.Errorf("%s: file offsets %#x-%#x are past the end of the file (%d bytes)", name, start, start+size, len(image))
		}
		data := image[min(start, uint64(len(image))):min(start+size, uint64(len(image)))]
		l.Segments = append(l.Segments, Segment{Offset: start - base, Size: size, Flags: flags, Measure: true, Data: data, Name: name})
	}
	if len(l.Segments) == 0 {
		return nil, errors.New("the enclave ELF has no PT_LOAD segment")
	}
	last := l.Segments[len(l.Segments)-1]
	heap := Segment{Offset: last.Offset + last.Size, Size: heapSize, Flags: SecInfoFlags(PageREG, PermR|PermW), Name: "heap"}
	if heap.Offset > 1<<62-heapSize {
		return nil, fmt.Errorf("the heap at %#x of %d bytes is past any enclave size", heap.Offset, heapSize)
	}
	l.Segments = append(l.Segments, heap)
	end := heap.Offset + heap.Size
	for l.Size = PageSize; l.Size < end; l.Size <<= 1 {
	}
	if err := l.Check(); err != nil {
		return nil, fmt.Errorf("the enclave ELF's pages: %w", err)
	}
	return l, nil
}
