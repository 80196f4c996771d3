package rootfs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// dirEntry is one entry of a host directory as a tree sees it.
type dirEntry struct {
	rel  string // slash-separated, relative to the directory ("" for itself)
	typ  Type
	mode uint32
	link string
	abs  string // host path, for regular files
}

// walkDir lists a host directory in sorted order, without following
// symlinks, normalising what would leak the host: owners are root,
// directories 0755, files 0755 when any execute bit is set and 0644
// otherwise. Devices, sockets and fifos are errors.
func walkDir(source, root string, fn func(dirEntry) error) error {
	st, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %s is not a directory", source, root)
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			rel = ""
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		e := dirEntry{rel: rel, abs: p}
		switch m := info.Mode(); {
		case m.IsDir():
			e.typ, e.mode = TypeDir, 0o755
		case m.IsRegular():
			e.typ, e.mode = TypeReg, 0o644
			if m.Perm()&0o111 != 0 {
				e.mode = 0o755
			}
		case m&fs.ModeSymlink != 0:
			e.typ = TypeSymlink
			if e.link, err = os.Readlink(p); err != nil {
				return fmt.Errorf("%s: %w", source, err)
			}
		default:
			return fmt.Errorf("%s: %s is a %s: a directory source holds only directories, files and symlinks (give devices in a tar archive)", source, p, m.Type())
		}
		return fn(e)
	})
}

// hashDirEntry adds an entry's record to a directory digest.
func hashDirEntry(h hash.Hash, e dirEntry, content []byte) {
	fmt.Fprintf(h, "%q %d %o %q %x\n", e.rel, e.typ, e.mode, e.link, content)
}

// DirDigest hashes what AddDir would read from a host directory: names,
// types, normalised modes, link targets and contents.
func DirDigest(source, root string) (string, error) {
	d, _, err := dirDigest(source, root)
	return d, err
}

// dirDigest is DirDigest that also returns the paths of the directories
// and regular files it read (a symlink is covered by its directory: it can
// only be changed by replacing it).
func dirDigest(source, root string) (string, []string, error) {
	h := sha256.New()
	var read []string
	err := walkDir(source, root, func(e dirEntry) error {
		var sum []byte
		if e.typ != TypeSymlink {
			read = append(read, e.abs)
		}
		if e.typ == TypeReg {
			s, err := hashFile(e.abs)
			if err != nil {
				return fmt.Errorf("%s: %w", source, err)
			}
			sum = s
		}
		hashDirEntry(h, e, sum)
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	return hex.EncodeToString(h.Sum(nil)), read, nil
}

func hashFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// AddDir copies a host directory into the tree below at ("" for the root)
// and returns the digest of what it read (as DirDigest). Owners are root,
// modes normalised, and every mtime is the epoch: a checkout's times say
// nothing about its content.
func (t *Tree) AddDir(source, root, at string) (string, error) {
	h := sha256.New()
	err := walkDir(source, root, func(e dirEntry) error {
		name := path.Join("/"+at, e.rel)
		switch e.typ {
		case TypeDir:
			hashDirEntry(h, e, nil)
			if e.rel == "" && at == "" {
				// The directory's own attributes become the root's.
				return t.AddEntry(source, "/", Entry{Type: TypeDir, Mode: e.mode, MTime: t.epoch})
			}
			return t.AddEntry(source, name, Entry{Type: TypeDir, Mode: e.mode, MTime: t.epoch})
		case TypeSymlink:
			hashDirEntry(h, e, nil)
			return t.AddEntry(source, name, Entry{Type: TypeSymlink, Link: e.link, MTime: t.epoch})
		}
		f, err := os.Open(e.abs)
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		defer f.Close()
		c := sha256.New()
		if err := t.AddFile(source, name, io.TeeReader(f, c), e.mode, 0, 0, t.epoch); err != nil {
			return err
		}
		hashDirEntry(h, e, c.Sum(nil))
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
