// Package decompress is cocobuild's one decompression reader: it recognises
// gzip, zstd, xz and bzip2 streams by their magic numbers and bounds what
// comes out of them. Every caller gives its own limit; a stream that holds
// more fails with ErrTooLarge instead of being cut short. Readers of
// untrusted inputs use OpenLimited, which enforces the limits in force
// (limits.Decompressed and limits.Expansion) and fails with a
// *limits.Error that names the stream and the --limit flag.
package decompress

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/cocobuild/cocobuild/internal/limits"
)

// Format names a compression format.
type Format string

// The formats Sniff recognises. None is a stream that is not compressed
// (or compressed in a format this package does not read).
const (
	None  Format = "none"
	Gzip  Format = "gzip"
	Zstd  Format = "zstd"
	XZ    Format = "xz"
	Bzip2 Format = "bzip2"
)

// Formats lists the compressed formats, in the order Sniff tries them.
var Formats = []Format{Gzip, Zstd, XZ, Bzip2}

// magics are the leading bytes of each format.
var magics = map[Format][]byte{
	Gzip:  {0x1f, 0x8b},
	Zstd:  {0x28, 0xb5, 0x2f, 0xfd},
	XZ:    {0xfd, '7', 'z', 'X', 'Z', 0x00},
	Bzip2: []byte("BZh"),
}

// MagicLen is how many leading bytes Sniff needs to tell every format.
const MagicLen = 6

// ErrTooLarge is what a reader from Open or NewReader returns (wrapped in
// a *TooLargeError) when the stream holds more than its limit.
var ErrTooLarge = errors.New("decompressed stream is larger than its limit")

// TooLargeError says which stream went over which limit.
type TooLargeError struct {
	Format Format
	Limit  int64
}

func (e *TooLargeError) Error() string {
	what := "uncompressed stream"
	if e.Format != None {
		what = string(e.Format) + " stream"
	}
	return fmt.Sprintf("%s holds more than %d bytes (the limit for this use)", what, e.Limit)
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// Sniff tells the format of a stream from its first bytes (MagicLen of
// them tell every format; fewer may say None).
func Sniff(head []byte) Format {
	for _, f := range Formats {
		if bytes.HasPrefix(head, magics[f]) {
			return f
		}
	}
	return None
}

// Open sniffs r's format and returns a reader of its uncompressed bytes
// (r's own bytes when it is not compressed) that fails with ErrTooLarge
// once more than limit bytes would come out.
func Open(r io.Reader, limit int64) (io.ReadCloser, Format, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(MagicLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, None, err
	}
	f := Sniff(head)
	rc, err := NewReader(br, f, limit)
	return rc, f, err
}

// ExpansionFloor is how far a stream must have expanded before
// OpenLimited checks its expansion ratio: small streams of zeros (a sparse
// file system image, padding) compress far better than 100x and are no
// threat.
const ExpansionFloor = 16 << 20

// OpenLimited sniffs r's format like Open and returns a reader of its
// uncompressed bytes bounded by the limits in force in v (nil: the
// defaults): once more than limits.Decompressed bytes would come out, or
// once the output has passed ExpansionFloor and is more than
// limits.Expansion times the compressed bytes consumed so far, it fails
// with a *limits.Error naming "FORMAT stream of WHAT" and the --limit flag
// that raises the limit. Bytes that are not compressed (None) come through
// unbounded: their size is the caller's file limit.
func OpenLimited(r io.Reader, what string, v *limits.Values) (io.ReadCloser, Format, error) {
	return openLimited(r, what, v, 0)
}

// OpenLimitedHead is OpenLimited for a reader of at most the first n
// uncompressed bytes (io.EOF after them), for telling a format from its
// start: an xz block's dictionary is allocated at most n bytes (it is
// never used further), not the 64 MiB an xz -9 header declares, so that
// looking at the start of a stream takes little memory. A dictionary
// over the limits is the same error as OpenLimited's.
func OpenLimitedHead(r io.Reader, what string, v *limits.Values, n int64) (io.ReadCloser, Format, error) {
	rc, f, err := openLimited(r, what, v, max(n, 1))
	if err != nil {
		return nil, f, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(rc, n), rc}, f, nil
}

func openLimited(r io.Reader, what string, v *limits.Values, dictCap int64) (io.ReadCloser, Format, error) {
	in := &counter{r: r}
	br := bufio.NewReaderSize(in, 64<<10)
	head, err := br.Peek(MagicLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, None, err
	}
	f := Sniff(head)
	if f == None {
		return io.NopCloser(br), f, nil
	}
	limit := v.Get(limits.Decompressed)
	var rc io.ReadCloser
	if f == XZ {
		rc, err = newLimitedXZ(br, what, limit, dictCap)
	} else {
		rc, err = NewReader(br, f, limit)
	}
	if err != nil {
		return nil, f, fmt.Errorf("%s: %w", what, err)
	}
	z := rc.(*reader)
	z.lim, z.what, z.in, z.ratio = v, fmt.Sprintf("%s stream of %s", f, what), in, v.Get(limits.Expansion)
	return z, f, nil
}

// MaxXZDict is the largest xz dictionary OpenLimited reads: xz -9 uses
// 64 MiB. A block's dictionary is allocated before anything is decoded,
// so a file of some hundred bytes could otherwise take GBs.
const MaxXZDict = 64 << 20

// newLimitedXZ is NewReader for xz with the dictionary bounded by
// MaxXZDict and by the decompressed limit (a dictionary larger than all
// the output may be is of no use), and allocated at most dictCap bytes
// when it is not 0 (see OpenLimitedHead).
func newLimitedXZ(r io.Reader, what string, limit, dictCap int64) (io.ReadCloser, error) {
	maxDict := min(limit, MaxXZDict)
	x, err := newXZReader(r, maxDict, func(dict int64) error {
		if dict > limit {
			return &limits.Error{What: fmt.Sprintf("xz stream of %s: dictionary", what), Limit: limits.Decompressed, Max: limit, Got: dict}
		}
		return fmt.Errorf("xz stream of %s: a dictionary of %d MiB, over the %d MiB that xz -9 uses: recompress it with xz -9 or less", what, dict>>20, MaxXZDict>>20)
	})
	if err != nil {
		return nil, fmt.Errorf("xz: %w", err)
	}
	x.dictCap = dictCap
	return &reader{r: x, close: func() {}, format: XZ, limit: limit, left: limit}, nil
}

// counter counts the bytes read from a compressed stream.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// NewReader returns a reader of the uncompressed bytes of r, which is in
// format f (known from elsewhere, such as a file name), bounded by limit.
func NewReader(r io.Reader, f Format, limit int64) (io.ReadCloser, error) {
	if limit < 0 {
		return nil, fmt.Errorf("decompress: negative limit %d", limit)
	}
	var zr io.Reader
	closer := func() {}
	switch f {
	case None:
		zr = r
	case Gzip:
		g, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		zr = g
	case Zstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxMemory(limit)))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		zr, closer = d, d.Close
	case XZ:
		x, err := xz.NewReader(bufio.NewReader(r))
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		zr = x
	case Bzip2:
		zr = bzip2.NewReader(r)
	default:
		return nil, fmt.Errorf("decompress: unknown format %q", f)
	}
	return &reader{r: zr, close: closer, format: f, limit: limit, left: limit}, nil
}

// maxMemory bounds what the zstd decoder allocates: a frame that declares
// more content than the limit fails at once (zstd needs at least 1 KiB).
func maxMemory(limit int64) uint64 {
	return uint64(max(limit, 1<<10))
}

// ReadAll reads all of r's uncompressed bytes (sniffing its format),
// bounded by limit, into buffers of a fixed size joined once at the end
// (see readChunks).
func ReadAll(r io.Reader, limit int64) ([]byte, Format, error) {
	rc, f, err := Open(r, limit)
	if err != nil {
		return nil, f, err
	}
	defer rc.Close()
	b, err := readChunks(rc, 0)
	if err != nil {
		return nil, f, err
	}
	return b, f, nil
}

// ReadAllLimited decompresses all of b, an input held in memory (its
// format sniffed; bytes that are not compressed come back as they are),
// within the limits in force in v (the decompressed limit and the
// expansion ratio, as OpenLimited) and within the value of out in force
// (a kernel's limit, say), which bounds the bytes that come out: past it,
// a *limits.Error names what, out and the --limit flag that raises it.
//
// The output is read into one buffer sized from the size the stream
// declares (gzip's ISIZE, a zstd frame's content size), taken only up to
// what the limits allow b to expand to, so that a stream of n bytes takes
// n bytes of memory rather than the 2-3n of a buffer that doubles as it
// grows; a stream that declares nothing, or declares less than it holds,
// is read in chunks joined once (2n at the peak).
func ReadAllLimited(b []byte, what string, v *limits.Values, out limits.Limit) ([]byte, Format, error) {
	rc, f, err := OpenLimited(bytes.NewReader(b), what, v)
	if err != nil {
		return nil, f, err
	}
	defer rc.Close()
	if f == None {
		if err := v.Check(what, out, int64(len(b))); err != nil {
			return nil, f, err
		}
		return b, f, nil
	}
	limit := v.Get(out)
	// At most what b may expand to before the expansion check stops it
	// (the product saturates: the ratio may be raised to anything).
	canExpand := limit
	if ratio := v.Get(limits.Expansion); ratio < math.MaxInt64/max(int64(len(b)), 1) {
		canExpand = max(ExpansionFloor, ratio*int64(len(b)))
	}
	hint := min(declaredSize(b, f), limit, canExpand)
	data, err := readChunks(io.LimitReader(rc, limit+1), hint)
	if err != nil {
		return nil, f, err
	}
	if int64(len(data)) > limit {
		return nil, f, &limits.Error{What: fmt.Sprintf("%s stream of %s", f, what), Limit: out, Max: limit, Got: limit + 1, AtLeast: true}
	}
	return data, f, nil
}

// declaredSize is the uncompressed size a stream held whole in b says it
// has: gzip's ISIZE (the last member's size modulo 4 GiB), the content
// size of a zstd frame that states it; 0 when it states none. It is only a
// hint: nothing checks it before the stream is read.
func declaredSize(b []byte, f Format) int64 {
	switch f {
	case Gzip:
		if len(b) >= 18 {
			return int64(binary.LittleEndian.Uint32(b[len(b)-4:]))
		}
	case Zstd:
		var h zstd.Header
		if h.Decode(b) == nil && h.HasFCS && h.FrameContentSize < 1<<62 {
			return int64(h.FrameContentSize)
		}
	}
	return 0
}

// chunkSize is the size of the buffers readChunks fills.
const chunkSize = 1 << 20

// readChunks reads all of r. With a size hint it reads into one buffer of
// hint+1 bytes and returns it when r ends within it (one allocation, no
// copy); past the hint, or without one, it reads into chunks of chunkSize
// and joins them once: at most twice what r holds, where a buffer that
// doubles as it grows (io.ReadAll) reaches three times.
func readChunks(r io.Reader, hint int64) ([]byte, error) {
	var chunks [][]byte
	total := 0
	if hint > 0 {
		first := make([]byte, hint+1)
		n, err := fill(r, first)
		if err == io.EOF {
			return first[:n:n], nil
		}
		if err != nil {
			return nil, err
		}
		chunks, total = append(chunks, first), n
	}
	for {
		c := make([]byte, chunkSize)
		n, err := fill(r, c)
		if n > 0 {
			chunks, total = append(chunks, c[:n]), total+n
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	all := make([]byte, 0, total)
	for i, c := range chunks {
		all = append(all, c...)
		chunks[i] = nil // the garbage collector may take it while the rest is copied
	}
	return all, nil
}

// fill reads into b until it is full (nil error) or r ends (io.EOF) or
// fails (its error: a truncated stream's io.ErrUnexpectedEOF stays an
// error, where io.ReadFull would make the end of r one too).
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// reader counts what comes out and fails past the limit.
type reader struct {
	r      io.Reader
	close  func()
	format Format
	limit  int64
	left   int64 // bytes that may still come out; -1 once over
	err    error
	// Set by OpenLimited: the limits in force, the stream's name for
	// errors, the compressed bytes consumed and the expansion limit.
	lim   *limits.Values
	what  string
	in    *counter
	ratio int64
}

// tooLarge is the error for a stream that holds more than its limit.
func (z *reader) tooLarge() error {
	if z.in == nil {
		return &TooLargeError{Format: z.format, Limit: z.limit}
	}
	return &limits.Error{What: z.what, Limit: limits.Decompressed, Max: z.limit, Got: z.limit + 1, AtLeast: true}
}

// expanded checks the expansion ratio once the output passed
// ExpansionFloor.
func (z *reader) expanded() error {
	if z.in == nil {
		return nil
	}
	out := z.limit - z.left
	if out <= ExpansionFloor || z.in.n <= 0 || out/z.in.n <= z.ratio {
		return nil
	}
	return &limits.Error{What: z.what, Limit: limits.Expansion, Max: z.ratio, Got: out / z.in.n}
}

func (z *reader) Read(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	// Ask for one byte more than may come out, to tell "exactly the
	// limit" from "more".
	if int64(len(p)) > z.left+1 {
		p = p[:z.left+1]
	}
	n, err := z.r.Read(p)
	if int64(n) > z.left {
		n = int(z.left)
		z.left = 0
		z.err = z.tooLarge()
		return n, z.err
	}
	z.left -= int64(n)
	if e := z.expanded(); e != nil {
		z.err = e
		return n, e
	}
	if err != nil && !errors.Is(err, io.EOF) {
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			// A frame that declares more content, or a larger window,
			// than the limit.
			err = fmt.Errorf("%w: %v", z.tooLarge(), err)
		} else if z.format != None {
			err = fmt.Errorf("%s: %w", z.format, err)
		}
		z.err = err
	}
	return n, err
}

// Close releases the decoder (it does not close the underlying reader).
func (z *reader) Close() error {
	z.close()
	return nil
}
