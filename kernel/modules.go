package kernel

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// writeModuleTar writes the installed module tree root (lib/modules/RELEASE)
// to w as the tar archive an input's extract_dir delivers: names relative
// to root, directories with a trailing slash, sorted, owned by 0:0 without
// user or group names, mtimes = mtime, modes 0755 for directories and
// executables and 0644 for other files, PAX format. The `build` and
// `source` links that modules_install makes point into the build
// directory and are left out; any other link must be relative and stay
// inside the tree. It returns the number of modules (*.ko*).
func writeModuleTar(root string, w io.Writer, mtime time.Time) (int, error) {
	type entry struct {
		rel  string
		typ  byte
		mode int64
		link string
		path string
		size int64
	}
	var entries []entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if rel == "build" || rel == "source" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.Mode().IsDir():
			entries = append(entries, entry{rel: rel + "/", typ: tar.TypeDir, mode: 0o755})
		case info.Mode().IsRegular():
			mode := int64(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			entries = append(entries, entry{rel: rel, typ: tar.TypeReg, mode: mode, path: p, size: info.Size()})
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if path.IsAbs(target) || strings.HasPrefix(path.Clean(path.Join(path.Dir(rel), target)), "../") {
				return fmt.Errorf("module tree: %s links to %s, outside the tree", rel, target)
			}
			entries = append(entries, entry{rel: rel, typ: tar.TypeSymlink, mode: 0o777, link: target})
		default:
			return fmt.Errorf("module tree: %s is neither a file, a directory nor a link", rel)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	sort.Slice(entries, func(i, j int) bool {
		return strings.TrimSuffix(entries[i].rel, "/") < strings.TrimSuffix(entries[j].rel, "/")
	})
	tw := tar.NewWriter(w)
	n := 0
	for _, e := range entries {
		h := &tar.Header{Name: e.rel, Mode: e.mode, ModTime: mtime.UTC(), Typeflag: e.typ, Linkname: e.link, Size: e.size, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return 0, err
		}
		if e.typ != tar.TypeReg {
			continue
		}
		if moduleFile(e.rel) {
			n++
		}
		f, err := os.Open(e.path)
		if err != nil {
			return 0, err
		}
		_, err = io.CopyN(tw, f, e.size)
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("module tree: %s: %w", e.rel, err)
		}
	}
	return n, tw.Close()
}

// moduleFile says whether a path names a kernel module.
func moduleFile(p string) bool {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
}
