package decompress

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// compress compresses b with a Go writer for f (gzip, zstd or xz).
func compress(t testing.TB, f Format, b []byte) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch f {
	case Gzip:
		w = gzip.NewWriter(&buf)
	case Zstd:
		w, err = zstd.NewWriter(&buf)
	case XZ:
		w, err = xz.NewWriter(&buf)
	default:
		t.Fatalf("no Go writer for %s", f)
	}
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte  { return compress(t, Gzip, b) }
func zst(t testing.TB, b []byte) []byte { return compress(t, Zstd, b) }
func xzc(t testing.TB, b []byte) []byte { return compress(t, XZ, b) }

// bz2 compresses with the bzip2 tool (Go has no bzip2 writer).
func bz2(t testing.TB, b []byte) []byte {
	cmd := exec.Command(testenv.Tool(t, "bzip2", "bzip2"), "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bzip2: %v", err)
	}
	return out
}

func TestOpen(t *testing.T) {
	plain := []byte(strings.Repeat("cocobuild ", 1000))
	cases := []struct {
		name string
		in   []byte
		want Format
	}{
		{"plain", plain, None},
		{"gzip", gz(t, plain), Gzip},
		{"zstd", zst(t, plain), Zstd},
		{"xz", xzc(t, plain), XZ},
		{"empty", nil, None},
		{"bzip2", nil, Bzip2}, // made in the subtest: it needs the tool
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want == Bzip2 {
				c.in = bz2(t, plain)
			}
			want := plain
			if c.in == nil {
				want = []byte{}
			}
			if got := Sniff(c.in); got != c.want {
				t.Errorf("Sniff = %q, want %q", got, c.want)
			}
			// Exactly the limit is fine.
			got, f, err := ReadAll(bytes.NewReader(c.in), int64(len(want)))
			if err != nil {
				t.Fatalf("ReadAll with limit %d: %v", len(want), err)
			}
			if f != c.want || !bytes.Equal(got, want) {
				t.Errorf("ReadAll = %d bytes of %q, want %d bytes of %q", len(got), f, len(want), c.want)
			}
			if len(want) == 0 {
				return
			}
			// One byte less is an error, not a shorter result.
			got, _, err = ReadAll(bytes.NewReader(c.in), int64(len(want)-1))
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("ReadAll with limit %d: got %d bytes, error %v, want ErrTooLarge", len(want)-1, len(got), err)
			}
			var tl *TooLargeError
			if !errors.As(err, &tl) || tl.Limit != int64(len(want)-1) || tl.Format != c.want {
				t.Errorf("error %v: got %+v, want a TooLargeError for %s with limit %d", err, tl, c.want, len(want)-1)
			}
		})
	}
}

// TestReaderStopsAtLimit reads through Open's reader: the bytes up to the
// limit come out, then the error (and it stays).
func TestReaderStopsAtLimit(t *testing.T) {
	plain := bytes.Repeat([]byte{'x'}, 100)
	rc, _, err := Open(bytes.NewReader(gz(t, plain)), 60)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if len(got) != 60 || !errors.Is(err, ErrTooLarge) {
		t.Errorf("got %d bytes and %v, want 60 bytes and ErrTooLarge", len(got), err)
	}
	if n, err := rc.Read(make([]byte, 10)); n != 0 || !errors.Is(err, ErrTooLarge) {
		t.Errorf("read after the error: got %d, %v, want 0, ErrTooLarge", n, err)
	}
}

func TestCorrupt(t *testing.T) {
	b := gz(t, []byte(strings.Repeat("abc", 100)))
	b = b[:len(b)-6] // cut the trailer
	_, f, err := ReadAll(bytes.NewReader(b), 1<<20)
	if err == nil || errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("truncated %s: got error %v, want a gzip error", f, err)
	}
	if _, err := NewReader(bytes.NewReader(nil), "lzma", 1); err == nil {
		t.Error("NewReader with an unknown format: got no error")
	}
}

func FuzzOpen(f *testing.F) {
	plain := []byte(strings.Repeat("fuzz", 64))
	f.Add(plain, int64(100))
	f.Add(gz(f, plain), int64(300))
	f.Add(zst(f, plain), int64(10))
	f.Add(xzc(f, plain), int64(256))
	f.Add([]byte("BZh91AY&SY"), int64(1000))
	f.Fuzz(func(t *testing.T, b []byte, limit int64) {
		if limit < 0 || limit > 1<<20 {
			limit = 1 << 20
		}
		got, fm, err := ReadAll(bytes.NewReader(b), limit)
		if int64(len(got)) > limit {
			t.Fatalf("%s: %d bytes out with limit %d", fm, len(got), limit)
		}
		if fm != Sniff(b) {
			t.Errorf("ReadAll format %q, Sniff %q", fm, Sniff(b))
		}
		if fm == None {
			want := b
			if int64(len(b)) > limit {
				want = nil
				if !errors.Is(err, ErrTooLarge) {
					t.Errorf("%d plain bytes with limit %d: error %v, want ErrTooLarge", len(b), limit, err)
				}
			} else if err != nil {
				t.Errorf("plain bytes: %v", err)
			}
			if want != nil && !bytes.Equal(got, want) {
				t.Errorf("plain bytes changed")
			}
		}
	})
}
