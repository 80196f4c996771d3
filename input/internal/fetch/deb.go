package fetch

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/cocobuild/cocobuild/internal/decompress"
)

// DebFile returns the content of the regular file at member (e.g.
// "boot/vmlinuz-6.1.0-56-cloud-amd64") inside a .deb's data archive.
// Symbolic links inside the package are followed.
func DebFile(deb io.ReaderAt, size int64, member string) ([]byte, error) {
	want := path.Clean(strings.TrimPrefix(member, "/"))
	for hops := 0; hops < 8; hops++ {
		data, err := debData(deb, size)
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(data)
		var names []string
		found := false
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading the .deb data archive: %w", err)
			}
			name := path.Clean(strings.TrimPrefix(h.Name, "./"))
			if name != want {
				if h.Typeflag == tar.TypeReg && len(names) < 5 && path.Base(name) == path.Base(want) {
					names = append(names, name)
				}
				continue
			}
			found = true
			switch h.Typeflag {
			case tar.TypeReg:
				return io.ReadAll(tr)
			case tar.TypeSymlink:
				t := h.Linkname
				if !path.IsAbs(t) {
					t = path.Join(path.Dir(name), t)
				}
				want = path.Clean(strings.TrimPrefix(t, "/"))
			default:
				return nil, fmt.Errorf("%s in the package is not a regular file", member)
			}
			break
		}
		if !found {
			msg := fmt.Sprintf("no file %s in the package", member)
			if len(names) > 0 {
				msg += "; files of that name: " + strings.Join(names, ", ")
			}
			return nil, errors.New(msg)
		}
	}
	return nil, fmt.Errorf("%s: too many symbolic links", member)
}

// maxDebData bounds a .deb's data.tar once decompressed.
const maxDebData = 16 << 30

// debData finds data.tar.* in the ar archive and returns its decompressed stream.
func debData(deb io.ReaderAt, size int64) (io.Reader, error) {
	r := io.NewSectionReader(deb, 0, size)
	br := bufio.NewReader(r)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != "!<arch>\n" {
		return nil, errors.New("not a .deb (ar) archive")
	}
	off := int64(8)
	for {
		hdr := make([]byte, 60)
		if _, err := io.ReadFull(br, hdr); err != nil {
			return nil, errors.New("no data.tar member in the .deb")
		}
		name := strings.TrimRight(strings.TrimSpace(string(hdr[0:16])), "/")
		n, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil || n < 0 || off+60+n > size {
			return nil, fmt.Errorf("corrupt .deb member header %q", name)
		}
		body := io.NewSectionReader(deb, off+60, n)
		if strings.HasPrefix(name, "data.tar") {
			f, ok := map[string]decompress.Format{".xz": decompress.XZ, ".zst": decompress.Zstd, ".gz": decompress.Gzip, ".tar": decompress.None}[path.Ext(name)]
			if !ok {
				return nil, fmt.Errorf("unsupported .deb data compression %s", name)
			}
			return decompress.NewReader(body, f, maxDebData)
		}
		skip := n + n%2
		if _, err := br.Discard(int(skip)); err != nil {
			return nil, fmt.Errorf("corrupt .deb: %w", err)
		}
		off += 60 + skip
	}
}
