package initramfs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"

	"github.com/cocobuild/cocobuild/internal/decompress"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/newc"
	"github.com/cocobuild/cocobuild/internal/termsafe"
)

// entry is one file of the archive being assembled.
type entry struct {
	name   string // relative, cleaned, no leading slash
	mode   uint64 // type and permission bits
	data   []byte // content of a regular file, target of a symbolic link
	rmajor uint64 // device numbers of a device node
	rminor uint64
	uid    uint64 // owner, 0:0 unless the recipe's entry says
	gid    uint64
	origin string // what put it there, for error messages
}

// tree is the archive being assembled: entries by name.
type tree struct {
	entries map[string]*entry
}

func newTree() *tree { return &tree{entries: map[string]*entry{}} }

// cleanName turns a path inside the archive ("/etc/hostname") into its
// archive name ("etc/hostname"), refusing names that escape the root.
func cleanName(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("path %q contains ..", p)
		}
	}
	c := strings.TrimPrefix(path.Clean("/"+p), "/")
	if c == "" {
		return "", fmt.Errorf("path %q is the root", p)
	}
	if strings.ContainsRune(c, 0) {
		return "", fmt.Errorf("path %q contains a NUL byte", p)
	}
	return c, nil
}

// add puts e into the tree; replace says it may replace an entry already
// there (otherwise two entries with one name are an error).
func (t *tree) add(e *entry, replace bool) error {
	if old, ok := t.entries[e.name]; ok && !replace {
		if old.mode&newc.TypeMask == newc.TypeDir && e.mode&newc.TypeMask == newc.TypeDir {
			old.mode = e.mode
			return nil
		}
		return fmt.Errorf("/%s is given twice: by %s and by %s", e.name, old.origin, e.origin)
	}
	t.entries[e.name] = e
	return nil
}

// records returns the archive's records sorted by name, with every parent
// directory present (mode 0755 unless given), owned by 0:0 unless the
// recipe's entry says otherwise, mtimes set to epoch and inode numbers in
// order.
func (t *tree) records(epoch int64) ([]cpio.Record, error) {
	for name := range t.entries {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if p, ok := t.entries[d]; ok {
				if p.mode&newc.TypeMask != newc.TypeDir {
					return nil, fmt.Errorf("/%s (from %s) is inside /%s, which is not a directory (from %s)", name, t.entries[name].origin, d, p.origin)
				}
				continue
			}
			t.entries[d] = &entry{name: d, mode: newc.TypeDir | 0o755, origin: "a parent directory"}
		}
	}
	names := make([]string, 0, len(t.entries))
	for n := range t.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	recs := make([]cpio.Record, 0, len(names))
	for i, n := range names {
		e := t.entries[n]
		info := cpio.Info{Ino: uint64(i + 1), Mode: e.mode, UID: e.uid, GID: e.gid, NLink: 1, MTime: uint64(epoch), Name: n,
			Rmajor: e.rmajor, Rminor: e.rminor}
		if e.mode&newc.TypeMask == newc.TypeDir {
			info.NLink = 2
		}
		r := cpio.Record{Info: info}
		if t := e.mode & newc.TypeMask; t == newc.TypeReg || t == newc.TypeLink {
			r.ReaderAt = bytes.NewReader(e.data)
			r.FileSize = uint64(len(e.data))
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// writeCPIO writes the tree as a newc archive with its trailer.
func (t *tree) writeCPIO(w io.Writer, epoch int64) error {
	recs, err := t.records(epoch)
	if err != nil {
		return err
	}
	rw := cpio.Newc.Writer(w)
	if err := cpio.WriteRecords(rw, recs); err != nil {
		return err
	}
	return cpio.WriteTrailer(rw)
}

// Compressions lists the compressions an image may have.
var Compressions = []string{"none", "gzip", "zstd", "xz"}

// extension is the file name suffix of a compression.
func extension(c string) string {
	switch c {
	case "gzip":
		return ".gz"
	case "zstd":
		return ".zst"
	case "xz":
		return ".xz"
	}
	return ""
}

// compress writes b to w compressed the way the kernel's initramfs
// decompressors read it, deterministically (one thread, fixed settings,
// no names or times in headers).
func compress(w io.Writer, b []byte, c string) error {
	switch c {
	case "none":
		_, err := w.Write(b)
		return err
	case "gzip":
		zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
		if err != nil {
			return err
		}
		if _, err := zw.Write(b); err != nil {
			return err
		}
		return zw.Close()
	case "zstd":
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedBestCompression),
			zstd.WithWindowSize(1<<23), zstd.WithEncoderCRC(true), zstd.WithZeroFrames(true))
		if err != nil {
			return err
		}
		if _, err := zw.Write(b); err != nil {
			zw.Close()
			return err
		}
		return zw.Close()
	case "xz":
		// The kernel's XZ decoder wants CRC32 (or no) checks and no
		// filters beyond LZMA2 (Documentation/staging/xz.rst).
		zw, err := xz.WriterConfig{CheckSum: xz.CRC32, DictCap: 1 << 20}.NewWriter(w)
		if err != nil {
			return err
		}
		if _, err := zw.Write(b); err != nil {
			return err
		}
		return zw.Close()
	}
	return fmt.Errorf("unknown compression %q (want one of %s)", c, strings.Join(Compressions, ", "))
}

// Entry is one file of an initramfs, as Inspect lists it.
type Entry struct {
	Name  string `json:"name"`
	Type  string `json:"type"` // file, dir, symlink, char, block, fifo, socket
	Mode  string `json:"mode"` // permission bits, octal, e.g. "0755"
	UID   uint64 `json:"uid"`
	GID   uint64 `json:"gid"`
	Size  uint64 `json:"size"`
	MTime uint64 `json:"mtime"`
	// SHA256 is the digest of a regular file's content.
	SHA256 string `json:"sha256,omitempty"`
	// Link is a symbolic link's target.
	Link string `json:"link,omitempty"`
	// Major and Minor are a device node's numbers.
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
}

// Listing is what Inspect finds in an initramfs.
type Listing struct {
	// Compression of each archive segment, in order (an initramfs may be
	// several archives one after another, e.g. microcode then the rest).
	Segments []string `json:"segments"`
	Entries  []Entry  `json:"entries"`
}

// compressionOf recognises a newc archive ("none") or a compressed
// stream by its magic number; "" is neither.
func compressionOf(b []byte) string {
	if bytes.HasPrefix(b, []byte(newc.Magic)) || bytes.HasPrefix(b, []byte(newc.MagicCRC)) {
		return "none"
	}
	if f := decompress.Sniff(b); f != decompress.None {
		return string(f)
	}
	return ""
}

// Inspect lists the entries of an initramfs held in memory, with the
// default limits (see InspectReader).
func Inspect(b []byte) (*Listing, error) { return InspectReader(bytes.NewReader(b), "initramfs", nil) }

// InspectReader lists the entries of an initramfs read from r (named what
// in errors): uncompressed newc archives (possibly several, one after
// another) optionally followed by one gzip-, zstd-, xz- or
// bzip2-compressed part holding more archives, the way the kernel unpacks
// them. It reads r once, as a stream, and holds no entry's content: files
// are hashed as they are read. The limits in force in v (nil: the
// defaults) bound it: each header's name and size are checked before they
// are read (limits.NameLen, limits.Initrd, limits.Decompressed), the
// number of entries (limits.Entries) and what the compressed part expands
// to (limits.Decompressed, limits.Expansion); going over one is a
// *limits.Error that names the flag that raises it.
func InspectReader(r io.Reader, what string, v *limits.Values) (*Listing, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	l := &Listing{Entries: []Entry{}}
	if err := skipZeros(br); err != nil {
		return nil, err
	}
	head, err := br.Peek(decompress.MagicLen)
	if len(head) == 0 {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return nil, errors.New("empty file")
	}
	if compressionOf(head) == "none" {
		nr := newc.NewReader(br, what, v, limits.Initrd)
		if err := listArchives(nr, l); err != nil {
			return nil, err
		}
		for range nr.Archives() {
			l.Segments = append(l.Segments, "none")
		}
		head, _ = br.Peek(decompress.MagicLen)
		if len(head) == 0 {
			return l, nil
		}
	}
	c := compressionOf(head)
	if c == "" || c == "none" {
		return nil, fmt.Errorf("not a cpio archive or a compressed one (starts with % x)", head)
	}
	zr, f, err := decompress.OpenLimited(br, what, v)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	zbr := bufio.NewReaderSize(zr, 64<<10)
	nr := newc.NewReader(zbr, fmt.Sprintf("%s stream of %s", f, what), v, limits.Decompressed)
	if err := listArchives(nr, l); err != nil {
		if errors.Is(err, limits.ErrExceeded) {
			return nil, err // it names the stream
		}
		return nil, fmt.Errorf("inside the %s part: %w", c, err)
	}
	if rest, _ := zbr.Peek(decompress.MagicLen); len(rest) > 0 {
		return nil, fmt.Errorf("inside the %s part: what follows the archives at offset %d is not a cpio archive (starts with % x)", c, nr.Offset(), rest)
	}
	for range nr.Archives() {
		l.Segments = append(l.Segments, c)
	}
	return l, nil
}

// skipZeros skips zero padding at the start of br.
func skipZeros(br *bufio.Reader) error {
	for {
		b, err := br.Peek(1)
		if len(b) == 0 {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		buf, _ := br.Peek(br.Buffered())
		n := 0
		for n < len(buf) && buf[n] == 0 {
			n++
		}
		if n == 0 {
			return nil
		}
		br.Discard(n)
	}
}

// listArchives appends the entries of nr's archives to l, hashing each
// file's content as it streams by.
func listArchives(nr *newc.Reader, l *Listing) error {
	buf := make([]byte, 32<<10) // one copy buffer for every entry
	for {
		h, err := nr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		e := Entry{Name: h.Name, Mode: fmt.Sprintf("%04o", h.Mode&0o7777), UID: h.UID, GID: h.GID, Size: uint64(h.Size), MTime: h.MTime}
		switch h.Mode & newc.TypeMask {
		case newc.TypeReg:
			e.Type = "file"
			sum := sha256.New()
			if _, err := io.CopyBuffer(sum, nr, buf); err != nil {
				return err
			}
			e.SHA256 = hex.EncodeToString(sum.Sum(nil))
		case newc.TypeDir:
			e.Type = "dir"
		case newc.TypeLink:
			e.Type = "symlink"
			target, err := io.ReadAll(nr) // its size is checked against the name limit
			if err != nil {
				return err
			}
			e.Link = string(target)
		case newc.TypeChr, newc.TypeBlk:
			e.Type = map[uint64]string{newc.TypeChr: "char", newc.TypeBlk: "block"}[h.Mode&newc.TypeMask]
			e.Major, e.Minor = h.Rmajor, h.Rminor
		case newc.TypeFIFO:
			e.Type = "fifo"
		case newc.TypeSock:
			e.Type = "socket"
		default:
			return fmt.Errorf("%s: unknown file type in mode %#o", h.Name, h.Mode)
		}
		l.Entries = append(l.Entries, e)
	}
}

// modeString renders an entry's type and permissions like ls -l.
func (e Entry) modeString() string {
	var m fs.FileMode
	switch e.Type {
	case "dir":
		m = fs.ModeDir
	case "symlink":
		m = fs.ModeSymlink
	case "char":
		m = fs.ModeDevice | fs.ModeCharDevice
	case "block":
		m = fs.ModeDevice
	case "fifo":
		m = fs.ModeNamedPipe
	case "socket":
		m = fs.ModeSocket
	}
	var perm uint64
	fmt.Sscanf(e.Mode, "%o", &perm)
	m |= fs.FileMode(perm & 0o777)
	if perm&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if perm&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if perm&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m.String()
}

// WriteText prints a listing as one line per entry: mode, uid/gid, size,
// sha256 (or - ), name (with -> target for links, major,minor for devices).
// Names and link targets come from the archive: they are escaped with
// termsafe.Escape, so that an entry cannot drive the terminal (JSON keeps
// them exact).
func (l *Listing) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# %d entries; archives: %s\n", len(l.Entries), strings.Join(l.Segments, ", "))
	for _, e := range l.Entries {
		sum := e.SHA256
		if sum == "" {
			sum = "-"
		}
		name := termsafe.Escape(e.Name)
		switch e.Type {
		case "symlink":
			name += " -> " + termsafe.Escape(e.Link)
		case "char", "block":
			name += fmt.Sprintf(" (%d,%d)", e.Major, e.Minor)
		}
		fmt.Fprintf(bw, "%s %d/%d %9d %-64s %s\n", e.modeString(), e.UID, e.GID, e.Size, sum, name)
	}
	return bw.Flush()
}

// readCPIO reads every record of a newc archive (up to its trailer).
func readCPIO(f *os.File) ([]cpio.Record, error) {
	return cpio.ReadAllRecords(cpio.Newc.Reader(f))
}
