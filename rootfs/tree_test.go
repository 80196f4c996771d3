package rootfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
)

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string
		escape   bool
		err      bool
	}{
		{in: "etc/x", want: "etc/x"},
		{in: "/etc/x", want: "etc/x"},
		{in: "./etc/", want: "etc"},
		{in: ".", want: ""},
		{in: "./", want: ""},
		{in: "/", want: ""},
		{in: "a/./b//c", want: "a/b/c"},
		{in: "a/b/../c", want: "a/c"},
		{in: "..", escape: true},
		{in: "../x", escape: true},
		{in: "a/../../x", escape: true},
		{in: "/..", escape: true},
		{in: "/etc/../../x", escape: true},
		{in: "", err: true},
		{in: "a\x00b", err: true},
	}
	for _, tc := range tests {
		got, err := CleanName("t", tc.in)
		var esc *EscapeError
		switch {
		case tc.escape:
			if !errors.As(err, &esc) || esc.Entry != tc.in {
				t.Errorf("CleanName(%q) = %q, %v; want an EscapeError naming the entry", tc.in, got, err)
			}
		case tc.err:
			if err == nil {
				t.Errorf("CleanName(%q) = %q, want an error", tc.in, got)
			}
		default:
			if err != nil || got != tc.want {
				t.Errorf("CleanName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		}
	}
}

// tarEntry describes an entry for makeTar.
type tarEntry struct {
	name, link, body string
	typ              byte
	mode             int64
	uid              int
	mtime            int64
}

func makeTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: mode, Uid: e.uid, ModTime: time.Unix(e.mtime, 0), Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAddTarRejects(t *testing.T) {
	tests := []struct {
		name    string
		entries []tarEntry
		at      string
		want    string // substring of the error; the entry's name must be in it
		escape  bool
	}{
		{"dotdot", []tarEntry{{name: "../evil"}}, "", `"../evil"`, true},
		{"dotdot inside", []tarEntry{{name: "a/../../evil"}}, "", `"a/../../evil"`, true},
		{"dotdot with at", []tarEntry{{name: "../../evil"}}, "/opt", `"../../evil"`, true},
		{"symlink out", []tarEntry{{name: "a/b", typ: tar.TypeSymlink, link: "../../etc/passwd"}}, "", `"a/b"`, true},
		{"hardlink out", []tarEntry{{name: "x", typ: tar.TypeLink, link: "../etc/passwd"}}, "", `"x"`, true},
		{"hardlink to nothing", []tarEntry{{name: "x", typ: tar.TypeLink, link: "y"}}, "", `"x" is a hard link to "y", which is not in the tree`, false},
		{"hardlink to dir", []tarEntry{{name: "d/", typ: tar.TypeDir, mode: 0o755}, {name: "x", typ: tar.TypeLink, link: "d"}}, "", "only regular files", false},
		{"below a symlink", []tarEntry{{name: "lib", typ: tar.TypeSymlink, link: "usr/lib"}, {name: "lib/x"}}, "", `"lib/x" is below "/lib", which is a symlink`, false},
		{"below a file", []tarEntry{{name: "f"}, {name: "f/x"}}, "", `"f/x" is below "/f", which is a file`, false},
		{"root replaced", []tarEntry{{name: "./", typ: tar.TypeSymlink, link: "x"}}, "", "would replace the root", false},
		{"empty symlink", []tarEntry{{name: "l", typ: tar.TypeSymlink}}, "", "empty target", false},
		{"unknown type", []tarEntry{{name: "c", typ: 'Z'}}, "", "tar type", false},
		{"negative uid", []tarEntry{{name: "n", uid: -1}}, "", "owner -1:0", false},
	}
	for _, tc := range tests {
		tr := NewTree(t.TempDir(), 100)
		err := tr.AddTar("tar input.base", bytes.NewReader(makeTar(t, tc.entries...)), tc.at)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "tar input.base") {
			t.Errorf("%s: error %v, want one naming the source and containing %q", tc.name, err, tc.want)
		}
		var esc *EscapeError
		if errors.As(err, &esc) != tc.escape {
			t.Errorf("%s: EscapeError = %v, want %v (%v)", tc.name, !tc.escape, tc.escape, err)
		}
	}
}

// TestAddTarRejectsSparse: a sparse entry (GNU format) is refused, since a
// few bytes of archive can expand to terabytes.
func TestAddTarRejectsSparse(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "s", Typeflag: tar.TypeGNUSparse, Size: 0, Format: tar.FormatGNU}); err != nil {
		t.Skipf("cannot write a GNU sparse header: %v", err)
	}
	tw.Close()
	err := NewTree(t.TempDir(), 1).AddTar("t", bytes.NewReader(buf.Bytes()), "")
	if err == nil || !strings.Contains(err.Error(), `entry "s" is a sparse file`) {
		t.Errorf("sparse entry: %v", err)
	}
}

func TestAddTarAccepts(t *testing.T) {
	tr := NewTree(t.TempDir(), 100)
	err := tr.AddTar("t", bytes.NewReader(makeTar(t,
		tarEntry{name: "./", typ: tar.TypeDir, mode: 0o700, mtime: 5},
		tarEntry{name: "/etc/passwd", body: "root:x:0:0::/root:/bin/sh\n", mtime: 50},
		tarEntry{name: "etc/localtime", typ: tar.TypeSymlink, link: "/usr/share/zoneinfo/UTC"},
		tarEntry{name: "usr/lib/os-release", typ: tar.TypeSymlink, link: "../../etc/os-release"},
		tarEntry{name: "usr/bin/a", body: "binary", mode: 0o4755, uid: 0, mtime: 500},
		tarEntry{name: "usr/bin/b", typ: tar.TypeLink, link: "/usr/bin/a"},
		tarEntry{name: "var/log/", typ: tar.TypeDir, mode: 0o750, uid: 4},
	)), "/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range tr.Entries() {
		got = append(got, describe(t, e.Path, e.Type, e.Mode, e.UID, e.GID, e.MTime, e.Link, 0, 0, blobPath(e)))
	}
	want := []string{
		"/ directory 0700 0:0 5",
		"/etc directory 0755 0:0 100",
		"/etc/localtime symlink 0777 0:0 -> /usr/share/zoneinfo/UTC",
		"/etc/passwd file 0644 0:0 50 " + shaHex([]byte("root:x:0:0::/root:/bin/sh\n")),
		"/usr directory 0755 0:0 100",
		"/usr/bin directory 0755 0:0 100",
		"/usr/bin/a file 4755 0:0 100 " + shaHex([]byte("binary")), // mtime clamped to the epoch
		"/usr/bin/b file 4755 0:0 100 " + shaHex([]byte("binary")),
		"/usr/lib directory 0755 0:0 100",
		"/usr/lib/os-release symlink 0777 0:0 -> ../../etc/os-release",
		"/var directory 0755 0:0 100",
		"/var/log directory 0750 4:0 0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}

func TestDecompress(t *testing.T) {
	raw := makeTar(t, tarEntry{name: "x", body: "compressed"})
	var gz, zs bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(raw)
	w.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(raw)
	zw.Close()
	for name, b := range map[string][]byte{"plain": raw, "gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		tr := NewTree(t.TempDir(), 100)
		if err := tr.AddTar(name, bytes.NewReader(b), ""); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if e, ok := tr.Get("x"); !ok || e.Size() != int64(len("compressed")) {
			t.Errorf("%s: entry x = %+v, %v", name, e, ok)
		}
	}
}

// TestLayers applies two OCI layers: a whiteout removes a file, another a
// directory with its content, and an opaque marker empties a directory of
// what the layers below put there but keeps what its own layer adds,
// before or after the marker.
func TestLayers(t *testing.T) {
	tr := NewTree(t.TempDir(), 100)
	l1 := makeTar(t, tarEntry{name: "a/x"}, tarEntry{name: "a/y"}, tarEntry{name: "b/f"}, tarEntry{name: "c/old"}, tarEntry{name: "c/sub/deep"})
	l2 := makeTar(t, tarEntry{name: "a/.wh.x", typ: tar.TypeReg}, tarEntry{name: ".wh.b"}, tarEntry{name: "c/before"},
		tarEntry{name: "c/.wh..wh..opq"}, tarEntry{name: "c/after"}, tarEntry{name: "d/.wh.nothing"})
	if err := tr.AddLayer("l1", bytes.NewReader(l1)); err != nil {
		t.Fatal(err)
	}
	if err := tr.AddLayer("l2", bytes.NewReader(l2)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range tr.Entries() {
		got = append(got, "/"+e.Path)
	}
	want := []string{"/", "/a", "/a/y", "/c", "/c/after", "/c/before"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after the layers (-want +got):\n%s", diff)
	}
	// Whiteouts are plain files outside OCI layers.
	plain := NewTree(t.TempDir(), 100)
	if err := plain.AddTar("t", bytes.NewReader(l2), ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := plain.Get("a/.wh.x"); !ok {
		t.Error("a plain tar lost its .wh. file")
	}
}

func TestWriteTarReproducible(t *testing.T) {
	build := func(reverse bool) []byte {
		tr := NewTree(t.TempDir(), 1000)
		ops := []func() error{
			func() error { return tr.AddFile("t", "/b/file", strings.NewReader("B"), 0o644, 0, 0, 5) },
			func() error { return tr.AddFile("t", "/a", strings.NewReader("A"), 0o600, 7, 8, 2000) },
			func() error { return tr.AddEntry("t", "/c", Entry{Type: TypeSymlink, Link: "a"}) },
		}
		if reverse {
			for i := len(ops) - 1; i >= 0; i-- {
				if err := ops[i](); err != nil {
					t.Fatal(err)
				}
			}
		} else {
			for _, op := range ops {
				if err := op(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := tr.AddHardlink("t", "/z-link", "/a"); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := tr.WriteTar(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	a, b := build(false), build(true)
	if !bytes.Equal(a, b) {
		t.Fatal("the same tree added in another order gives another tar")
	}
	var got []string
	r := tar.NewReader(bytes.NewReader(a))
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{h.Name, string(h.Typeflag), h.Linkname, h.ModTime.UTC().Format(time.RFC3339), h.Uname, h.Gname}, "|"))
	}
	want := []string{
		"./|5||1970-01-01T00:16:40Z||",
		"a|0||1970-01-01T00:16:40Z||",
		"b/|5||1970-01-01T00:16:40Z||",
		"b/file|0||1970-01-01T00:00:05Z||",
		"c|2|a|1970-01-01T00:00:00Z||",
		"z-link|1|a|1970-01-01T00:16:40Z||",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tar entries (-want +got):\n%s", diff)
	}
}

func TestPattern(t *testing.T) {
	tests := []struct {
		pat   string
		match []string
		miss  []string
	}{
		{"/", []string{""}, []string{"a"}},
		{"/etc/shadow", []string{"etc/shadow"}, []string{"etc", "etc/shadow2", "x/etc/shadow"}},
		{"/usr/share/doc/**", []string{"usr/share/doc", "usr/share/doc/a", "usr/share/doc/a/b"}, []string{"usr/share", "usr/share/docs"}},
		{"/home/*/.ssh", []string{"home/u/.ssh"}, []string{"home/.ssh", "home/u/v/.ssh"}},
		{"/**/*.pyc", []string{"a.pyc", "x/y/z.pyc"}, []string{"a.py", "x/y.pyc/z"}},
		{"/var/[lr]*", []string{"var/log", "var/run"}, []string{"var/tmp"}},
	}
	for _, tc := range tests {
		p, err := ParsePattern(tc.pat)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range tc.match {
			if !p.Match(m) {
				t.Errorf("%s does not match %q", tc.pat, m)
			}
		}
		for _, m := range tc.miss {
			if p.Match(m) {
				t.Errorf("%s matches %q", tc.pat, m)
			}
		}
	}
	for _, bad := range []string{"etc", "/a//b", "/a/../b", "/a/[", ""} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q) succeeded", bad)
		}
	}
}

func TestExcludeOverride(t *testing.T) {
	tr := NewTree(t.TempDir(), 100)
	for _, p := range []string{"/usr/share/doc/a/README", "/usr/share/doc/b", "/usr/bin/x", "/home/app/data"} {
		if err := tr.AddFile("t", p, strings.NewReader(p), 0o644, 0, 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	ex, _ := ParsePattern("/usr/share/doc/**")
	if n := tr.Exclude(ex); n != 4 { // doc, doc/a, doc/a/README, doc/b
		t.Errorf("Exclude removed %d entries, want 4", n)
	}
	if _, ok := tr.Get("usr/share"); !ok {
		t.Error("Exclude removed the parent of what it matched")
	}
	uid, fm, dm := 1000, uint32(0o600), uint32(0o700)
	ov, _ := ParsePattern("/home/app/**")
	if n := tr.Override(ov, Attrs{UID: &uid, GID: &uid, FileMode: &fm, DirMode: &dm}); n != 2 {
		t.Errorf("Override matched %d, want 2", n)
	}
	d, _ := tr.Get("home/app")
	f, _ := tr.Get("home/app/data")
	if d.UID != 1000 || d.Mode != 0o700 || f.UID != 1000 || f.GID != 1000 || f.Mode != 0o600 {
		t.Errorf("after override: dir %+v, file %+v", d, f)
	}
	if h, _ := tr.Get("home"); h.UID != 0 {
		t.Error("override reached above its pattern")
	}
}

func TestAddDir(t *testing.T) {
	src := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "etc/app"), 0o700))
	must(os.WriteFile(filepath.Join(src, "etc/app/conf"), []byte("k=v\n"), 0o600))
	must(os.WriteFile(filepath.Join(src, "run.sh"), []byte("#!/bin/sh\n"), 0o750))
	must(os.Symlink("etc/app/conf", filepath.Join(src, "conf")))
	past := time.Unix(50, 0)
	must(os.Chtimes(filepath.Join(src, "run.sh"), past, past))

	tr := NewTree(t.TempDir(), 1000)
	dg, err := tr.AddDir("dir", src, "/opt")
	if err != nil {
		t.Fatal(err)
	}
	if want, err := DirDigest("dir", src); err != nil || want != dg {
		t.Errorf("AddDir digest %s, DirDigest %s (%v)", dg, want, err)
	}
	var got []string
	for _, e := range tr.Entries() {
		got = append(got, describe(t, e.Path, e.Type, e.Mode, e.UID, e.GID, e.MTime, e.Link, 0, 0, blobPath(e)))
	}
	want := []string{
		"/ directory 0755 0:0 1000",
		"/opt directory 0755 0:0 1000",
		"/opt/conf symlink 0777 0:0 -> etc/app/conf",
		"/opt/etc directory 0755 0:0 1000",
		"/opt/etc/app directory 0755 0:0 1000",
		"/opt/etc/app/conf file 0644 0:0 1000 " + shaHex([]byte("k=v\n")),
		"/opt/run.sh file 0755 0:0 1000 " + shaHex([]byte("#!/bin/sh\n")),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tree from the directory (-want +got):\n%s", diff)
	}
	// A mode change that survives normalisation, and a content change,
	// both change the digest; a time change does not.
	must(os.Chtimes(filepath.Join(src, "etc/app/conf"), past, past))
	if d, _ := DirDigest("dir", src); d != dg {
		t.Error("an mtime change changed the digest")
	}
	must(os.Chmod(filepath.Join(src, "etc/app/conf"), 0o700))
	d2, _ := DirDigest("dir", src)
	if d2 == dg {
		t.Error("making a file executable did not change the digest")
	}
	must(os.WriteFile(filepath.Join(src, "etc/app/conf"), []byte("k=w\n"), 0o700))
	if d3, _ := DirDigest("dir", src); d3 == d2 {
		t.Error("a content change did not change the digest")
	}

	// What a directory cannot hold.
	must(os.Symlink("../../../../etc/shadow", filepath.Join(src, "etc/app/escape")))
	if _, err := NewTree(t.TempDir(), 1).AddDir("dir", src, ""); err == nil || !strings.Contains(err.Error(), `"/etc/app/escape"`) {
		t.Errorf("escaping symlink in a directory: %v", err)
	}
	must(os.Remove(filepath.Join(src, "etc/app/escape")))
	must(syscall.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	if _, err := NewTree(t.TempDir(), 1).AddDir("dir", src, ""); err == nil || !strings.Contains(err.Error(), "fifo") {
		t.Errorf("fifo in a directory: %v", err)
	}
	if _, err := DirDigest("dir", filepath.Join(src, "run.sh")); err == nil {
		t.Error("DirDigest of a file succeeded")
	}
}

// FuzzAddTar feeds arbitrary bytes to the tar and layer readers: they must
// return errors, never panic, and whatever they accept must be a tree of
// clean paths whose parents are directories and whose links stay inside.
func FuzzAddTar(f *testing.F) {
	f.Add(makeTar(f, tarEntry{name: "a/b", body: "x"}, tarEntry{name: "c", typ: tar.TypeLink, link: "a/b"}), false)
	f.Add(makeTar(f, tarEntry{name: "l", typ: tar.TypeSymlink, link: "../x"}), false)
	f.Add(makeTar(f, tarEntry{name: "d/.wh..wh..opq"}, tarEntry{name: ".wh.d"}), true)
	f.Add([]byte{0x1f, 0x8b, 0, 0}, false)
	f.Fuzz(func(t *testing.T, b []byte, layer bool) {
		tr := NewTree(t.TempDir(), 100)
		var err error
		if layer {
			err = tr.AddLayer("fuzz", bytes.NewReader(b))
		} else {
			err = tr.AddTar("fuzz", bytes.NewReader(b), "")
		}
		if err != nil {
			return
		}
		for _, e := range tr.Entries() {
			if e.Path == "" {
				continue
			}
			if path.Clean(e.Path) != e.Path || strings.HasPrefix(e.Path, "../") || strings.HasPrefix(e.Path, "/") || e.Path == ".." {
				t.Fatalf("unclean path %q", e.Path)
			}
			if p, ok := tr.Get(parentOf(e.Path)); !ok || p.Type != TypeDir {
				t.Fatalf("%q has no parent directory", e.Path)
			}
			if e.Type == TypeSymlink {
				if err := checkSymlink("fuzz", e.Path, e.Path, e.Link); err != nil {
					t.Fatalf("accepted %v", err)
				}
			}
		}
		var buf bytes.Buffer
		if _, err := tr.WriteTar(&buf); err != nil {
			t.Fatalf("WriteTar of an accepted tree: %v", err)
		}
	})
}

func parentOf(p string) string {
	d := path.Dir(p)
	if d == "." {
		return ""
	}
	return d
}
