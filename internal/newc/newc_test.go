package newc

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/newc/newctest"
)

// archive writes records with u-root's newc writer (the format's other
// implementation) and a trailer.
func archive(t testing.TB, recs ...cpio.Record) []byte {
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	if err := cpio.WriteRecords(w, recs); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type entry struct {
	Header
	Content string
}

func readAll(r *Reader) ([]entry, error) {
	var out []entry
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		c, err := io.ReadAll(r)
		if err != nil {
			return out, err
		}
		out = append(out, entry{*h, string(c)})
	}
}

// TestReadsWhatUrootWrites: files, a directory, a symbolic link and a
// device node, in two archives one after another with zero padding between
// them, as an initramfs holds them.
func TestReadsWhatUrootWrites(t *testing.T) {
	first := archive(t, cpio.StaticFile("etc/hostname", "guest\n", 0o644))
	second := archive(t,
		cpio.Directory("bin", 0o755),
		cpio.StaticFile("bin/init", "#!/bin/sh\n", 0o755),
		cpio.Symlink("sbin", "bin"),
		cpio.CharDev("dev/console", 0o600, 5, 1),
	)
	stream := append(append(first, make([]byte, 512)...), second...)
	r := NewReader(bytes.NewReader(stream), "initrd", nil, limits.File)
	got, err := readAll(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []entry{
		{Header{Name: "etc/hostname", Mode: TypeReg | 0o644, Size: 6}, "guest\n"},
		{Header{Name: "bin", Mode: TypeDir | 0o755}, ""},
		{Header{Name: "bin/init", Mode: TypeReg | 0o755, Size: 10}, "#!/bin/sh\n"},
		{Header{Name: "sbin", Mode: TypeLink | 0o777, Size: 3}, "bin"},
		{Header{Name: "dev/console", Mode: TypeChr | 0o600, Rmajor: 5, Rminor: 1}, ""},
	}
	ignore := cmpopts.IgnoreFields(Header{}, "Ino", "NLink", "MTime", "Offset", "UID", "GID", "Major", "Minor")
	if d := cmp.Diff(want, got, ignore); d != "" {
		t.Errorf("entries (-want +got):\n%s", d)
	}
	if r.Archives() != 2 || r.Offset() != int64(len(stream)) {
		t.Errorf("read %d archives and %d bytes, want 2 and %d", r.Archives(), r.Offset(), len(stream))
	}
}

// TestStopsBeforeOtherData: what follows the archives and their padding
// stays unread, for the caller (an initramfs's compressed part).
func TestStopsBeforeOtherData(t *testing.T) {
	a := archive(t, cpio.StaticFile("x", "1", 0o644))
	br := bufioReader(append(append(a, 0, 0, 0, 0), "\x28\xb5\x2f\xfdrest"...))
	r := NewReader(br, "initrd", nil, limits.File)
	if _, err := readAll(r); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	if got, want := string(rest), "\x28\xb5\x2f\xfdrest"; got != want {
		t.Errorf("left %q unread, want %q", got, want)
	}
}

// TestHostileHeaders: every header is checked before what it declares is
// allocated or read, and the error names the limit and the flag.
func TestHostileHeaders(t *testing.T) {
	few := (*limits.Values)(nil).With(limits.Entries, 3)
	many := archive(t, cpio.StaticFile("a", "", 0), cpio.StaticFile("b", "", 0), cpio.StaticFile("c", "", 0), cpio.StaticFile("d", "", 0))
	cases := []struct {
		name  string
		in    []byte
		v     *limits.Values
		limit string // the limit named, or "" for another error
		want  string
	}{
		{"namesize 0xffffffff", newctest.Header(1, TypeReg|0o644, 0, 0xffffffff, "x\x00"), nil, "name", "--limit name="},
		{"name of 8 KiB", newctest.Header(1, TypeReg|0o644, 0, 8193, strings.Repeat("n", 8192)+"\x00"), nil, "name", "--limit name=8KiB"},
		{"filesize over the limit", newctest.Header(1, TypeReg|0o644, 0xffffffff, 2, "x\x00"), (*limits.Values)(nil).With(limits.File, 1<<20), "file", "--limit file="},
		{"symlink target of 4 GiB", newctest.Header(1, TypeLink|0o777, 0xffffffff, 2, "x\x00"), nil, "name", "symbolic link target"},
		{"entries", many, few, "entries", "--limit entries=6"},
		{"namesize 0", newctest.Header(1, TypeReg, 0, 0, ""), nil, "", "name size 0"},
		{"not hex", []byte(strings.Replace(string(newctest.Header(1, TypeReg, 0, 2, "x\x00")), "00000001", "0000000g", 1)), nil, "", "hex digits"},
		{"name without NUL", newctest.Header(1, TypeReg, 0, 2, "xy"), nil, "", "NUL-terminated"},
		{"truncated content", newctest.Header(1, TypeReg, 100, 2, "x\x00\x00\x00abc"), nil, "", "truncated"},
		{"truncated header", newctest.Header(1, TypeReg, 0, 2, "")[:50], nil, "", "truncated"},
		{"crc variant", []byte(MagicCRC + strings.Repeat("0", 104)), nil, "", "070702"},
		{"not cpio", []byte("hello world"), nil, "", "not a newc cpio archive"},
		{"empty", nil, nil, "", "no cpio archive"},
		{"no trailer", []byte(strings.TrimSuffix(string(archive(t, cpio.StaticFile("a", "1", 0))), "")[:120]), nil, "", "truncated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(c.in), "x.cpio", c.v, limits.File)
			_, err := readAll(r)
			var le *limits.Error
			switch {
			case err == nil:
				t.Fatalf("no error, want one containing %q", c.want)
			case c.limit != "" && (!errors.As(err, &le) || le.Limit.Name != c.limit):
				t.Errorf("error %v, want a *limits.Error for %q", err, c.limit)
			case c.limit == "" && errors.Is(err, limits.ErrExceeded):
				t.Errorf("error %v is a limit, want another error", err)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "x.cpio") {
				t.Errorf("error %q lacks %q or the input's name", err, c.want)
			}
			if r.Offset() > 8300 {
				t.Errorf("read %d bytes before the error", r.Offset())
			}
		})
	}
}

func FuzzReader(f *testing.F) {
	f.Add(archive(f, cpio.StaticFile("etc/hostname", "guest\n", 0o644), cpio.Symlink("sbin", "bin")))
	f.Add(newctest.Header(1, TypeReg|0o644, 0, 0xffffffff, "x\x00"))
	f.Add(newctest.Header(1, TypeReg|0o644, 0xffffffff, 2, "x\x00\x00\x00"))
	f.Add(newctest.Header(1, TypeLink|0o777, 0x7fffffff, 2, "x\x00\x00\x00"))
	f.Add(append(archive(f, cpio.StaticFile("a", "1", 0)), make([]byte, 9)...))
	f.Add(archive(f, cpio.StaticFile("a", "1", 0))[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		v := (*limits.Values)(nil).With(limits.File, 1<<16).With(limits.Entries, 100).With(limits.NameLen, 256)
		r := NewReader(bytes.NewReader(b), "fuzz", v, limits.File)
		n := 0
		for {
			h, err := r.Next()
			if err != nil {
				break
			}
			n++
			if len(h.Name) > 256 || h.Size > 1<<16 || n > 100 {
				t.Fatalf("entry %d: name of %d bytes, size %d passed the limits", n, len(h.Name), h.Size)
			}
			c, _ := io.ReadAll(r)
			if int64(len(c)) > h.Size {
				t.Fatalf("%d bytes of content, header says %d", len(c), h.Size)
			}
		}
		if r.Offset() > int64(len(b)) {
			t.Fatalf("consumed %d bytes of %d", r.Offset(), len(b))
		}
	})
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
