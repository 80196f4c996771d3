package rootfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/cocobuild/cocobuild/internal/decompress"
)

// OCI whiteout names (image-spec layer.md).
const (
	whiteoutPrefix = ".wh."
	opaqueWhiteout = ".wh..wh..opq"
)

// tarOptions say how an archive joins the tree.
type tarOptions struct {
	// at is the directory the archive is unpacked into ("" for the root).
	at string
	// oci applies whiteouts (.wh.NAME, .wh..wh..opq) as a layer does.
	oci bool
}

// maxTarSize bounds what one tar source or image layer holds once
// decompressed: a stream that holds more fails rather than fill the disk.
const maxTarSize = 64 << 30

// AddTar reads a tar archive (compressed or not) into the tree below at
// ("" for the root). Every entry is checked: names and hard links must stay
// inside the root, and relative symlinks must resolve inside it.
func (t *Tree) AddTar(source string, r io.Reader, at string) error {
	return t.addTar(source, r, tarOptions{at: at})
}

// AddLayer applies an OCI image layer: whiteouts remove what the layers
// below put there, then the layer's entries are added.
func (t *Tree) AddLayer(source string, r io.Reader) error {
	return t.addTar(source, r, tarOptions{oci: true})
}

func (t *Tree) addTar(source string, r io.Reader, opts tarOptions) error {
	zr, _, err := decompress.Open(r, maxTarSize)
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	// A layer's opaque markers hide only the layers below it: what the
	// layer itself adds to the directory, before or after the marker, stays.
	added := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: reading tar: %w", source, err)
		}
		name := h.Name
		if opts.at != "" {
			if _, err := CleanName(source, name); err != nil {
				return err
			}
			name = path.Join(opts.at, strings.TrimLeft(name, "/"))
		}
		if opts.oci {
			base := path.Base(h.Name)
			if base == opaqueWhiteout {
				dir, err := CleanName(source, path.Dir(h.Name))
				if err != nil {
					return err
				}
				if err := t.opaqueBelow(source, dir, h.Name, added); err != nil {
					return err
				}
				continue
			}
			if strings.HasPrefix(base, whiteoutPrefix) {
				if err := t.Whiteout(source, path.Join(path.Dir(h.Name), strings.TrimPrefix(base, whiteoutPrefix))); err != nil {
					return err
				}
				continue
			}
		}
		if err := t.addHeader(source, name, h, tr, opts); err != nil {
			return err
		}
		if opts.oci {
			if p, err := CleanName(source, name); err == nil {
				added[p] = true
			}
		}
	}
}

// opaqueBelow empties dir for an opaque marker, keeping what the marker's
// own layer added (the paths in added).
func (t *Tree) opaqueBelow(source, dir, name string, added map[string]bool) error {
	e, ok := t.entries[dir]
	if !ok {
		return nil
	}
	if e.Type != TypeDir {
		return fmt.Errorf("%s: opaque marker %q is below %q, a %s", source, name, "/"+dir, e.Type)
	}
	prefix := dir + "/"
	if dir == "" {
		prefix = ""
	}
	for q := range t.entries {
		if q != "" && q != dir && strings.HasPrefix(q, prefix) && !added[q] && !hasAddedDescendant(q, added) {
			delete(t.entries, q)
		}
	}
	return nil
}

// hasAddedDescendant says whether the layer added something below q (q
// must then stay, as its parent).
func hasAddedDescendant(q string, added map[string]bool) bool {
	prefix := q + "/"
	for a := range added {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

func (t *Tree) addHeader(source, name string, h *tar.Header, r io.Reader, opts tarOptions) error {
	mode := uint32(h.Mode) & 0o7777
	mtime := h.ModTime.Unix()
	if h.Uid < 0 || h.Gid < 0 || int64(h.Uid) > 0xfffffffe || int64(h.Gid) > 0xfffffffe {
		return fmt.Errorf("%s: entry %q has owner %d:%d, outside 0…4294967294", source, h.Name, h.Uid, h.Gid)
	}
	if h.Typeflag == tar.TypeGNUSparse || hasSparseRecords(h) {
		// A sparse entry expands to its full size when read: a small
		// archive could claim terabytes.
		return fmt.Errorf("%s: entry %q is a sparse file, which is not supported: archive it without --sparse", source, h.Name)
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		return t.AddFile(source, name, r, mode, h.Uid, h.Gid, mtime)
	case tar.TypeDir:
		return t.AddEntry(source, name, Entry{Type: TypeDir, Mode: mode, UID: h.Uid, GID: h.Gid, MTime: mtime})
	case tar.TypeSymlink:
		return t.AddEntry(source, name, Entry{Type: TypeSymlink, UID: h.Uid, GID: h.Gid, MTime: mtime, Link: h.Linkname})
	case tar.TypeLink:
		target := h.Linkname
		if opts.at != "" {
			if _, err := CleanName(source, target); err != nil {
				return &EscapeError{Source: source, Entry: h.Name, Detail: fmt.Sprintf("is a hard link to %q, which is outside the root", target)}
			}
			target = path.Join(opts.at, strings.TrimLeft(target, "/"))
		}
		return t.AddHardlink(source, name, target)
	case tar.TypeChar, tar.TypeBlock:
		typ := TypeChar
		if h.Typeflag == tar.TypeBlock {
			typ = TypeBlock
		}
		if h.Devmajor < 0 || h.Devminor < 0 || h.Devmajor > 0xfff || h.Devminor > 0xfffff {
			return fmt.Errorf("%s: device %q has an invalid number %d:%d", source, h.Name, h.Devmajor, h.Devminor)
		}
		return t.AddEntry(source, name, Entry{Type: typ, Mode: mode, UID: h.Uid, GID: h.Gid, MTime: mtime, Major: uint32(h.Devmajor), Minor: uint32(h.Devminor)})
	case tar.TypeFifo:
		return t.AddEntry(source, name, Entry{Type: TypeFIFO, Mode: mode, UID: h.Uid, GID: h.Gid, MTime: mtime})
	case tar.TypeXGlobalHeader:
		return nil
	}
	return fmt.Errorf("%s: entry %q has tar type %q, which a root file system cannot hold", source, h.Name, h.Typeflag)
}

func hasSparseRecords(h *tar.Header) bool {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
