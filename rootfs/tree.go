package rootfs

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cocobuild/cocobuild/recipes/entries"
)

// Type is the kind of a file-system entry.
type Type uint8

// Entry types.
const (
	TypeDir Type = iota + 1
	TypeReg
	TypeSymlink
	TypeChar
	TypeBlock
	TypeFIFO
)

func (t Type) String() string {
	switch t {
	case TypeDir:
		return "directory"
	case TypeReg:
		return "file"
	case TypeSymlink:
		return "symlink"
	case TypeChar:
		return "character device"
	case TypeBlock:
		return "block device"
	case TypeFIFO:
		return "fifo"
	}
	return "type " + strconv.Itoa(int(t))
}

// Entry is one file, directory, link or device of a tree.
type Entry struct {
	Path         string // slash-separated, relative to the root, clean; "" is the root
	Type         Type
	Mode         uint32 // permission bits with setuid, setgid and sticky (07777)
	UID, GID     int
	MTime        int64  // seconds since 1970
	Link         string // symlink target
	Major, Minor uint32 // devices
	data         *blob  // regular files
}

// Size is the size of a regular file.
func (e *Entry) Size() int64 {
	if e.data == nil {
		return 0
	}
	return e.data.size
}

// blob is the content of a regular file, spooled to disk. Entries that
// share a blob are hard links of one another.
type blob struct {
	id   int
	path string // file holding the bytes
	size int64
}

// Tree is a root file system being assembled: entries by path, their
// contents spooled below a work directory. Later additions replace earlier
// ones at the same path, as layers and overlays do.
type Tree struct {
	entries map[string]*Entry
	spool   string
	nextID  int
	epoch   int64
}

// NewTree starts a tree holding only its root directory (0755, root,
// mtime epoch). Contents are spooled below spool, which must exist.
func NewTree(spool string, epoch int64) *Tree {
	t := &Tree{entries: map[string]*Entry{}, spool: spool, epoch: epoch}
	t.entries[""] = &Entry{Path: "", Type: TypeDir, Mode: 0o755, MTime: epoch}
	return t
}

// EscapeError reports an archive entry or link that would leave the root.
type EscapeError struct {
	Source string // where the entry comes from, e.g. "tar input.base"
	Entry  string // the entry's name as written
	Detail string
}

func (e *EscapeError) Error() string {
	return fmt.Sprintf("%s: entry %q %s: entries must stay inside the root file system", e.Source, e.Entry, e.Detail)
}

// CleanName turns an archive entry name into a tree path. Leading slashes
// and "./" are dropped (names are relative to the root, as tar takes them);
// a name that leaves the root through ".." is an *EscapeError.
func CleanName(source, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%s: an entry has an empty name", source)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%s: entry %q has a NUL byte in its name", source, name)
	}
	p := path.Clean("/" + name)
	if p == "/" {
		// "/", "." and "./" are the root, but "/.." and friends are not:
		// compare the relative form to catch names that climb out.
		if rel := path.Clean(strings.TrimLeft(name, "/")); rel == ".." || strings.HasPrefix(rel, "../") {
			return "", &EscapeError{Source: source, Entry: name, Detail: "climbs out of the root with ../"}
		}
		return "", nil
	}
	if rel := path.Clean(strings.TrimLeft(name, "/")); rel == ".." || strings.HasPrefix(rel, "../") {
		return "", &EscapeError{Source: source, Entry: name, Detail: "climbs out of the root with ../"}
	}
	return strings.TrimPrefix(p, "/"), nil
}

// checkSymlink rejects a relative symlink target that, resolved from the
// link's directory, leaves the root. Absolute targets are resolved in the
// image's own root when it is mounted, so they cannot leave it.
func checkSymlink(source, name, p, target string) error {
	if target == "" {
		return fmt.Errorf("%s: symlink %q has an empty target", source, name)
	}
	if strings.IndexByte(target, 0) >= 0 {
		return fmt.Errorf("%s: symlink %q has a NUL byte in its target", source, name)
	}
	if entries.ResolvesOutside(p, target) {
		return &EscapeError{Source: source, Entry: name, Detail: fmt.Sprintf("is a symlink to %q, which resolves outside the root", target)}
	}
	return nil
}

// Get returns the entry at a tree path.
func (t *Tree) Get(p string) (*Entry, bool) {
	e, ok := t.entries[p]
	return e, ok
}

// Len is the number of entries, the root included.
func (t *Tree) Len() int { return len(t.entries) }

// put adds e (whose path is clean), creating missing parent directories
// and replacing what is at its path. A directory over a directory keeps
// the children and takes the new attributes.
func (t *Tree) put(source, name string, e *Entry) error {
	if e.Type == TypeSymlink {
		if err := checkSymlink(source, name, e.Path, e.Link); err != nil {
			return err
		}
		e.Mode = 0o777
	}
	if e.MTime > t.epoch {
		e.MTime = t.epoch
	}
	if e.Path == "" {
		if e.Type != TypeDir {
			return fmt.Errorf("%s: entry %q would replace the root directory with a %s", source, name, e.Type)
		}
		t.entries[""] = e
		return nil
	}
	if err := t.ensureParents(source, name, e.Path); err != nil {
		return err
	}
	if old, ok := t.entries[e.Path]; ok && !(old.Type == TypeDir && e.Type == TypeDir) {
		t.remove(e.Path)
	}
	t.entries[e.Path] = e
	return nil
}

// ensureParents creates the missing directories above p and fails when one
// of them is not a directory.
func (t *Tree) ensureParents(source, name, p string) error {
	dir := path.Dir(p)
	if dir == "." {
		return nil
	}
	if parent, ok := t.entries[dir]; ok {
		if parent.Type != TypeDir {
			return fmt.Errorf("%s: entry %q is below %q, which is a %s, not a directory", source, name, "/"+dir, parent.Type)
		}
		return nil
	}
	if err := t.ensureParents(source, name, dir); err != nil {
		return err
	}
	t.entries[dir] = &Entry{Path: dir, Type: TypeDir, Mode: 0o755, MTime: t.epoch}
	return nil
}

// remove deletes p and, for a directory, everything below it.
func (t *Tree) remove(p string) {
	e, ok := t.entries[p]
	if !ok {
		return
	}
	delete(t.entries, p)
	if e.Type == TypeDir {
		t.removeChildren(p)
	}
}

// removeChildren deletes everything below directory p, keeping p.
func (t *Tree) removeChildren(p string) {
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	for q := range t.entries {
		if q != "" && q != p && strings.HasPrefix(q, prefix) {
			delete(t.entries, q)
		}
	}
}

// newBlob spools r into a new content file.
func (t *Tree) newBlob(r io.Reader) (*blob, error) {
	t.nextID++
	b := &blob{id: t.nextID, path: filepath.Join(t.spool, strconv.Itoa(t.nextID))}
	f, err := os.OpenFile(b.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("spooling file content: %w", err)
	}
	b.size = n
	return b, nil
}

// AddFile adds a regular file with the content of r.
func (t *Tree) AddFile(source, name string, r io.Reader, mode uint32, uid, gid int, mtime int64) error {
	p, err := CleanName(source, name)
	if err != nil {
		return err
	}
	b, err := t.newBlob(r)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", source, name, err)
	}
	return t.put(source, name, &Entry{Path: p, Type: TypeReg, Mode: mode & 0o7777, UID: uid, GID: gid, MTime: mtime, data: b})
}

// AddEntry adds a directory, symlink, device or fifo (no content).
func (t *Tree) AddEntry(source, name string, e Entry) error {
	if e.Type == TypeReg {
		return fmt.Errorf("%s: %s: regular files are added with AddFile", source, name)
	}
	p, err := CleanName(source, name)
	if err != nil {
		return err
	}
	e.Path = p
	e.Mode &= 0o7777
	e.data = nil
	return t.put(source, name, &e)
}

// AddHardlink adds name as a hard link to the regular file target, which
// must already be in the tree.
func (t *Tree) AddHardlink(source, name, target string) error {
	p, err := CleanName(source, name)
	if err != nil {
		return err
	}
	tp, err := CleanName(source, target)
	if err != nil {
		var esc *EscapeError
		if errors.As(err, &esc) {
			return &EscapeError{Source: source, Entry: name, Detail: fmt.Sprintf("is a hard link to %q, which is outside the root", target)}
		}
		return err
	}
	te, ok := t.entries[tp]
	if !ok {
		return fmt.Errorf("%s: entry %q is a hard link to %q, which is not in the tree before it", source, name, target)
	}
	if te.Type != TypeReg {
		return fmt.Errorf("%s: entry %q is a hard link to %q, a %s: only regular files can be hard-linked", source, name, target, te.Type)
	}
	if tp == p {
		return nil
	}
	e := *te
	e.Path = p
	return t.put(source, name, &e)
}

// Whiteout removes name (and what is below it), as an OCI whiteout does.
func (t *Tree) Whiteout(source, name string) error {
	p, err := CleanName(source, name)
	if err != nil {
		return err
	}
	if p == "" {
		return fmt.Errorf("%s: whiteout %q would remove the root", source, name)
	}
	t.remove(p)
	return nil
}

// Entries returns every entry sorted by path (so a directory comes before
// what it holds).
func (t *Tree) Entries() []*Entry {
	out := make([]*Entry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// sameInode says whether two entries sharing a blob can be one inode.
func sameInode(a, b *Entry) bool {
	return a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID && a.MTime == b.MTime
}

// WriteTar writes the tree as a reproducible tar archive: entries sorted by
// path, the root as "./", numeric owners without names, whole-second
// mtimes and nothing else of the host. Files sharing content and
// attributes are hard links to the first of them. It returns the number of
// entries written.
func (t *Tree) WriteTar(w io.Writer) (int, error) {
	tw := tar.NewWriter(w)
	first := map[int]*Entry{} // blob id → the entry that carries the data
	n := 0
	for _, e := range t.Entries() {
		h := &tar.Header{
			Name: e.Path, Mode: int64(e.Mode), Uid: e.UID, Gid: e.GID,
			ModTime: time.Unix(e.MTime, 0), Format: tar.FormatPAX,
		}
		var data *blob
		switch e.Type {
		case TypeDir:
			h.Typeflag = tar.TypeDir
			h.Name += "/"
			if e.Path == "" {
				h.Name = "./"
			}
		case TypeReg:
			if f, ok := first[e.data.id]; ok && sameInode(f, e) {
				h.Typeflag, h.Linkname = tar.TypeLink, f.Path
				break
			}
			if _, ok := first[e.data.id]; !ok {
				first[e.data.id] = e
			}
			h.Typeflag, h.Size, data = tar.TypeReg, e.data.size, e.data
		case TypeSymlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
		case TypeChar, TypeBlock:
			h.Typeflag = tar.TypeChar
			if e.Type == TypeBlock {
				h.Typeflag = tar.TypeBlock
			}
			h.Devmajor, h.Devminor = int64(e.Major), int64(e.Minor)
		case TypeFIFO:
			h.Typeflag = tar.TypeFifo
		default:
			return n, fmt.Errorf("entry %q has unknown type %d", e.Path, e.Type)
		}
		if err := tw.WriteHeader(h); err != nil {
			return n, fmt.Errorf("writing tar entry %q: %w", e.Path, err)
		}
		if data != nil {
			if err := copyFileTo(tw, data.path, data.size); err != nil {
				return n, fmt.Errorf("writing tar entry %q: %w", e.Path, err)
			}
		}
		n++
	}
	return n, tw.Close()
}

func copyFileTo(w io.Writer, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s changed size while being read (%d, want %d)", p, n, size)
	}
	return nil
}

// Digest is a sha256 over the tree's metadata and contents, in path order:
// equal digests mean equal trees.
func (t *Tree) Digest() (string, error) {
	h := sha256.New()
	for _, e := range t.Entries() {
		fmt.Fprintf(h, "%q %d %o %d %d %d %q %d %d", e.Path, e.Type, e.Mode, e.UID, e.GID, e.MTime, e.Link, e.Major, e.Minor)
		if e.data != nil {
			f, err := os.Open(e.data.path)
			if err != nil {
				return "", err
			}
			c := sha256.New()
			_, err = io.Copy(c, f)
			f.Close()
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, " %x", c.Sum(nil))
		}
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
