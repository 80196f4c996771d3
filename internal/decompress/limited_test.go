package decompress_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/cocobuild/cocobuild/internal/decompress"
	"github.com/cocobuild/cocobuild/internal/decompress/decompresstest"
	"github.com/cocobuild/cocobuild/internal/limits"
)

const gib = 1 << 30

// TestOpenLimitedBombs: a GiB of zeros in a stream of some KiB fails on
// its expansion ratio once it passed 16 MiB, at once, with an error that
// names the stream and the flag; with the ratio raised, the byte limit
// stops it.
func TestOpenLimitedBombs(t *testing.T) {
	for _, f := range []decompress.Format{decompress.Gzip, decompress.Zstd, decompress.XZ} {
		bomb := decompresstest.Bomb(t, f, nil, gib, nil)
		cases := []struct {
			name   string
			v      *limits.Values
			limit  limits.Limit
			flag   string
			maxOut int64
		}{
			{"defaults", nil, limits.Expansion, "--limit expansion=", 17 << 20},
			{"ratio raised", (*limits.Values)(nil).With(limits.Expansion, 1<<40).With(limits.Decompressed, 64<<20),
				limits.Decompressed, "--limit decompressed=128MiB", 64 << 20},
		}
		for _, c := range cases {
			t.Run(string(f)+"/"+c.name, func(t *testing.T) {
				start := time.Now()
				rc, got, err := decompress.OpenLimited(bytes.NewReader(bomb), "bomb.cpio", c.v)
				if err != nil {
					t.Fatal(err)
				}
				defer rc.Close()
				n, err := io.Copy(io.Discard, rc)
				if took := time.Since(start); took > 2*time.Second {
					t.Errorf("took %v, want < 2s", took)
				}
				if got != f {
					t.Errorf("format %s, want %s", got, f)
				}
				var le *limits.Error
				if !errors.As(err, &le) || le.Limit.Name != c.limit.Name || !errors.Is(err, limits.ErrExceeded) {
					t.Fatalf("read %d bytes, error %v; want a *limits.Error for %s", n, err, c.limit.Name)
				}
				for _, want := range []string{string(f) + " stream of bomb.cpio", c.flag} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				if n > c.maxOut {
					t.Errorf("%d bytes came out before the error, want at most %d", n, c.maxOut)
				}
			})
		}
	}
}

// TestOpenLimitedRealData: data that compresses as real archives do
// passes the expansion check past 16 MiB, and what is not compressed is
// not bounded by the decompressed limit.
func TestOpenLimitedRealData(t *testing.T) {
	r := rand.New(rand.NewChaCha8([32]byte{1}))
	plain := make([]byte, 17<<20)
	for i := range plain {
		// Bytes from a small alphabet: compresses a few times, like text.
		plain[i] = "abcdefgh"[r.IntN(8)]
	}
	for _, f := range []decompress.Format{decompress.Gzip, decompress.Zstd, decompress.None} {
		t.Run(string(f), func(t *testing.T) {
			in := plain
			if f != decompress.None {
				in = decompresstest.Compress(t, f, plain)
			}
			v := (*limits.Values)(nil).With(limits.Decompressed, 17<<20)
			if f == decompress.None {
				v = v.With(limits.Decompressed, 1<<20)
			}
			rc, _, err := decompress.OpenLimited(bytes.NewReader(in), "real", v)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, plain) {
				t.Errorf("got %d bytes, error %v; want the %d bytes back", len(got), err, len(plain))
			}
		})
	}
}

// FuzzOpenLimited: any bytes, with small limits: what comes out stays
// within the decompressed limit, and a bomb stops on a *limits.Error.
func FuzzOpenLimited(f *testing.F) {
	plain := []byte(strings.Repeat("fuzz", 64))
	for _, c := range []decompress.Format{decompress.Gzip, decompress.Zstd, decompress.XZ} {
		f.Add(decompresstest.Compress(f, c, plain))
		f.Add(decompresstest.Bomb(f, c, nil, 8<<20, nil))
		f.Add(decompresstest.Compress(f, c, plain)[:12]) // truncated
	}
	f.Add(decompresstest.Compress(f, decompress.Gzip, decompresstest.Compress(f, decompress.Zstd, plain))) // zstd inside gzip
	f.Add([]byte("BZh91AY&SY"))
	f.Add(bytes.Repeat(withDict(f, decompresstest.Compress(f, decompress.XZ, plain), 36), 4)) // 1 GiB dictionaries
	// xz with a 4 KiB dictionary, within the fuzz limit.
	var small bytes.Buffer
	w, err := xz.WriterConfig{DictCap: 4 << 10, CheckSum: xz.CRC32}.NewWriter(&small)
	if err != nil {
		f.Fatal(err)
	}
	w.Write(plain)
	w.Close()
	f.Add(small.Bytes())
	f.Add(append(append(small.Bytes(), 0, 0, 0, 0), small.Bytes()...))
	// A small limit keeps each run fast (coverage instrumentation slows
	// decompression many times over).
	v := (*limits.Values)(nil).With(limits.Decompressed, 64<<10)
	f.Fuzz(func(t *testing.T, b []byte) {
		rc, fm, err := decompress.OpenLimited(bytes.NewReader(b), "fuzz", v)
		if err != nil {
			return
		}
		defer rc.Close()
		n, err := io.Copy(io.Discard, rc)
		if fm != decompress.None && n > 64<<10 {
			t.Fatalf("%s: %d bytes out with a limit of 64 KiB (error %v)", fm, n, err)
		}
		if fm == decompress.None && (n != int64(len(b)) || err != nil) {
			t.Fatalf("plain bytes: %d of %d out, error %v", n, len(b), err)
		}
	})
}

// TestOpenLimitedDeclaredSize: a zstd frame that declares more content (a
// larger window) than the decompressed limit fails on that limit before
// it is decoded.
func TestOpenLimitedDeclaredSize(t *testing.T) {
	frame := decompresstest.Compress(t, decompress.Zstd, make([]byte, 4<<20))
	v := (*limits.Values)(nil).With(limits.Decompressed, 1<<20)
	rc, _, err := decompress.OpenLimited(bytes.NewReader(frame), "one.zst", v)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	var le *limits.Error
	if !errors.As(err, &le) || le.Limit.Name != "decompressed" || !strings.Contains(err.Error(), "zstd stream of one.zst") {
		t.Errorf("read %d bytes, error %v; want the decompressed limit for the zstd stream of one.zst", n, err)
	}
}
