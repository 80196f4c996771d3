package sgx

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
)

// PageSize is the size of an enclave page (EPC page).
const PageSize = 4096

// ChunkSize is the size of the data EEXTEND measures at once.
const ChunkSize = 256

// MaxPages bounds the pages of a Layout: 2^24 pages are 64 GiB of
// enclave, beyond the EPC of any CPU.
const MaxPages = 1 << 24

// PageType is the page type of a SECINFO (bits 15:8 of its flags).
type PageType uint8

// The SGX page types.
const (
	PageSECS PageType = 0
	PageTCS  PageType = 1
	PageREG  PageType = 2
	PageVA   PageType = 3
	PageTRIM PageType = 4
)

// The SECINFO permission flags.
const (
	PermR uint64 = 1 << 0
	PermW uint64 = 1 << 1
	PermX uint64 = 1 << 2
)

// SecInfoFlags returns the SECINFO flags of a page of type t with the
// permissions perm (PermR|PermW|PermX).
func SecInfoFlags(t PageType, perm uint64) uint64 {
	return uint64(t)<<8 | perm&(PermR|PermW|PermX)
}

// The tags that open each 64-byte block of the MRENCLAVE hash: the
// instruction names, zero-padded to 8 bytes, read as little-endian words.
const (
	tagECREATE = 0x0045544145524345 // "ECREATE\0"
	tagEADD    = 0x0000000044444145 // "EADD\0\0\0\0"
	tagEEXTEND = 0x00444E4554584545 // "EEXTEND\0"
)

// Measurement is an enclave's MRENCLAVE being built, one ENCLS leaf at a
// time, as the CPU does. Its zero value is not usable: start with
// NewMeasurement.
type Measurement struct {
	h hash.Hash
}

// NewMeasurement starts the measurement of an enclave as ECREATE does,
// with the SECS's SSA frame size (in pages) and enclave size (bytes).
func NewMeasurement(ssaFrameSize uint32, size uint64) *Measurement {
	m := &Measurement{h: sha256.New()}
	var b [64]byte
	binary.LittleEndian.PutUint64(b[0:], tagECREATE)
	binary.LittleEndian.PutUint32(b[8:], ssaFrameSize)
	binary.LittleEndian.PutUint64(b[12:], size)
	m.h.Write(b[:])
	return m
}

// EAdd extends the measurement as EADD does for a page at offset (from
// the enclave base) with the SECINFO flags.
func (m *Measurement) EAdd(offset, flags uint64) {
	var b [64]byte
	binary.LittleEndian.PutUint64(b[0:], tagEADD)
	binary.LittleEndian.PutUint64(b[8:], offset)
	binary.LittleEndian.PutUint64(b[16:], flags)
	m.h.Write(b[:])
}

// EExtend extends the measurement as EEXTEND does with the 256 bytes of
// chunk at offset (from the enclave base).
func (m *Measurement) EExtend(offset uint64, chunk []byte) error {
	if len(chunk) != ChunkSize {
		return fmt.Errorf("EEXTEND measures %d bytes, got %d", ChunkSize, len(chunk))
	}
	var b [64]byte
	binary.LittleEndian.PutUint64(b[0:], tagEEXTEND)
	binary.LittleEndian.PutUint64(b[8:], offset)
	m.h.Write(b[:])
	m.h.Write(chunk)
	return nil
}

// Sum returns MRENCLAVE as EINIT finalises it.
func (m *Measurement) Sum() [32]byte {
	var s [32]byte
	m.h.Sum(s[:0])
	return s
}

// Segment is a run of pages added with the same SECINFO flags.
type Segment struct {
	// Offset is the first page's offset from the enclave base, and Size
	// the length of the run; both are multiples of PageSize.
	Offset, Size uint64
	// Flags are the SECINFO flags of every page (SecInfoFlags).
	Flags uint64
	// Measure says whether each page is also measured with EEXTEND.
	Measure bool
	// Data are the pages' contents when measured: Size bytes, or fewer,
	// the rest being zeros.
	Data []byte
	// Name says what the segment is, for messages and listings.
	Name string
}

// Layout is an enclave's SECS parameters and its pages, in the order they
// are added.
type Layout struct {
	SSAFrameSize uint32
	// Size is the enclave's size (SECS.SIZE): a power of two, at least
	// two pages (Linux's sgx_validate_secs refuses less), covering every
	// segment.
	Size     uint64
	Segments []Segment
}

// Pages returns the number of pages of the layout.
func (l *Layout) Pages() uint64 {
	var n uint64
	for _, s := range l.Segments {
		n += s.Size / PageSize
	}
	return n
}

// Check says whether the layout is one an enclave can have: a power of
// two size, segments of whole pages inside it, not overlapping, with
// valid SECINFO flags, at most MaxPages pages in all.
func (l *Layout) Check() error {
	if l.Size < 2*PageSize || l.Size&(l.Size-1) != 0 {
		return fmt.Errorf("enclave size %#x is not a power of two of at least two pages (ECREATE of a smaller one fails)", l.Size)
	}
	if l.SSAFrameSize == 0 {
		return errors.New("SSA frame size is 0: an enclave's SSA frame is at least one page")
	}
	var pages uint64
	for i, s := range l.Segments {
		name := s.Name
		if name == "" {
			name = fmt.Sprintf("segment %d", i)
		}
		if s.Offset%PageSize != 0 || s.Size%PageSize != 0 {
			return fmt.Errorf("%s: offset %#x and size %#x must be multiples of the page size %#x", name, s.Offset, s.Size, PageSize)
		}
		if s.Size > l.Size || s.Offset > l.Size-s.Size {
			return fmt.Errorf("%s: pages %#x-%#x are outside the enclave of size %#x", name, s.Offset, s.Offset+s.Size, l.Size)
		}
		if s.Flags&^uint64(0xff07) != 0 || PageType(s.Flags>>8) != PageTCS && PageType(s.Flags>>8) != PageREG {
			return fmt.Errorf("%s: SECINFO flags %#x are not a TCS or REG page with R, W and X bits", name, s.Flags)
		}
		if uint64(len(s.Data)) > s.Size {
			return fmt.Errorf("%s: %d bytes of data for %#x bytes of pages", name, len(s.Data), s.Size)
		}
		if s.Data != nil && !s.Measure {
			return fmt.Errorf("%s: has data but is not measured: unmeasured pages do not enter MRENCLAVE", name)
		}
		pages += s.Size / PageSize
		if pages > MaxPages {
			return fmt.Errorf("the layout has more than %d pages", MaxPages)
		}
	}
	// Overlaps: in offset order, each segment starts at or after the end
	// of the one before.
	order := make([]int, len(l.Segments))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int { return cmp.Compare(l.Segments[i].Offset, l.Segments[j].Offset) })
	end, last := uint64(0), -1 // the furthest end so far, and its segment
	for _, i := range order {
		s := l.Segments[i]
		if s.Size == 0 {
			continue
		}
		if last >= 0 && s.Offset < end {
			p := l.Segments[last]
			return fmt.Errorf("segment %d (pages %#x-%#x) overlaps segment %d (pages %#x-%#x)", i, s.Offset, s.Offset+s.Size, last, p.Offset, p.Offset+p.Size)
		}
		end, last = s.Offset+s.Size, i
	}
	return nil
}

// MREnclave returns the layout's MRENCLAVE: ECREATE with its SSA frame
// size and size, then for each page in order EADD with its offset and
// SECINFO flags and, when measured, EEXTEND of each 256-byte chunk.
func (l *Layout) MREnclave() ([32]byte, error) {
	if err := l.Check(); err != nil {
		return [32]byte{}, err
	}
	m := NewMeasurement(l.SSAFrameSize, l.Size)
	var page [PageSize]byte
	for _, s := range l.Segments {
		for o := uint64(0); o < s.Size; o += PageSize {
			m.EAdd(s.Offset+o, s.Flags)
			if !s.Measure {
				continue
			}
			clear(page[:])
			if o < uint64(len(s.Data)) {
				copy(page[:], s.Data[o:])
			}
			for c := uint64(0); c < PageSize; c += ChunkSize {
				if err := m.EExtend(s.Offset+o+c, page[c:c+ChunkSize]); err != nil {
					return [32]byte{}, err
				}
			}
		}
	}
	return m.Sum(), nil
}
