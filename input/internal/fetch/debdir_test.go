package fetch

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// makeDeb builds a .deb (ar archive) whose data.tar holds hdrs, each with
// the body given in bodies (by name).
func makeDeb(t testing.TB, hdrs []*tar.Header, bodies map[string]string) []byte {
	t.Helper()
	var data bytes.Buffer
	tw := tar.NewWriter(&data)
	for _, h := range hdrs {
		h.Size = int64(len(bodies[h.Name]))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			io.WriteString(tw, bodies[h.Name])
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var deb bytes.Buffer
	deb.WriteString("!<arch>\n")
	member := func(name string, b []byte) {
		fmt.Fprintf(&deb, "%-16s%-12d%-6d%-6d%-8o%-10d`\n", name, 0, 0, 0, 0o100644, len(b))
		deb.Write(b)
		if len(b)%2 == 1 {
			deb.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("data.tar", data.Bytes())
	return deb.Bytes()
}

type tarEntry struct {
	Name, Link, Body string
	Type             byte
	Mode             int64
	UID, GID         int
	Uname, Gname     string
	ModTime          int64
}

func readTar(t testing.TB, b []byte) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out = append(out, tarEntry{Name: h.Name, Link: h.Linkname, Body: string(body), Type: h.Typeflag, Mode: h.Mode,
			UID: h.Uid, GID: h.Gid, Uname: h.Uname, Gname: h.Gname, ModTime: h.ModTime.Unix()})
	}
}

func TestDebDir(t *testing.T) {
	old := time.Date(2026, 11, 16, 10, 17, 0, 0, time.UTC)
	hdrs := func() []*tar.Header {
		return []*tar.Header{
			{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "./lib/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "./lib/modules/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "./lib/modules/6.1/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 1000, ModTime: old},
			{Name: "./lib/modules/6.1/kernel/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "./lib/modules/6.1/kernel/b.ko", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1000, Gid: 1000, Uname: "u", Gname: "g", ModTime: old},
			{Name: "./lib/modules/6.1/kernel/a.ko", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: old},
			{Name: "./lib/modules/6.1/tool", Typeflag: tar.TypeReg, Mode: 0o700},
			{Name: "./lib/modules/6.1/link", Typeflag: tar.TypeSymlink, Linkname: "kernel/a.ko"},
			{Name: "./lib/modules/6.1/hard", Typeflag: tar.TypeLink, Linkname: "./lib/modules/6.1/kernel/b.ko"},
			{Name: "./lib/modules/6.10/other.ko", Typeflag: tar.TypeReg, Mode: 0o644},
			{Name: "./boot/vmlinuz", Typeflag: tar.TypeReg, Mode: 0o644},
		}
	}
	bodies := map[string]string{"./lib/modules/6.1/kernel/b.ko": "bbb", "./lib/modules/6.1/kernel/a.ko": "a", "./lib/modules/6.1/tool": "#!", "./lib/modules/6.10/other.ko": "x", "./boot/vmlinuz": "k"}
	deb := makeDeb(t, hdrs(), bodies)
	epoch := time.Unix(1700000000, 0)
	var buf bytes.Buffer
	if err := DebDir(bytes.NewReader(deb), int64(len(deb)), "/lib/modules/6.1/", &buf, epoch); err != nil {
		t.Fatal(err)
	}
	e := func(name string, typ byte, mode int64, body, link string) tarEntry {
		return tarEntry{Name: name, Type: typ, Mode: mode, Body: body, Link: link, ModTime: epoch.Unix()}
	}
	want := []tarEntry{
		e("hard", tar.TypeReg, 0o644, "bbb", ""),
		e("kernel/", tar.TypeDir, 0o755, "", ""),
		e("kernel/a.ko", tar.TypeReg, 0o644, "a", ""),
		e("kernel/b.ko", tar.TypeReg, 0o644, "bbb", ""),
		e("link", tar.TypeSymlink, 0o777, "", "kernel/a.ko"),
		e("tool", tar.TypeReg, 0o755, "#!", ""),
	}
	if diff := cmp.Diff(want, readTar(t, buf.Bytes())); diff != "" {
		t.Errorf("DebDir tar (-want +got):\n%s", diff)
	}
	// The same content in another order gives the same bytes.
	h := hdrs()
	h[5], h[6] = h[6], h[5]
	var buf2 bytes.Buffer
	deb2 := makeDeb(t, h, bodies)
	if err := DebDir(bytes.NewReader(deb2), int64(len(deb2)), "lib/modules/6.1", &buf2, epoch); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), buf2.Bytes()) {
		t.Error("DebDir output depends on the order of the package's archive")
	}

	errCases := []struct {
		name string
		hdrs []*tar.Header
		dir  string
		want string
	}{
		{"missing", hdrs(), "lib/modules/7.0", "no directory"},
		{"file", hdrs(), "boot/vmlinuz", "not a directory"},
		{"escape", hdrs(), "../etc", "invalid directory"},
		{"root", hdrs(), "/", "invalid directory"},
		{"device", append(hdrs(), &tar.Header{Name: "./lib/modules/6.1/null", Typeflag: tar.TypeChar, Mode: 0o666}), "lib/modules/6.1", "neither a file"},
		{"hardlink outside", append(hdrs(), &tar.Header{Name: "./lib/modules/6.1/k", Typeflag: tar.TypeLink, Linkname: "./boot/vmlinuz"}), "lib/modules/6.1", "hard link"},
		{"empty", []*tar.Header{{Name: "./lib/modules/6.1/", Typeflag: tar.TypeDir, Mode: 0o755}}, "lib/modules/6.1", "is empty"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			deb := makeDeb(t, tc.hdrs, bodies)
			err := DebDir(bytes.NewReader(deb), int64(len(deb)), tc.dir, io.Discard, epoch)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DebDir(%q) error %v, want one containing %q", tc.dir, err, tc.want)
			}
		})
	}
}

// TestAptDebDir extracts a directory from a real package.
func TestAptDebDir(t *testing.T) {
	testenv.Tool(t, "apt-get", "apt")
	ver, err := AptCandidate(context.Background(), "hostname")
	if err != nil {
		t.Fatal(err)
	}
	deb, err := AptDownload(context.Background(), "hostname", ver, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := DebDir(bytes.NewReader(b), int64(len(b)), "usr/share/doc/hostname", &buf, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range readTar(t, buf.Bytes()) {
		names = append(names, e.Name)
		if e.UID != 0 || e.GID != 0 || e.ModTime != 0 || e.Uname != "" {
			t.Errorf("%s: uid %d gid %d uname %q mtime %d, want 0 0 \"\" 0", e.Name, e.UID, e.GID, e.Uname, e.ModTime)
		}
	}
	if !strings.Contains(strings.Join(names, " "), "copyright") {
		t.Errorf("usr/share/doc/hostname of the hostname package as a tar: %v, want a copyright file", names)
	}
}

func FuzzDebDir(f *testing.F) {
	f.Add(makeDeb(f, []*tar.Header{{Name: "./d/", Typeflag: tar.TypeDir}, {Name: "./d/f", Typeflag: tar.TypeReg}, {Name: "./d/l", Typeflag: tar.TypeLink, Linkname: "./d/f"}}, map[string]string{"./d/f": "x"}))
	f.Add([]byte("!<arch>\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		DebDir(bytes.NewReader(b), int64(len(b)), "d", io.Discard, time.Unix(0, 0))
	})
}
