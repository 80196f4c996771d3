// Package decompresstest builds compressed streams for tests of readers of
// untrusted inputs: decompression bombs (a small stream that expands to
// gigabytes of zeros), made in milliseconds without compressing gigabytes,
// as concatenated frames (gzip members, zstd frames, xz streams), which
// every reader of these formats reads as one stream.
package decompresstest

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/cocobuild/cocobuild/internal/decompress"
)

// Compress compresses b in format f (gzip, zstd or xz) with Go's writers.
func Compress(t testing.TB, f decompress.Format, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch f {
	case decompress.Gzip:
		w, err = gzip.NewWriterLevel(&buf, gzip.BestCompression)
	case decompress.Zstd:
		w, err = zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	case decompress.XZ:
		w, err = xz.NewWriter(&buf)
	default:
		t.Fatalf("decompresstest: no Go writer for %s", f)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// chunk is the zeros one repeated frame holds.
const chunk = 4 << 20

// Bomb returns a stream in format f of prefix, then zeros zero bytes, then
// suffix: prefix's frame, the zeros as repeated frames of 4 MiB of zeros
// (one compressed once), and suffix's frame. A GiB of zeros takes some
// tens of KiB (zstd, xz) or a MiB (gzip).
func Bomb(t testing.TB, f decompress.Format, prefix []byte, zeros int64, suffix []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if len(prefix) > 0 {
		out.Write(Compress(t, f, prefix))
	}
	if zeros > 0 {
		full := Compress(t, f, make([]byte, chunk))
		for ; zeros >= chunk; zeros -= chunk {
			out.Write(full)
		}
		if zeros > 0 {
			out.Write(Compress(t, f, make([]byte, zeros)))
		}
	}
	if len(suffix) > 0 {
		out.Write(Compress(t, f, suffix))
	}
	return out.Bytes()
}
