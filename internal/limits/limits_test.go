package limits

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/units"
)

func TestSet(t *testing.T) {
	var v Values
	for _, s := range []string{"firmware=128MiB", "entries=1_000_000", "expansion=1000"} {
		if err := v.Set(s); err != nil {
			t.Fatalf("Set(%q): %v", s, err)
		}
	}
	for _, tc := range []struct {
		l    Limit
		want int64
	}{{Firmware, 128 * units.MiB}, {Entries, 1_000_000}, {Expansion, 1000}, {Kernel, Kernel.Default}} {
		if got := v.Get(tc.l); got != tc.want {
			t.Errorf("Get(%s) = %d, want %d", tc.l.Name, got, tc.want)
		}
	}
	if got, want := v.String(), "firmware=128MiB,expansion=1000,entries=1000000"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, tc := range []struct{ in, want string }{
		{"firmware", "want NAME=VALUE"},
		{"bogus=1", `unknown limit "bogus"`},
		{"entries=1MiB", "whole number"},
		{"firmware=-1", "negative"},
		{"firmware=1MiB", "given twice (128MiB, then 1MiB)"},
	} {
		err := v.Set(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Set(%q) = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
	var zero *Values
	if got := zero.Get(Document); got != Document.Default {
		t.Errorf("nil Values: Get(document) = %d, want the default %d", got, Document.Default)
	}
}

func TestErrorNamesLimitAndFlag(t *testing.T) {
	var v Values
	err := v.Check("big.fd", Firmware, 8*units.GiB)
	if !errors.Is(err, ErrExceeded) {
		t.Fatalf("Check = %v, want ErrExceeded", err)
	}
	if got, want := err.Error(), "big.fd: 8GiB is over the firmware limit of 64MiB (size of a firmware image (OVMF .fd)): if the input is trusted, raise it with --limit firmware=8GiB"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	e := &Error{What: "zstd stream of a.cpio.zst", Limit: Decompressed, Max: units.GiB, AtLeast: true}
	if got, want := e.Error(), "zstd stream of a.cpio.zst: more than 1GiB is over the decompressed limit of 1GiB"; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "--limit decompressed=2GiB") {
		t.Errorf("got %s, want it to start %q and end with --limit decompressed=2GiB", got, want)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("firmware"), 0o644); err != nil {
		t.Fatal(err)
	}
	sparse := filepath.Join(dir, "sparse")
	if err := os.WriteFile(sparse, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sparse, 8*units.GiB); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("small", link); err != nil {
		t.Fatal(err)
	}
	var v Values
	if b, err := v.ReadFile(link, Firmware); err != nil || string(b) != "firmware" {
		t.Errorf("ReadFile(symlink to small) = %q, %v; want the file", b, err)
	}
	for _, tc := range []struct {
		path, want string
		is         error
	}{
		{sparse, "over the firmware limit", ErrExceeded},
		{fifo, "is a named pipe, not a regular file", nil},
		{"/dev/zero", "is a device, not a regular file", nil},
		{dir, "is a directory, not a regular file", nil},
		{filepath.Join(dir, "missing"), "no such file", nil},
	} {
		for _, read := range []struct {
			name string
			f    func() error
		}{
			{"ReadFile", func() error { _, err := v.ReadFile(tc.path, Firmware); return err }},
			{"MapFile", func() error { _, err := v.MapFile(tc.path, Firmware); return err }},
		} {
			start := time.Now()
			err := read.f()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s(%s) = %v, want an error with %q", read.name, tc.path, err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%s(%s) = %v, want errors.Is %v", read.name, tc.path, err, tc.is)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("%s(%s) took %v: refusing must not read or block", read.name, tc.path, d)
			}
		}
	}
}

func TestRatioSuggestion(t *testing.T) {
	e := &Error{What: "zstd stream of x", Limit: Expansion, Max: 100, Got: 445}
	if got, want := e.Error(), "zstd stream of x: 445x is over the expansion limit of 100x"; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "--limit expansion=4450") {
		t.Errorf("got %s, want it to start %q and suggest --limit expansion=4450", got, want)
	}
}
