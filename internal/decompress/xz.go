package decompress

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// xzReader reads an .xz file (one stream or several, with stream padding)
// whose blocks use the LZMA2 filter alone, as the kernel's initramfs
// decompressor does. Unlike the xz package's reader it reads each block's
// dictionary size before the dictionary is allocated, and refuses one over
// maxDict: a file of a few hundred bytes can otherwise declare a GiB
// dictionary per block, and the allocations alone take seconds and GBs.
type xzReader struct {
	r       *countReader
	maxDict int64
	tooBig  func(dict int64) error
	check   byte      // the stream's check type
	block   io.Reader // the current block's data, nil between blocks
	sum     hash.Hash // the current block's check
	start   int64     // where the current block's header began
	blocks  int64
	streams int
	err     error
	// The uncompressed size the current block's header states (-1 when
	// it states none) and what came out of the block so far; what came
	// out of all blocks; the dictionaries allocated for them, in all.
	declared, blockOut int64
	out, dicts         int64
	// dictCap, when not 0, bounds the dictionaries allocated: the
	// reader's caller reads no more than that (OpenLimitedHead).
	dictCap int64
}

// countReader counts what is read through it.
type countReader struct {
	br *bufio.Reader
	n  int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.br.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countReader) ReadByte() (byte, error) {
	b, err := c.br.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

var (
	xzFooterMagic = []byte("YZ")
	crc64Table    = crc64.MakeTable(crc64.ECMA)
)

// MaxXZDictPerByte bounds the dictionaries a file's blocks that do not
// state their size may declare, in all, per byte they decompress to
// (beyond XZFreeDicts dictionaries of the largest size): xz
// --block-size=64KiB -6 writes 8 MiB per 64 KiB, 128.
const MaxXZDictPerByte = 256

// XZFreeDicts is how many dictionaries of the largest size a file's blocks
// may declare before MaxXZDictPerByte applies: streams concatenated by cat
// (a segmented initrd, xz -9 a b) each declare the whole dictionary of
// their level, however little they hold, and xz -d reads them all; eight
// of xz -9 (64 MiB each), 64 of the default -6 (8 MiB each). Allocating
// them costs a bomb some 0.2 s, not the 35 s of 2,000.
const XZFreeDicts = 8

func newXZReader(r io.Reader, maxDict int64, tooBig func(int64) error) (*xzReader, error) {
	z := &xzReader{r: &countReader{br: bufio.NewReaderSize(r, 64<<10)}, maxDict: maxDict, tooBig: tooBig}
	if err := z.streamHeader(); err != nil {
		return nil, err
	}
	return z, nil
}

func (z *xzReader) Read(p []byte) (int, error) {
	for z.err == nil {
		if z.block == nil {
			z.err = z.nextBlock()
			continue
		}
		n, err := z.block.Read(p)
		z.sum.Write(p[:n])
		z.blockOut += int64(n)
		z.out += int64(n)
		if z.declared >= 0 && z.blockOut > z.declared {
			err = fmt.Errorf("block %d holds more than the %d bytes its header states", z.blocks, z.declared)
		}
		if err == io.EOF {
			err = z.endBlock()
			z.block = nil
		}
		if err != nil {
			z.err = err
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, z.err
}

// full reads len(p) bytes; the end of the file there is a truncation.
func (z *xzReader) full(p []byte) error {
	if _, err := io.ReadFull(z.r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

func (z *xzReader) streamHeader() error {
	var h [12]byte
	if err := z.full(h[:]); err != nil {
		return err
	}
	if !bytes.Equal(h[:6], magics[XZ]) {
		return errors.New("not an xz stream")
	}
	if crc32.ChecksumIEEE(h[6:8]) != binary.LittleEndian.Uint32(h[8:]) {
		return errors.New("stream header checksum mismatch")
	}
	if h[6] != 0 || h[7] > 0x0f {
		return fmt.Errorf("unsupported stream flags %#x", h[6:8])
	}
	if checkLen(h[7]) < 0 {
		return fmt.Errorf("unsupported check type %#x", h[7])
	}
	z.check = h[7]
	z.blocks = 0
	z.streams++
	return nil
}

// checkLen is the size of a check type's field; -1 for types this reader
// does not verify.
func checkLen(c byte) int {
	switch c {
	case 0x00:
		return 0
	case 0x01:
		return 4
	case 0x04:
		return 8
	case 0x0a:
		return 32
	}
	return -1
}

func (z *xzReader) newSum() hash.Hash {
	switch z.check {
	case 0x01:
		return crc32.NewIEEE()
	case 0x04:
		return crc64.New(crc64Table)
	case 0x0a:
		return sha256.New()
	}
	return nopHash{}
}

// nextBlock reads a block header and starts its data, or reads the index,
// the stream footer and what follows: padding and another stream, or the
// end (io.EOF).
func (z *xzReader) nextBlock() error {
	z.start = z.r.n
	size, err := z.r.ReadByte()
	if err != nil {
		return io.ErrUnexpectedEOF
	}
	if size == 0 {
		return z.indexAndFooter()
	}
	h := make([]byte, (int(size)+1)*4)
	h[0] = size
	if err := z.full(h[1:]); err != nil {
		return err
	}
	body, sum := h[:len(h)-4], binary.LittleEndian.Uint32(h[len(h)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return errors.New("block header checksum mismatch")
	}
	flags := body[1]
	if flags&0x3c != 0 || flags&3 != 0 {
		return fmt.Errorf("block flags %#x: only one filter, LZMA2, is read", flags)
	}
	rest := bytes.NewReader(body[2:])
	z.declared = -1
	for i, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} {
		if present {
			v, err := binary.ReadUvarint(rest)
			if err != nil {
				return fmt.Errorf("block header: %w", err)
			}
			if i == 1 {
				z.declared = int64(min(v, 1<<62))
			}
		}
	}
	id, err1 := binary.ReadUvarint(rest)
	propLen, err2 := binary.ReadUvarint(rest)
	prop, err3 := rest.ReadByte()
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("block header: %w", err)
	}
	if id != 0x21 || propLen != 1 || prop > 40 {
		return fmt.Errorf("filter %#x with %d bytes of properties: only LZMA2 is read", id, propLen)
	}
	for rest.Len() > 0 {
		if b, _ := rest.ReadByte(); b != 0 {
			return errors.New("block header padding is not zero")
		}
	}
	dict := int64(0xffffffff)
	if prop < 40 {
		dict = int64(2|prop&1) << (prop/2 + 11)
	}
	if dict > z.maxDict {
		return z.tooBig(dict)
	}
	// A block starts with an empty dictionary, so one larger than the
	// block is never used: blocks that state their size (xz -T writes
	// them so) get a dictionary of it. Blocks that state none get what
	// they declare, each allocated (and zeroed) whole, so that a file's
	// dictionaries together may not exceed XZFreeDicts of the largest size
	// plus MaxXZDictPerByte times what came out: 2,000 blocks of 4 KiB
	// that declare 64 MiB each (a 184 KB file) took 35 s and 344 MB.
	if z.declared >= 0 {
		dict = min(dict, z.declared)
	}
	if z.dictCap > 0 {
		dict = min(dict, z.dictCap)
	}
	dict = max(dict, lzma.MinDictCap)
	if z.dicts > 0 && z.dicts+dict > XZFreeDicts*z.maxDict+MaxXZDictPerByte*z.out {
		return fmt.Errorf("stream %d, block %d declares a dictionary of %d KiB after %d KiB of dictionaries for %d KiB of data, over %d dictionaries of %d KiB and %d bytes of dictionary per byte: if the file is trusted, decompress it with xz -d and give the plain file, or recompress it with xz -T2 or more (whose blocks state their size) and without a small --block-size", z.streams, z.blocks+1, dict>>10, z.dicts>>10, z.out>>10, XZFreeDicts, z.maxDict>>10, MaxXZDictPerByte)
	}
	z.dicts += dict
	lr, err := lzma.Reader2Config{DictCap: int(dict)}.NewReader2(z.r)
	if err != nil {
		return err
	}
	z.block, z.sum, z.blockOut = lr, z.newSum(), 0
	z.blocks++
	return nil
}

// endBlock reads a block's padding and check.
func (z *xzReader) endBlock() error {
	if z.declared >= 0 && z.blockOut != z.declared {
		return fmt.Errorf("block %d holds %d bytes, its header states %d", z.blocks, z.blockOut, z.declared)
	}
	for (z.r.n-z.start)%4 != 0 {
		b, err := z.r.ReadByte()
		if err != nil {
			return io.ErrUnexpectedEOF
		}
		if b != 0 {
			return errors.New("block padding is not zero")
		}
	}
	want := make([]byte, checkLen(z.check))
	if err := z.full(want); err != nil {
		return err
	}
	got := z.sum.Sum(nil)
	if z.check == 0x01 || z.check == 0x04 { // CRCs are stored little-endian
		for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
			got[i], got[j] = got[j], got[i]
		}
	}
	if !bytes.Equal(got, want) {
		return errors.New("block check mismatch: the data is corrupt")
	}
	return nil
}

// indexAndFooter reads the index (its indicator byte read), the stream
// footer, stream padding and the next stream's header, or the end.
func (z *xzReader) indexAndFooter() error {
	crc := crc32.NewIEEE()
	crc.Write([]byte{0})
	br := &teeByteReader{r: z.r, w: crc}
	records, err := binary.ReadUvarint(br)
	if err != nil {
		return io.ErrUnexpectedEOF
	}
	if records != uint64(z.blocks) {
		return fmt.Errorf("index lists %d blocks, the stream has %d", records, z.blocks)
	}
	for i := uint64(0); i < 2*records; i++ {
		if _, err := binary.ReadUvarint(br); err != nil {
			return io.ErrUnexpectedEOF
		}
	}
	for (z.r.n-z.start)%4 != 0 {
		if b, err := br.ReadByte(); err != nil || b != 0 {
			return errors.New("index padding is not zero")
		}
	}
	var sum [4]byte
	if err := z.full(sum[:]); err != nil {
		return err
	}
	if crc.Sum32() != binary.LittleEndian.Uint32(sum[:]) {
		return errors.New("index checksum mismatch")
	}
	var f [12]byte
	if err := z.full(f[:]); err != nil {
		return err
	}
	if !bytes.Equal(f[10:], xzFooterMagic) || f[8] != 0 || f[9] != z.check || crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f[:4]) {
		return errors.New("bad stream footer")
	}
	// Stream padding (multiples of four zero bytes), then another stream
	// or the end.
	pad := 0
	for {
		b, err := z.r.br.Peek(1)
		if len(b) == 0 {
			if err == io.EOF && pad%4 == 0 {
				return io.EOF
			}
			if err == io.EOF {
				return errors.New("stream padding is not a multiple of 4 bytes")
			}
			return err
		}
		if b[0] != 0 {
			break
		}
		z.r.ReadByte()
		pad++
	}
	if pad%4 != 0 {
		return errors.New("stream padding is not a multiple of 4 bytes")
	}
	return z.streamHeader()
}

// teeByteReader writes what it reads to w.
type teeByteReader struct {
	r io.ByteReader
	w io.Writer
}

func (t *teeByteReader) ReadByte() (byte, error) {
	b, err := t.r.ReadByte()
	if err == nil {
		t.w.Write([]byte{b})
	}
	return b, err
}

// nopHash is the check of type None.
type nopHash struct{}

func (nopHash) Write(p []byte) (int, error) { return len(p), nil }
func (nopHash) Sum(b []byte) []byte         { return b }
func (nopHash) Reset()                      {}
func (nopHash) Size() int                   { return 0 }
func (nopHash) BlockSize() int              { return 1 }
