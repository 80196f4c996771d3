package diff

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/cocobuild/cocobuild/internal/decompress"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/newc"
)

// headLen is how much of an artifact's uncompressed start match looks at
// (a tar header block).
const headLen = 512

// head decompresses just enough of a to see its magic. A stream that is
// not valid says "no match" (nil); only a limit is an error.
func head(a artifact, v *limits.Values) ([]byte, error) {
	r, _, err := decompress.OpenLimitedHead(a.reader(), a.what, v, headLen)
	if err != nil {
		return nil, nil
	}
	defer r.Close()
	b := make([]byte, headLen)
	n, err := io.ReadFull(r, b)
	if errors.Is(err, limits.ErrExceeded) {
		return nil, err
	}
	return b[:n], nil
}

// open decompresses a and returns the stream's name for errors and the
// limit an entry's content is checked against: the decompressed limit in
// a compressed stream, the file limit otherwise.
func open(a artifact, v *limits.Values) (io.ReadCloser, string, limits.Limit, error) {
	r, f, err := decompress.OpenLimited(a.reader(), a.what, v)
	if err != nil {
		return nil, "", limits.Limit{}, err
	}
	if f == decompress.None {
		return r, a.what, limits.File, nil
	}
	return r, fmt.Sprintf("%s stream of %s", f, a.what), limits.Decompressed, nil
}

// failed is an iterator that returns err.
func failed(err error) (memberIter, func()) {
	return func() (Member, bool, error) { return Member{}, false, err }, func() {}
}

// sliceIter returns members already read.
func sliceIter(ms []Member) (memberIter, func()) {
	i := 0
	return func() (Member, bool, error) {
		if i >= len(ms) {
			return Member{}, false, nil
		}
		i++
		return ms[i-1], true, nil
	}, func() {}
}

// hasher hashes member contents with one buffer (io.Copy would allocate
// one per member: 32 KiB for each of 200,000 entries).
type hasher struct {
	buf []byte
}

func newHasher() *hasher { return &hasher{buf: make([]byte, 32<<10)} }

func (hs *hasher) sum(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.CopyBuffer(h, r, hs.buf); err != nil {
		return "", err
	}
	var s [sha256.Size]byte
	return hex.EncodeToString(h.Sum(s[:0])), nil
}

// octal is fmt's %#o of m, without fmt's cost per member.
func octal(m uint64) string {
	if m == 0 {
		return "0"
	}
	return "0" + strconv.FormatUint(m, 8)
}

// owner is uid:gid.
func owner(uid, gid uint64) string {
	return strconv.FormatUint(uid, 10) + ":" + strconv.FormatUint(gid, 10)
}

var cpioFormat = format{
	name: "cpio",
	match: func(_ string, a artifact, v *limits.Values) (bool, error) {
		d, err := head(a, v)
		return err == nil && strings.HasPrefix(string(d), newc.Magic), err
	},
	members: func(a artifact, v *limits.Values) (memberIter, func()) {
		zr, what, content, err := open(a, v)
		if err != nil {
			return failed(err)
		}
		nr := newc.NewReader(zr, what, v, content)
		hs := newHasher()
		i := 0
		return func() (Member, bool, error) {
			h, err := nr.Next()
			if err == io.EOF {
				return Member{}, false, nil
			}
			if err != nil {
				return Member{}, false, err
			}
			m := Member{Name: h.Name, Mode: octal(h.Mode & 0o7777), Owner: owner(h.UID, h.GID), Size: h.Size, Order: i}
			i++
			switch h.Mode & newc.TypeMask {
			case newc.TypeDir:
				m.Type = "dir"
			case newc.TypeLink:
				target, err := io.ReadAll(nr) // within the name limit
				if err != nil {
					return Member{}, false, err
				}
				m.Type, m.Link = "symlink", string(target)
			case newc.TypeReg:
				sum, err := hs.sum(nr)
				if err != nil {
					return Member{}, false, err
				}
				m.Type, m.Hash = "file", sum
			default:
				m.Type = fmt.Sprintf("special %#o rdev %d:%d", h.Mode&newc.TypeMask, h.Rmajor, h.Rminor)
			}
			return m, true, nil
		}, func() { zr.Close() }
	},
}

var tarFormat = format{
	name: "tar",
	match: func(name string, a artifact, v *limits.Values) (bool, error) {
		d, err := head(a, v)
		if err != nil {
			return false, err
		}
		return len(d) >= 263 && string(d[257:262]) == "ustar" || strings.HasSuffix(name, ".tar"), nil
	},
	members: func(a artifact, v *limits.Values) (memberIter, func()) {
		zr, what, content, err := open(a, v)
		if err != nil {
			return failed(err)
		}
		tr := tar.NewReader(zr)
		hs := newHasher()
		i := 0
		return func() (Member, bool, error) {
			h, err := tr.Next()
			if err == io.EOF {
				return Member{}, false, nil
			}
			if err != nil {
				return Member{}, false, err
			}
			if err := v.Check(what, limits.Entries, int64(i+1)); err != nil {
				return Member{}, false, err
			}
			for _, c := range []struct {
				what string
				l    limits.Limit
				n    int64
			}{{"name", limits.NameLen, int64(len(h.Name))}, {"link target", limits.NameLen, int64(len(h.Linkname))}, {"content", content, h.Size}} {
				if v.Check("", c.l, c.n) != nil {
					return Member{}, false, v.Check(fmt.Sprintf("%s: entry %d: %s", what, i, c.what), c.l, c.n)
				}
			}
			m := Member{Name: h.Name, Mode: octal(uint64(h.Mode) & 0o7777), Owner: owner(uint64(h.Uid), uint64(h.Gid)), Size: h.Size, Link: h.Linkname, Order: i}
			i++
			if !h.ModTime.IsZero() {
				m.Mode += " mtime " + fmt.Sprint(h.ModTime.Unix())
			}
			switch h.Typeflag {
			case tar.TypeDir:
				m.Type = "dir"
			case tar.TypeSymlink:
				m.Type = "symlink"
			case tar.TypeLink:
				m.Type = "hardlink"
			case tar.TypeReg:
				sum, err := hs.sum(tr)
				if err != nil {
					return Member{}, false, err
				}
				m.Type, m.Hash = "file", sum
			default:
				m.Type = fmt.Sprintf("type %c", h.Typeflag)
			}
			return m, true, nil
		}, func() { zr.Close() }
	},
}

// gptFormat reads a GPT disk image (512-byte sectors): the header (its disk
// GUID and usable sectors) and each partition are members; a partition's
// type GUID, name, unique GUID, attribute bits and first sector are
// compared one by one, and its content is hashed as it is read.
var gptFormat = format{
	name: "gpt",
	match: func(_ string, a artifact, _ *limits.Values) (bool, error) {
		sig := make([]byte, 8)
		n, _ := a.r.ReadAt(sig, 512)
		return a.r.Size() >= 1024 && n == 8 && string(sig) == "EFI PART", nil
	},
	members: func(a artifact, _ *limits.Values) (memberIter, func()) {
		ms, err := gptMembers(a.r, true)
		if err != nil {
			return failed(err)
		}
		return sliceIter(ms)
	},
}

// gptMembers reads the header and the partitions, and hashes each
// partition's content when hash is set.
func gptMembers(r *io.SectionReader, hash bool) ([]Member, error) {
	const sector = 512
	h := make([]byte, sector)
	if _, err := r.ReadAt(h, sector); err != nil {
		return nil, err
	}
	sectors := uint64(r.Size()) / sector
	entriesLBA := binary.LittleEndian.Uint64(h[72:])
	count := binary.LittleEndian.Uint32(h[80:])
	size := binary.LittleEndian.Uint32(h[84:])
	if size < 128 || size > 4096 || count > 1024 || entriesLBA > sectors ||
		entriesLBA*sector+uint64(count)*uint64(size) > uint64(r.Size()) {
		return nil, errors.New("GPT partition array out of range")
	}
	array := make([]byte, int(count)*int(size))
	if _, err := r.ReadAt(array, int64(entriesLBA*sector)); err != nil {
		return nil, err
	}
	out := []Member{{Name: "gpt header", Type: "header", Attrs: []Attr{
		{"disk guid", guid(h[56:72])},
		{"usable sectors", fmt.Sprintf("%d-%d", binary.LittleEndian.Uint64(h[40:]), binary.LittleEndian.Uint64(h[48:]))},
	}}}
	for i := uint32(0); i < count; i++ {
		e := array[i*size:][:size]
		if string(e[:16]) == string(make([]byte, 16)) {
			continue
		}
		first, last := binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:])
		u16 := make([]uint16, 36)
		for j := range u16 {
			u16[j] = binary.LittleEndian.Uint16(e[56+2*j:])
		}
		name := strings.TrimRight(string(utf16.Decode(u16)), "\x00")
		// Partitions are matched by number; the name is shown and compared.
		m := Member{Name: fmt.Sprintf("partition %d", i+1), Label: fmt.Sprintf("partition %d (%s)", i+1, name),
			Type: "partition type " + guid(e[:16]), Order: int(i), Attrs: []Attr{
				{"name", name},
				{"unique guid", guid(e[16:32])},
				{"attributes", fmt.Sprintf("%#x", binary.LittleEndian.Uint64(e[48:]))},
				{"first sector", fmt.Sprint(first)},
			}}
		if last >= first {
			m.Size = int64(last-first+1) * sector
		}
		if hash && last >= first && last < sectors {
			sum, err := newHasher().sum(io.NewSectionReader(r, int64(first*sector), int64((last-first+1)*sector)))
			if err != nil {
				return nil, err
			}
			m.Hash = sum
		}
		out = append(out, m)
	}
	return out, nil
}

func guid(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]), binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

// readDocument reads a whole JSON document within the document limit;
// a larger one is not read as JSON (nil).
func readDocument(a artifact, v *limits.Values) ([]byte, error) {
	if v.Check(a.what, limits.Document, a.r.Size()) != nil {
		return nil, nil
	}
	b := make([]byte, a.r.Size())
	if _, err := a.r.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}

// jsonFormat flattens a JSON document (within the document limit) into
// field paths and their values.
var jsonFormat = format{
	name: "json",
	match: func(name string, a artifact, v *limits.Values) (bool, error) {
		if !strings.HasSuffix(name, ".json") {
			return false, nil
		}
		b, err := readDocument(a, v)
		return err == nil && b != nil && json.Valid(b), err
	},
	members: func(a artifact, v *limits.Values) (memberIter, func()) {
		b, err := readDocument(a, v)
		if err != nil {
			return failed(err)
		}
		ms, err := jsonMembers(b)
		if err != nil {
			return failed(err)
		}
		return sliceIter(ms)
	},
}

func jsonMembers(b []byte) ([]Member, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	var out []Member
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(path.Join(p, k), x[k])
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", p, i), e)
			}
		default:
			enc, _ := json.Marshal(x)
			out = append(out, Member{Name: p, Type: "value", Hash: string(enc), Order: len(out)})
		}
	}
	walk("", v)
	return out, nil
}
