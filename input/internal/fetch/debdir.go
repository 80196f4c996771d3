package fetch

import (
	"archive/tar"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// maxDebDirBytes bounds what DebDir holds in memory: the content of the
// directory it extracts.
const maxDebDirBytes = 2 << 30

// DebDir writes the directory dir of a .deb's data archive (e.g.
// "lib/modules/6.1.0-56-cloud-amd64") to w as a tar archive whose names are
// relative to dir. The archive is reproducible: entries sorted by name,
// owned by 0:0 with no user or group names, mtimes set to mtime, modes 0755
// for directories and executables and 0644 for other files. Regular files,
// directories and symbolic links are kept (hard links become regular files);
// device nodes and FIFOs are errors.
func DebDir(deb io.ReaderAt, size int64, dir string, w io.Writer, mtime time.Time) error {
	want := path.Clean(strings.TrimPrefix(dir, "/"))
	if want == "." || want == ".." || strings.HasPrefix(want, "../") {
		return fmt.Errorf("invalid directory %q", dir)
	}
	data, err := debData(deb, size)
	if err != nil {
		return err
	}
	type entry struct {
		typ  byte
		mode int64
		link string
		body []byte
	}
	entries := map[string]*entry{}
	var total int64
	tr := tar.NewReader(data)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the .deb data archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		rel, ok := strings.CutPrefix(name, want+"/")
		if name == want {
			if h.Typeflag != tar.TypeDir {
				return fmt.Errorf("%s in the package is not a directory", dir)
			}
			entries["."] = &entry{typ: tar.TypeDir}
			continue
		}
		if !ok {
			continue
		}
		mode := int64(0o644)
		if h.Mode&0o111 != 0 {
			mode = 0o755
		}
		switch h.Typeflag {
		case tar.TypeDir:
			entries[rel] = &entry{typ: tar.TypeDir, mode: 0o755}
		case tar.TypeReg:
			if h.Size < 0 || total+h.Size > maxDebDirBytes {
				return fmt.Errorf("%s: the directory holds more than %d bytes", dir, int64(maxDebDirBytes))
			}
			b, err := io.ReadAll(io.LimitReader(tr, h.Size))
			if err != nil {
				return fmt.Errorf("reading %s from the package: %w", name, err)
			}
			total += int64(len(b))
			entries[rel] = &entry{typ: tar.TypeReg, mode: mode, body: b}
		case tar.TypeSymlink:
			entries[rel] = &entry{typ: tar.TypeSymlink, mode: 0o777, link: h.Linkname}
		case tar.TypeLink:
			target := path.Clean(strings.TrimPrefix(h.Linkname, "./"))
			trel, ok := strings.CutPrefix(target, want+"/")
			src := entries[trel]
			if !ok || src == nil || src.typ != tar.TypeReg {
				return fmt.Errorf("%s in the package is a hard link to %s, outside %s or not a file before it", name, h.Linkname, dir)
			}
			entries[rel] = &entry{typ: tar.TypeReg, mode: src.mode, body: src.body}
		default:
			return fmt.Errorf("%s in the package is neither a file, a directory nor a symbolic link (tar type %q)", name, h.Typeflag)
		}
	}
	if len(entries) == 0 {
		return fmt.Errorf("no directory %s in the package", dir)
	}
	delete(entries, ".")
	if len(entries) == 0 {
		return fmt.Errorf("the directory %s in the package is empty", dir)
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tar.NewWriter(w)
	for _, n := range names {
		e := entries[n]
		h := &tar.Header{Name: n, Mode: e.mode, ModTime: mtime.UTC(), Typeflag: e.typ, Format: tar.FormatPAX}
		switch e.typ {
		case tar.TypeDir:
			h.Name += "/"
		case tar.TypeSymlink:
			h.Linkname = e.link
		case tar.TypeReg:
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(e.body); err != nil {
			return err
		}
	}
	return tw.Close()
}
