package tdx

import (
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
)

// PageOrder is the order in which the VMM issues TDH.MEM.PAGE.ADD and
// TDH.MR.EXTEND for the firmware sections; it changes MRTD.
type PageOrder string

// Page orders.
const (
	// PageOrderSinglePass adds each page and then extends its 16 chunks
	// before the next page: upstream KVM (KVM_TDX_INIT_MEM_REGION with
	// KVM_TDX_MEASURE_MEMORY_REGION), QEMU >= 9.2 and GCE.
	PageOrderSinglePass PageOrder = "single-pass"
	// PageOrderTwoPass adds all pages of a section, then extends all of
	// them: QEMU 8.2.2 with the TDX patches as some distributions ship it.
	PageOrderTwoPass PageOrder = "two-pass"
)

// ParsePageOrder accepts "single-pass" or "two-pass".
func ParsePageOrder(s string) (PageOrder, error) {
	switch o := PageOrder(s); o {
	case PageOrderSinglePass, PageOrderTwoPass:
		return o, nil
	}
	return "", fmt.Errorf("unknown page order %q: want %q (upstream KVM, GCE) or %q (QEMU 8.2.2 TDX builds)", s, PageOrderSinglePass, PageOrderTwoPass)
}

const (
	chunkSize      = 256 // TDH.MR.EXTEND measures 256 bytes
	chunksPerPage  = PageSize / chunkSize
	mrBufferSize   = 128 // the SEAM module hashes a 128-byte buffer per operation
	gpaFieldOffset = 16
)

// mrtdHasher accumulates MRTD as the TDX module does: one SHA-384 over the
// 128-byte operation buffers of TDH.MEM.PAGE.ADD and TDH.MR.EXTEND (the
// latter followed by the 256 measured bytes), finalised by TDH.MR.FINALIZE.
type mrtdHasher struct {
	h   hash.Hash
	buf []byte // batches writes; SHA-384's 128-byte blocks keep them aligned
}

func newMRTDHasher() *mrtdHasher {
	return &mrtdHasher{h: sha512.New384(), buf: make([]byte, 0, 64<<10)}
}

func (m *mrtdHasher) op(name string, gpa uint64) {
	if len(m.buf)+mrBufferSize > cap(m.buf) {
		m.flush()
	}
	n := len(m.buf)
	m.buf = m.buf[:n+mrBufferSize]
	b := m.buf[n:]
	clear(b)
	copy(b, name)
	binary.LittleEndian.PutUint64(b[gpaFieldOffset:], gpa)
}

func (m *mrtdHasher) pageAdd(gpa uint64) { m.op("MEM.PAGE.ADD", gpa) }

// extendPage extends the 16 chunks of the page at gpa with content page
// (PageSize bytes).
func (m *mrtdHasher) extendPage(gpa uint64, page []byte) {
	for c := 0; c < chunksPerPage; c++ {
		m.op("MR.EXTEND", gpa+uint64(c*chunkSize))
		if len(m.buf)+chunkSize > cap(m.buf) {
			m.flush()
		}
		m.buf = append(m.buf, page[c*chunkSize:(c+1)*chunkSize]...)
	}
}

func (m *mrtdHasher) flush() {
	m.h.Write(m.buf)
	m.buf = m.buf[:0]
}

func (m *mrtdHasher) sum() Digest {
	m.flush()
	var d Digest
	m.h.Sum(d[:0])
	return d
}

// MRTD computes the TD's build-time measurement from the firmware image and
// its TDVF metadata, for the given page order. It depends on nothing else:
// every section is added page by page (TDH.MEM.PAGE.ADD, in metadata order)
// and the sections with MR.EXTEND are extended in 256-byte chunks, with the
// content QEMU copies: the image bytes from DataOffset for firmware volumes,
// zeros for memory sections. Like QEMU, it adds sections marked PAGE.AUG
// too (QEMU does not look at that attribute), and it refuses the td-shim
// section types QEMU refuses.
func MRTD(firmware []byte, md *Metadata, order PageOrder) (Digest, error) {
	if order == "" {
		order = PageOrderSinglePass
	}
	if _, err := ParsePageOrder(string(order)); err != nil {
		return Digest{}, err
	}
	if err := md.checkQEMU(); err != nil {
		return Digest{}, err
	}
	m := newMRTDHasher()
	zero := make([]byte, PageSize)
	for i, s := range md.Sections {
		var content []byte
		extend := s.Attributes&AttrMRExtend != 0
		if extend && (s.Type == SectionBFV || s.Type == SectionCFV) {
			end := uint64(s.DataOffset) + s.MemoryDataSize
			if end > uint64(len(firmware)) {
				return Digest{}, fmt.Errorf("TDVF section %d (%v): QEMU copies 0x%x bytes from image offset 0x%x, past the end of the %d-byte image: corrupt firmware", i, s.Type, s.MemoryDataSize, s.DataOffset, len(firmware))
			}
			content = firmware[s.DataOffset:end]
		}
		page := func(p uint64) []byte {
			if content == nil {
				return zero
			}
			return content[p*PageSize : (p+1)*PageSize]
		}
		n := s.Pages()
		switch order {
		case PageOrderSinglePass:
			for p := uint64(0); p < n; p++ {
				gpa := s.MemoryAddress + p*PageSize
				m.pageAdd(gpa)
				if extend {
					m.extendPage(gpa, page(p))
				}
			}
		case PageOrderTwoPass:
			for p := uint64(0); p < n; p++ {
				m.pageAdd(s.MemoryAddress + p*PageSize)
			}
			if extend {
				for p := uint64(0); p < n; p++ {
					m.extendPage(s.MemoryAddress+p*PageSize, page(p))
				}
			}
		}
	}
	return m.sum(), nil
}
