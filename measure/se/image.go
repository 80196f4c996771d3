package se

import (
	"context"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Image layout facts (s390-tools rust/pv/src/brcb.rs, genprotimg's
// pv_image.c and pv_stage3.c, include/boot/ipl.h).
const (
	// metadataOffset is where images written by pvimg hold their
	// metadata ("SeImgLnx", the header's and the IPIB's offsets).
	metadataOffset = 0xc000
	metadataMagic  = "SeImgLnx"
	metadataSize   = 28
	// searchPages is how many pages from the start the header is looked
	// for in an image without metadata (as s390-tools' pv crate does: the
	// header of a genprotimg image is at 0x14000).
	searchPages = 0x15
	// ipibPBTPV is the IPL parameter block type of a protected
	// virtualization (SE) guest.
	ipibPBTPV = 5
	// ipibHeadSize is the size of the IPL parameter list header and the
	// PV parameter block before its component list.
	ipibHeadSize = 8 + 128
	// ipibCompSize is the size of one component entry (tweak prefix,
	// address, length).
	ipibCompSize = 24
	// maxComponents bounds the components of an IPIB of one page.
	maxComponents = (PageSize - ipibHeadSize) / ipibCompSize
)

// Component is one encrypted component of an image as its IPIB lists it:
// where it is (its address is its offset in the image file, which the
// IPL loads at 0), its size in pages, and the first 8 bytes of the
// AES-XTS tweak of its pages (the rest is the page's offset within the
// component).
type Component struct {
	TweakPrefix uint64 `json:"tweak_prefix"`
	Addr        uint64 `json:"addr"`
	Size        uint64 `json:"size"`
}

// Image is an SE image's header and where it found it, and the components
// its IPIB lists. A bare header (a file that starts with the header, as
// pvextract-hdr writes it) has no components.
type Image struct {
	Header       *Header
	HeaderOffset int64
	// IPIBOffset is the IPIB's offset (-1 for a bare header).
	IPIBOffset int64
	Components []Component
	// Metadata says the image has pvimg's metadata page.
	Metadata bool
}

// Bare says whether the image is a bare header.
func (im *Image) Bare() bool { return im.IPIBOffset < 0 }

// readAt reads n bytes at off, or fewer at the end of the file.
func readAt(r io.ReaderAt, size, off int64, n int) ([]byte, error) {
	if off < 0 || off >= size {
		return nil, io.ErrUnexpectedEOF
	}
	if int64(n) > size-off {
		n = int(size - off)
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// Detect says whether the size bytes of r look like an SE header or image:
// a header at the start, pvimg's metadata, or a header at one of the pages
// where genprotimg puts it.
func Detect(r io.ReaderAt, size int64) bool {
	_, _, err := findHeader(r, size)
	return err == nil
}

// IPIB offsets findHeader returns when it knows none: a bare header has
// no IPIB; a genprotimg image has it in the page before the header.
const (
	bareHeader = -1
	ipibBefore = -2
)

// findHeader returns the header's offset and, for a pvimg image, the
// IPIB's (else bareHeader or ipibBefore).
func findHeader(r io.ReaderAt, size int64) (hdr, ipib int64, err error) {
	head, err := readAt(r, size, 0, len(Magic))
	if err == nil && IsHeader(head) {
		return 0, bareHeader, nil
	}
	if m, err := readAt(r, size, metadataOffset, metadataSize); err == nil && len(m) == metadataSize && string(m[:8]) == metadataMagic {
		be := binary.BigEndian
		hdr, ipib := be.Uint64(m[8:]), be.Uint64(m[20:])
		if v := be.Uint32(m[16:]); v != 1 {
			return 0, 0, fmt.Errorf("SE image metadata version %d: only version 1 is known", v)
		}
		if hdr >= uint64(size) || ipib >= uint64(size) {
			return 0, 0, fmt.Errorf("SE image metadata: header at %#x or IPIB at %#x beyond the image's %d bytes: the image is truncated", hdr, ipib, size)
		}
		return int64(hdr), int64(ipib), nil
	}
	for p := int64(1); p < searchPages; p++ {
		b, err := readAt(r, size, p*PageSize, len(Magic))
		if err != nil {
			break
		}
		if IsHeader(b) {
			return p * PageSize, ipibBefore, nil
		}
	}
	return 0, 0, errors.New("no Secure Execution header: not at the start, no pvimg metadata at 0xc000, and none at the first 21 pages")
}

// Parse reads an SE image, or a bare SE header, of size bytes from r: its
// header and the components its IPIB lists. An image written by
// genprotimg has its IPIB in the page before its header (stage3a, the IPIB
// page, the header); one written by pvimg says where both are in its
// metadata.
func Parse(r io.ReaderAt, size int64) (*Image, error) {
	hdrOff, ipibOff, err := findHeader(r, size)
	if err != nil {
		return nil, err
	}
	b, err := readAt(r, size, hdrOff, MaxHeaderSize)
	if err != nil {
		return nil, fmt.Errorf("reading the SE header at %#x: %w", hdrOff, err)
	}
	h, err := ParseHeader(b)
	if err != nil {
		return nil, fmt.Errorf("at %#x: %w", hdrOff, err)
	}
	im := &Image{Header: h, HeaderOffset: hdrOff, IPIBOffset: ipibOff}
	switch ipibOff {
	case bareHeader:
		return im, nil
	case ipibBefore:
		im.IPIBOffset = hdrOff - PageSize
	default:
		im.Metadata = true
	}
	if im.IPIBOffset < 0 {
		return nil, fmt.Errorf("SE header at %#x leaves no room for the IPIB before it", hdrOff)
	}
	if im.Components, err = parseIPIB(r, size, im.IPIBOffset, h); err != nil {
		return nil, fmt.Errorf("SE image: the IPIB at %#x: %w", im.IPIBOffset, err)
	}
	return im, nil
}

// parseIPIB reads the PV IPL parameter block at off (include/boot/ipl.h:
// struct ipl_pl_hdr, then struct ipl_pb0_pv and its components).
func parseIPIB(r io.ReaderAt, size, off int64, h *Header) ([]Component, error) {
	b, err := readAt(r, size, off, PageSize)
	if err != nil {
		return nil, err
	}
	if len(b) < ipibHeadSize {
		return nil, fmt.Errorf("%d bytes, shorter than its header (%d): the image is truncated", len(b), ipibHeadSize)
	}
	be := binary.BigEndian
	plLen, plVersion := be.Uint32(b[0:]), b[7]
	pb := b[8:]
	pbLen, pbt, pvVersion := be.Uint32(pb[0:]), pb[4], pb[103]
	n := be.Uint32(pb[108:])
	hdrSize := be.Uint64(pb[120:])
	switch {
	case plVersion != 1:
		return nil, fmt.Errorf("parameter list version %d, want 1", plVersion)
	case pbt != ipibPBTPV:
		return nil, fmt.Errorf("parameter block type %d, want %d (protected virtualization)", pbt, ipibPBTPV)
	case pvVersion != 0:
		return nil, fmt.Errorf("PV parameter block version %d, want 0", pvVersion)
	case n == 0 || n > maxComponents:
		return nil, fmt.Errorf("%d components (1 to %d fit in a page)", n, maxComponents)
	case uint64(pbLen) != 128+uint64(n)*ipibCompSize:
		return nil, fmt.Errorf("parameter block length %d, but %d components need %d", pbLen, n, 128+n*ipibCompSize)
	case plLen < 8+pbLen || plLen > PageSize || uint64(len(b)) < uint64(8+pbLen):
		return nil, fmt.Errorf("parameter list length %d for a block of %d (at most a page, and within the image)", plLen, pbLen)
	case hdrSize != uint64(h.Size):
		return nil, fmt.Errorf("it gives the header's size as %d, the header says %d", hdrSize, h.Size)
	}
	comps := make([]Component, n)
	var pages uint64
	for i := range comps {
		e := pb[128+i*ipibCompSize:]
		c := Component{TweakPrefix: be.Uint64(e[0:]), Addr: be.Uint64(e[8:]), Size: be.Uint64(e[16:])}
		switch {
		case c.Size == 0 || c.Size%PageSize != 0 || c.Addr%PageSize != 0:
			return nil, fmt.Errorf("component %d at %#x of %d bytes: components are whole pages", i, c.Addr, c.Size)
		case c.Addr > uint64(size) || c.Size > uint64(size)-c.Addr:
			return nil, fmt.Errorf("component %d at %#x of %d bytes goes beyond the image's %d bytes: the image is truncated", i, c.Addr, c.Size, size)
		case i > 0 && c.Addr < comps[i-1].Addr+comps[i-1].Size:
			return nil, fmt.Errorf("component %d at %#x overlaps or precedes component %d (%#x, %d bytes): genprotimg lays components out in ascending, disjoint pages", i, c.Addr, i-1, comps[i-1].Addr, comps[i-1].Size)
		case i > 0 && c.TweakPrefix <= comps[i-1].TweakPrefix:
			return nil, fmt.Errorf("component %d: tweak prefix %#x not above the previous one's %#x (genprotimg makes them grow strictly)", i, c.TweakPrefix, comps[i-1].TweakPrefix)
		}
		comps[i] = c
		pages += c.Size / PageSize
	}
	if pages != h.Pages {
		return nil, fmt.Errorf("its components have %d pages, the header says %d", pages, h.Pages)
	}
	return comps, nil
}

// Digests are the page-list, address-list and tweak-list digests of an
// image's components, and their number of pages.
type Digests struct {
	PLD, ALD, TLD [DigestSize]byte
	Pages         uint64
}

// Digests recomputes PLD, ALD and TLD from the image's components, read
// from r, as genprotimg computes them (pv_comp.c): SHA-512 over the
// encrypted pages, in IPIB order; over each page's address as 8 bytes; and
// over each page's 16-byte tweak (the component's tweak prefix, then the
// page's offset within the component, as one big-endian 128-bit number).
// It reads one page at a time and stops when ctx is done.
func (im *Image) Digests(ctx context.Context, r io.ReaderAt) (*Digests, error) {
	if im.Bare() {
		return nil, errors.New("a bare SE header has no components to recompute its digests from: give the whole image")
	}
	pld, ald, tld := sha512.New(), sha512.New(), sha512.New()
	page := make([]byte, PageSize)
	var word [16]byte
	d := &Digests{}
	for i, c := range im.Components {
		for off := uint64(0); off < c.Size; off += PageSize {
			if off%(256*PageSize) == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			if _, err := r.ReadAt(page, int64(c.Addr+off)); err != nil {
				return nil, fmt.Errorf("component %d, page at %#x: %w", i, c.Addr+off, err)
			}
			pld.Write(page)
			binary.BigEndian.PutUint64(word[:8], c.Addr+off)
			ald.Write(word[:8])
			binary.BigEndian.PutUint64(word[:8], c.TweakPrefix)
			binary.BigEndian.PutUint64(word[8:], off)
			tld.Write(word[:])
			d.Pages++
		}
	}
	pld.Sum(d.PLD[:0])
	ald.Sum(d.ALD[:0])
	tld.Sum(d.TLD[:0])
	return d, nil
}

// Mismatches names the digests (pld, ald, tld, pages) in which d differs
// from the header's.
func (d *Digests) Mismatches(h *Header) []string {
	var out []string
	if d.PLD != h.PLD {
		out = append(out, "pld")
	}
	if d.ALD != h.ALD {
		out = append(out, "ald")
	}
	if d.TLD != h.TLD {
		out = append(out, "tld")
	}
	if d.Pages != h.Pages {
		out = append(out, "pages")
	}
	return out
}
