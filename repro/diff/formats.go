package diff

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"unicode/utf16"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/cocobuild/cocobuild/internal/decompress"
)

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// maxDecompressed bounds what diff decompresses of one artifact into
// memory; an artifact that holds more is compared as bytes, and the
// difference says why.
const maxDecompressed = 4 << 30

// decompressAll undoes gzip, zstd, xz or bzip2, and returns b itself
// otherwise.
func decompressAll(b []byte, limit int64) ([]byte, error) {
	d, _, err := decompress.ReadAll(bytes.NewReader(b), limit)
	return d, err
}

// headLen is how much of an artifact's uncompressed start match looks at
// (a tar header block).
const headLen = 512

// decompressHead decompresses just enough of b to see its magic.
func decompressHead(b []byte) ([]byte, error) {
	r, _, err := decompress.Open(bytes.NewReader(b), maxDecompressed)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	head := make([]byte, headLen)
	n, err := io.ReadFull(r, head)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	return head[:n], err
}

var cpioFormat = format{
	name: "cpio",
	match: func(_ string, b []byte) bool {
		d, err := decompressHead(b)
		return err == nil && bytes.HasPrefix(d, []byte("070701"))
	},
	members: func(b []byte, limit int64) ([]Member, error) {
		d, err := decompressAll(b, limit)
		if err != nil {
			return nil, err
		}
		rr := cpio.Newc.Reader(bytes.NewReader(d))
		var out []Member
		for i := 0; ; i++ {
			rec, err := rr.ReadRecord()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			if rec.Name == "TRAILER!!!" {
				return out, nil
			}
			m := Member{Name: rec.Name, Mode: fmt.Sprintf("%#o", rec.Mode&0o7777), Owner: fmt.Sprintf("%d:%d", rec.UID, rec.GID), Size: int64(rec.FileSize), Order: i}
			var content []byte
			if rec.ReaderAt != nil {
				content, err = io.ReadAll(io.NewSectionReader(rec.ReaderAt, 0, int64(rec.FileSize)))
				if err != nil {
					return nil, err
				}
			}
			switch rec.Mode & 0o170000 {
			case 0o040000:
				m.Type = "dir"
			case 0o120000:
				m.Type, m.Link = "symlink", string(content)
			case 0o100000:
				m.Type, m.Hash = "file", hash(content)
			default:
				m.Type = fmt.Sprintf("special %#o rdev %d:%d", rec.Mode&0o170000, rec.Rmajor, rec.Rminor)
			}
			out = append(out, m)
		}
	},
}

var tarFormat = format{
	name: "tar",
	match: func(name string, b []byte) bool {
		d, err := decompressHead(b)
		return err == nil && len(d) >= 263 && string(d[257:262]) == "ustar" || strings.HasSuffix(name, ".tar") && err == nil
	},
	members: func(b []byte, limit int64) ([]Member, error) {
		d, err := decompressAll(b, limit)
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(bytes.NewReader(d))
		var out []Member
		for i := 0; ; i++ {
			h, err := tr.Next()
			if err == io.EOF {
				return out, nil
			}
			if err != nil {
				return nil, err
			}
			m := Member{Name: h.Name, Mode: fmt.Sprintf("%#o", h.Mode&0o7777), Owner: fmt.Sprintf("%d:%d", h.Uid, h.Gid), Size: h.Size, Link: h.Linkname, Order: i}
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
				c, err := io.ReadAll(tr)
				if err != nil {
					return nil, err
				}
				m.Type, m.Hash = "file", hash(c)
			default:
				m.Type = fmt.Sprintf("type %c", h.Typeflag)
			}
			out = append(out, m)
		}
	},
}

// gptFormat reads a GPT disk image (512-byte sectors): the header (its disk
// GUID and usable sectors) and each partition are members; a partition's
// type GUID, name, unique GUID, attribute bits and first sector are
// compared one by one, and its content is hashed.
var gptFormat = format{
	name: "gpt",
	match: func(_ string, b []byte) bool {
		return len(b) >= 1024 && string(b[512:520]) == "EFI PART"
	},
	members: func(b []byte, limit int64) ([]Member, error) {
		const sector = 512
		h := b[sector : 2*sector]
		entriesLBA := binary.LittleEndian.Uint64(h[72:])
		count := binary.LittleEndian.Uint32(h[80:])
		size := binary.LittleEndian.Uint32(h[84:])
		if size < 128 || size > 4096 || count > 1024 || entriesLBA > uint64(len(b))/sector ||
			entriesLBA*sector+uint64(count)*uint64(size) > uint64(len(b)) {
			return nil, errors.New("GPT partition array out of range")
		}
		out := []Member{{Name: "gpt header", Type: "header", Attrs: []Attr{
			{"disk guid", guid(h[56:72])},
			{"usable sectors", fmt.Sprintf("%d-%d", binary.LittleEndian.Uint64(h[40:]), binary.LittleEndian.Uint64(h[48:]))},
		}}}
		for i := uint32(0); i < count; i++ {
			e := b[entriesLBA*sector+uint64(i)*uint64(size):][:size]
			if bytes.Equal(e[:16], make([]byte, 16)) {
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
			if last >= first && last < uint64(len(b))/sector {
				m.Hash = hash(b[first*sector : (last+1)*sector])
			}
			out = append(out, m)
		}
		return out, nil
	},
}

func guid(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]), binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

// jsonFormat flattens a JSON document into field paths and their values.
var jsonFormat = format{
	name: "json",
	match: func(name string, b []byte) bool {
		return strings.HasSuffix(name, ".json") && json.Valid(b)
	},
	members: func(b []byte, limit int64) ([]Member, error) {
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
	},
}
