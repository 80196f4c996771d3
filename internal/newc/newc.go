// Package newc reads newc ("070701") cpio archives as a stream, one entry
// at a time, the way the kernel unpacks an initramfs: several archives may
// follow one another, separated by zero padding. Every header is checked
// against the limits in force before anything it declares is allocated or
// read: the name's length (limits.NameLen), the content's size (the
// caller's limit: limits.Decompressed inside a compressed stream, the file
// limit otherwise; a symbolic link's target is a name) and the number of
// entries (limits.Entries). Content is never held in memory: the caller
// reads it through the Reader, as with archive/tar.
package newc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/cocobuild/cocobuild/internal/limits"
)

// HeaderLen is the size of a newc header.
const HeaderLen = 110

// Magic starts every newc header; MagicCRC starts the variant with
// checksums, which is not read.
const (
	Magic    = "070701"
	MagicCRC = "070702"
)

// Trailer is the name of the entry that ends an archive.
const Trailer = "TRAILER!!!"

// File types in Mode.
const (
	TypeMask = 0o170000
	TypeReg  = 0o100000
	TypeDir  = 0o040000
	TypeLink = 0o120000
	TypeChr  = 0o020000
	TypeBlk  = 0o060000
	TypeFIFO = 0o010000
	TypeSock = 0o140000
)

// Header is one entry's header.
type Header struct {
	Name   string
	Ino    uint64
	Mode   uint64 // type and permission bits
	UID    uint64
	GID    uint64
	NLink  uint64
	MTime  uint64
	Size   int64 // of the content: a file's bytes, a symbolic link's target
	Major  uint64
	Minor  uint64
	Rmajor uint64 // a device node's numbers
	Rminor uint64
	Offset int64 // of the header in the stream
}

// Reader reads the entries of newc archives from a stream.
type Reader struct {
	br      *bufio.Reader
	what    string
	v       *limits.Values
	content limits.Limit
	off     int64 // bytes consumed from br
	left    int64 // content of the current entry not read yet
	pad     int64 // padding after the current entry's content
	in      bool  // inside an archive (after its first header, before its trailer)
	entries int64
	arch    int
	err     error
}

// NewReader reads archives from r, named what in errors, with the limits
// in force in v (nil: the defaults); content is the limit an entry's size
// is checked against. When r is a *bufio.Reader it is read directly, so
// that after Next returns io.EOF the caller can look at what follows the
// archives (a compressed part of an initramfs, say).
func NewReader(r io.Reader, what string, v *limits.Values, content limits.Limit) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Reader{br: br, what: what, v: v, content: content}
}

// Archives is how many archives (trailers) have been read.
func (r *Reader) Archives() int { return r.arch }

// Offset is how many bytes of the stream have been consumed.
func (r *Reader) Offset() int64 { return r.off }

// Next skips what is left of the current entry and returns the next
// entry's header. At the end of the stream, or when what follows the
// last archive's trailer and zero padding is not another archive, it
// returns io.EOF (the bytes that follow stay unread); a stream that does
// not start with an archive, or ends inside one, is an error.
func (r *Reader) Next() (*Header, error) {
	if r.err != nil {
		return nil, r.err
	}
	h, err := r.next()
	if err != nil {
		r.err = err
	}
	return h, err
}

func (r *Reader) next() (*Header, error) {
	if err := r.discard(r.left + r.pad); err != nil {
		return nil, r.truncated(err)
	}
	r.left, r.pad = 0, 0
	for {
		if !r.in {
			if err := r.skipZeros(); err != nil {
				return nil, err
			}
			head, err := r.br.Peek(len(Magic))
			switch {
			case len(head) == 0 && errors.Is(err, io.EOF):
				if r.arch == 0 {
					return nil, fmt.Errorf("%s: no cpio archive", r.what)
				}
				return nil, io.EOF
			case string(head) == MagicCRC:
				return nil, fmt.Errorf("%s at offset %d: cpio format 070702 (newc with checksums) is not supported", r.what, r.off)
			case string(head) != Magic:
				if r.arch == 0 {
					return nil, fmt.Errorf("%s: not a newc cpio archive (starts with % x)", r.what, head)
				}
				return nil, io.EOF
			}
			if r.off%4 != 0 {
				return nil, fmt.Errorf("%s: archive at offset %d is not 4-byte aligned", r.what, r.off)
			}
			r.in = true
		}
		h, err := r.header()
		if err != nil {
			return nil, err
		}
		if h.Name == Trailer {
			r.in = false
			r.arch++
			if err := r.discard(r.left + r.pad); err != nil {
				return nil, r.truncated(err)
			}
			r.left, r.pad = 0, 0
			continue
		}
		r.entries++
		if err := r.v.Check(r.what, limits.Entries, r.entries); err != nil {
			var le *limits.Error
			if errors.As(err, &le) {
				le.AtLeast = true
			}
			return nil, err
		}
		return h, nil
	}
}

// header reads and checks one header and the name after it.
func (r *Reader) header() (*Header, error) {
	start := r.off
	var raw [HeaderLen]byte
	if n, err := io.ReadFull(r.br, raw[:]); err != nil {
		if n == 0 && err == io.EOF {
			return nil, fmt.Errorf("%s: archive ends at offset %d without a %s record (truncated)", r.what, r.off, Trailer)
		}
		return nil, r.truncated(err)
	}
	r.off += HeaderLen
	f, err := ParseHeader(raw[:])
	if err != nil {
		return nil, fmt.Errorf("%s: header at offset %d: %w", r.what, start, err)
	}
	h, nameSize := f.Header, f.NameSize
	h.Offset = start
	at := fmt.Sprintf("%s: entry at offset %d", r.what, start)
	if err := CheckHeader(at, r.v, f, r.content); err != nil {
		return nil, err
	}
	name := make([]byte, nameSize)
	if _, err := io.ReadFull(r.br, name); err != nil {
		return nil, r.truncated(err)
	}
	r.off += int64(nameSize)
	if name[nameSize-1] != 0 || bytes.IndexByte(name[:nameSize-1], 0) >= 0 {
		return nil, fmt.Errorf("%s: name %q is not one NUL-terminated string", at, name)
	}
	h.Name = string(name[:nameSize-1])
	if err := r.discard(pad4(r.off)); err != nil {
		return nil, r.truncated(err)
	}
	r.left, r.pad = h.Size, pad4(r.off+h.Size)
	return &h, nil
}

// Fields is a parsed header before its name is read.
type Fields struct {
	Header
	NameSize uint64 // with the terminating NUL
}

// ParseHeader parses a header's 110 bytes (magic 070701, thirteen fields
// of eight hex digits).
func ParseHeader(raw []byte) (Fields, error) {
	var f Fields
	if len(raw) < HeaderLen {
		return f, fmt.Errorf("header of %d bytes, want %d", len(raw), HeaderLen)
	}
	if string(raw[:6]) != Magic {
		return f, fmt.Errorf("magic %q, want %q (newc)", raw[:6], Magic)
	}
	var v [13]uint64
	for i := range v {
		for _, c := range raw[6+8*i : 14+8*i] {
			var d byte
			switch {
			case c >= '0' && c <= '9':
				d = c - '0'
			case c >= 'a' && c <= 'f':
				d = c - 'a' + 10
			case c >= 'A' && c <= 'F':
				d = c - 'A' + 10
			default:
				return f, fmt.Errorf("field %d is %q: want 8 hex digits", i, raw[6+8*i:14+8*i])
			}
			v[i] = v[i]<<4 | uint64(d)
		}
	}
	f.Header = Header{Ino: v[0], Mode: v[1], UID: v[2], GID: v[3], NLink: v[4], MTime: v[5], Size: int64(v[6]),
		Major: v[7], Minor: v[8], Rmajor: v[9], Rminor: v[10]}
	f.NameSize = v[11]
	return f, nil
}

// CheckHeader checks what a parsed header declares against the limits in
// force, before anything is allocated for it: the name's length, and the
// content's size against content (a symbolic link's target against the
// name limit, since readers hold it in memory). at names the entry.
func CheckHeader(at string, v *limits.Values, f Fields, content limits.Limit) error {
	if f.NameSize == 0 {
		return fmt.Errorf("%s: name size 0 (a name has at least its NUL)", at)
	}
	if err := v.Check(at+": name", limits.NameLen, int64(min(f.NameSize-1, 1<<40))); err != nil {
		return err
	}
	if f.Mode&TypeMask == TypeLink {
		return v.Check(at+": symbolic link target", limits.NameLen, f.Size)
	}
	return v.Check(at+": content", content, f.Size)
}

// Read reads the current entry's content.
func (r *Reader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.br.Read(p)
	r.left -= int64(n)
	r.off += int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, r.truncated(err)
	}
	return n, nil
}

// discard skips n bytes.
func (r *Reader) discard(n int64) error {
	for n > 0 {
		k, err := r.br.Discard(int(min(n, 1<<30)))
		r.off += int64(k)
		n -= int64(k)
		if err != nil {
			return err
		}
	}
	return nil
}

// skipZeros skips the zero padding between archives.
func (r *Reader) skipZeros() error {
	for {
		b, err := r.br.Peek(1)
		if len(b) == 0 {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		buf, _ := r.br.Peek(r.br.Buffered())
		n := 0
		for n < len(buf) && buf[n] == 0 {
			n++
		}
		if n == 0 {
			return nil
		}
		r.br.Discard(n)
		r.off += int64(n)
	}
}

// truncated says where the stream ended early; limit errors of the
// stream below pass unchanged.
func (r *Reader) truncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%s: ends inside an entry at offset %d (truncated)", r.what, r.off)
	}
	return err
}

func pad4(off int64) int64 { return (4 - off%4) % 4 }
