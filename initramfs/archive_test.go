package initramfs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/decompress"
	"github.com/cocobuild/cocobuild/internal/decompress/decompresstest"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/newc"
)

func sha(b string) string {
	s := sha256.Sum256([]byte(b))
	return hex.EncodeToString(s[:])
}

func TestCleanName(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"/etc/hostname", "etc/hostname", ""},
		{"etc//x/", "etc/x", ""},
		{"./a/./b", "a/b", ""},
		{"/", "", "is the root"},
		{"", "", "empty"},
		{"/a/../../etc", "", ".."},
		{"a\x00b", "", "NUL"},
	}
	for _, tc := range tests {
		got, err := cleanName(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("cleanName(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// sampleTree has one entry of each type, in no particular order, with
// parents left implicit.
func sampleTree() *tree {
	t := newTree()
	for _, e := range []*entry{
		{name: "usr/bin/agent", mode: newc.TypeReg | 0o755, data: []byte("\x7fELF agent")},
		{name: "etc/hostname", mode: newc.TypeReg | 0o644, data: []byte("guest\n")},
		{name: "bin/uinit", mode: newc.TypeLink | 0o777, data: []byte("/usr/bin/agent")},
		{name: "dev/console", mode: newc.TypeChr | 0o600, rmajor: 5, rminor: 1},
		{name: "dev/vda", mode: newc.TypeBlk | 0o600, rmajor: 254, rminor: 0},
		{name: "tmp", mode: newc.TypeDir | 0o1777},
		{name: "empty", mode: newc.TypeReg | 0o644},
	} {
		if err := t.add(e, false); err != nil {
			panic(err)
		}
	}
	return t
}

func sampleEntries(epoch uint64) []Entry {
	e := func(name, typ, mode string, size uint64, sum, link string, major, minor uint64) Entry {
		return Entry{Name: name, Type: typ, Mode: mode, Size: size, MTime: epoch, SHA256: sum, Link: link, Major: major, Minor: minor}
	}
	return []Entry{
		e("bin", "dir", "0755", 0, "", "", 0, 0),
		e("bin/uinit", "symlink", "0777", 14, "", "/usr/bin/agent", 0, 0),
		e("dev", "dir", "0755", 0, "", "", 0, 0),
		e("dev/console", "char", "0600", 0, "", "", 5, 1),
		e("dev/vda", "block", "0600", 0, "", "", 254, 0),
		e("empty", "file", "0644", 0, sha(""), "", 0, 0),
		e("etc", "dir", "0755", 0, "", "", 0, 0),
		e("etc/hostname", "file", "0644", 6, sha("guest\n"), "", 0, 0),
		e("tmp", "dir", "1777", 0, "", "", 0, 0),
		e("usr", "dir", "0755", 0, "", "", 0, 0),
		e("usr/bin", "dir", "0755", 0, "", "", 0, 0),
		e("usr/bin/agent", "file", "0755", 10, sha("\x7fELF agent"), "", 0, 0),
	}
}

func TestWriteAndInspect(t *testing.T) {
	const epoch = 1700000000
	for _, c := range Compressions {
		t.Run(c, func(t *testing.T) {
			var raw, out, again bytes.Buffer
			if err := sampleTree().writeCPIO(&raw, epoch); err != nil {
				t.Fatal(err)
			}
			if err := compress(&out, raw.Bytes(), c); err != nil {
				t.Fatal(err)
			}
			if err := compress(&again, raw.Bytes(), c); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), again.Bytes()) {
				t.Errorf("%s: two compressions of the same archive differ", c)
			}
			if got := compressionOf(out.Bytes()); got != c {
				t.Errorf("compressionOf = %q, want %q", got, c)
			}
			l, err := Inspect(out.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sampleEntries(epoch), l.Entries); diff != "" {
				t.Errorf("Inspect entries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{c}, l.Segments); diff != "" {
				t.Errorf("segments (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCPIOTool checks that GNU cpio reads what writeCPIO writes.
func TestCPIOTool(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio not installed (apt-get install cpio); the QEMU test checks with it")
	}
	var raw bytes.Buffer
	if err := sampleTree().writeCPIO(&raw, 0); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "-t", "--quiet")
	cmd.Stdin = &raw
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -t: %v", err)
	}
	var want []string
	for _, e := range sampleEntries(0) {
		want = append(want, e.Name)
	}
	if diff := cmp.Diff(want, strings.Fields(string(out))); diff != "" {
		t.Errorf("cpio -t names (-want +got):\n%s", diff)
	}
}

func TestTreeErrors(t *testing.T) {
	tr := newTree()
	tr.add(&entry{name: "etc", mode: newc.TypeReg | 0o644, origin: "A"}, false)
	if err := tr.add(&entry{name: "etc", mode: newc.TypeReg, origin: "B"}, false); err == nil || !strings.Contains(err.Error(), "by A and by B") {
		t.Errorf("duplicate add: %v, want an error naming both origins", err)
	}
	tr.add(&entry{name: "etc/hostname", mode: newc.TypeReg | 0o644, origin: "C"}, false)
	if _, err := tr.records(0); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file under a file: %v, want a not-a-directory error", err)
	}
	// Two directories of one name merge; the later mode wins.
	tr = newTree()
	tr.add(&entry{name: "tmp", mode: newc.TypeDir | 0o755}, false)
	if err := tr.add(&entry{name: "tmp", mode: newc.TypeDir | 0o1777}, false); err != nil {
		t.Fatal(err)
	}
	if got := tr.entries["tmp"].mode; got != newc.TypeDir|0o1777 {
		t.Errorf("merged directory mode %o, want %o", got, newc.TypeDir|0o1777)
	}
}

func TestInspectConcatenated(t *testing.T) {
	var first, second, zst bytes.Buffer
	a := newTree()
	a.add(&entry{name: "kernel/x86/microcode/GenuineIntel.bin", mode: newc.TypeReg | 0o644, data: []byte("ucode")}, false)
	if err := a.writeCPIO(&first, 0); err != nil {
		t.Fatal(err)
	}
	first.Write(make([]byte, 512-first.Len()%512)) // padding as GNU cpio writes it
	if err := sampleTree().writeCPIO(&second, 0); err != nil {
		t.Fatal(err)
	}
	if err := compress(&zst, second.Bytes(), "zstd"); err != nil {
		t.Fatal(err)
	}
	l, err := Inspect(append(first.Bytes(), zst.Bytes()...))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"none", "zstd"}, l.Segments); diff != "" {
		t.Errorf("segments (-want +got):\n%s", diff)
	}
	if got, want := len(l.Entries), 4+len(sampleEntries(0)); got != want {
		t.Errorf("%d entries, want %d", got, want)
	}
}

func TestInspectErrors(t *testing.T) {
	var raw bytes.Buffer
	if err := sampleTree().writeCPIO(&raw, 0); err != nil {
		t.Fatal(err)
	}
	b := raw.Bytes()
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"zeros", make([]byte, 100), "empty"},
		{"garbage", []byte("hello world"), "not a cpio archive"},
		{"truncated", b[:len(b)/2], ""},
		{"no trailer", b[:bytes.Index(b, []byte("TRAILER!!!"))-110], "TRAILER"},
		{"bad gzip", []byte{0x1f, 0x8b, 1, 2, 3}, "gzip"},
		{"crc", []byte("070702"), "070702"},
	}
	for _, tc := range tests {
		_, err := Inspect(tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Inspect(%s): error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// rawHeader is a newc header as a hostile input may have it: any size and
// name size, followed by name.
func rawHeader(mode, size, nameSize uint64, name string) []byte {
	s := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, nameSize, 0)
	return append([]byte(s), name...)
}

// TestInspectHostile: bombs and hostile headers fail at once with an
// error that names the limit and the flag that raises it.
func TestInspectHostile(t *testing.T) {
	cpioHead := rawHeader(newc.TypeReg|0o644, 1<<30, 8, "big.img\x00\x00\x00")
	cases := []struct {
		name, limit, want string
		b                 []byte
	}{
		{"namesize 0xffffffff", "name", "--limit name=", rawHeader(newc.TypeReg|0o644, 0, 0xffffffff, "x\x00")},
		{"zstd zeros", "expansion", "zstd stream of initramfs", decompresstest.Bomb(t, decompress.Zstd, nil, 1<<30, nil)},
		{"gzip zeros", "expansion", "gzip stream of initramfs", decompresstest.Bomb(t, decompress.Gzip, nil, 1<<30, nil)},
		{"xz zeros", "expansion", "xz stream of initramfs", decompresstest.Bomb(t, decompress.XZ, nil, 1<<30, nil)},
		{"zstd cpio of a GiB file", "expansion", "--limit expansion=", decompresstest.Bomb(t, decompress.Zstd, cpioHead, 1<<30, nil)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := Inspect(c.b)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %v, want < 2s", took)
			}
			var le *limits.Error
			if !errors.As(err, &le) || le.Limit.Name != c.limit || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v; want a *limits.Error for %s containing %q", err, c.limit, c.want)
			}
		})
	}
}

// TestWriteTextEscapes: entry names and link targets that would set the
// terminal's title or clear it are printed escaped.
func TestWriteTextEscapes(t *testing.T) {
	l := &Listing{Segments: []string{"none"}, Entries: []Entry{
		{Name: "a\x1b]0;pwned\a", Type: "file", Mode: "0644"},
		{Name: "l", Type: "symlink", Mode: "0777", Link: "\x1b[2J"},
	}}
	var buf bytes.Buffer
	if err := l.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.ContainsAny(out, "\x1b\a") {
		t.Errorf("WriteText printed raw ESC or BEL:\n%q", out)
	}
	for _, want := range []string{`a\x1b]0;pwned\x07`, `l -> \x1b[2J`} {
		if !strings.Contains(out, want) {
			t.Errorf("WriteText output lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteText(t *testing.T) {
	l := &Listing{Segments: []string{"zstd"}, Entries: sampleEntries(0)}
	var buf bytes.Buffer
	if err := l.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"# 12 entries; archives: zstd",
		"Lrwxrwxrwx 0/0        14 -",
		"bin/uinit -> /usr/bin/agent",
		"Dcrw------- 0/0         0 -",
		"dev/console (5,1)",
		"dtrwxrwxrwx 0/0",
		"-rwxr-xr-x 0/0        10 " + sha("\x7fELF agent") + " usr/bin/agent",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("WriteText output lacks %q:\n%s", want, out)
		}
	}
}

func FuzzInspect(f *testing.F) {
	var raw bytes.Buffer
	sampleTree().writeCPIO(&raw, 0)
	f.Add(raw.Bytes())
	for _, c := range []string{"gzip", "zstd", "xz"} {
		var z bytes.Buffer
		compress(&z, raw.Bytes(), c)
		f.Add(z.Bytes())
	}
	f.Add([]byte("070701"))
	// Hostile shapes: a name size of 4 GiB, a file size of 4 GiB, a bomb
	// of zeros, zstd inside gzip, a truncated stream.
	f.Add(rawHeader(newc.TypeReg|0o644, 0, 0xffffffff, "x\x00"))
	f.Add(rawHeader(newc.TypeReg|0o644, 0xffffffff, 2, "x\x00\x00\x00"))
	f.Add(decompresstest.Bomb(f, decompress.Zstd, rawHeader(newc.TypeReg|0o644, 64<<20, 2, "x\x00\x00\x00"), 64<<20, nil))
	f.Add(decompresstest.Compress(f, decompress.Gzip, decompresstest.Compress(f, decompress.Zstd, raw.Bytes())))
	f.Add(raw.Bytes()[:raw.Len()/2])
	// Small limits keep each run fast: coverage instrumentation slows
	// decompression many times over.
	v := (*limits.Values)(nil).With(limits.Decompressed, 64<<10).With(limits.Entries, 1000)
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := InspectReader(bytes.NewReader(b), "fuzz", v) // decompression bombs stop at 64 KiB
		if err == nil && len(l.Segments) == 0 {
			t.Error("Inspect succeeded without a segment")
		}
		if err == nil && len(l.Entries) > 1000 {
			t.Errorf("%d entries passed the limit of 1000", len(l.Entries))
		}
	})
}
