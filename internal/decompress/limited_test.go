package decompress_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
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
	f.Add(bytes.Repeat(withDict(f, decompresstest.Compress(f, decompress.XZ, plain), 28), 4)) // 64 MiB dictionaries for 256 bytes each
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

// lowEntropy is n bytes from a small alphabet: they compress a few times,
// as real kernels and archives do (well under the expansion limit).
func lowEntropy(n int) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{2}))
	b := make([]byte, n)
	for i := range b {
		b[i] = "abcdefgh"[r.IntN(8)]
	}
	return b
}

// allocated returns what f allocated on the heap, in bytes.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestReadAllLimited: streams held in memory come back whole, into one
// buffer sized from the size they declare (gzip's ISIZE, zstd's frame
// content size), so that decompressing n bytes allocates about n bytes
// (io.ReadAll's doubling buffer allocated 2-3n); a size that is not
// declared is read in chunks.
func TestReadAllLimited(t *testing.T) {
	plain := lowEntropy(24 << 20)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		f        decompress.Format
		in       []byte
		maxAlloc uint64 // beyond the output's own 24 MiB
	}{
		{decompress.Gzip, decompresstest.Compress(t, decompress.Gzip, plain), 1 << 20},
		{decompress.Zstd, enc.EncodeAll(plain, nil), 12 << 20},                                 // the decoder's window
		{decompress.Zstd, decompresstest.Compress(t, decompress.Zstd, plain), 12<<20 + 24<<20}, // streamed: no size, chunks joined
		{decompress.None, plain, 1 << 20},
	}
	for _, c := range cases {
		t.Run(string(c.f), func(t *testing.T) {
			var got []byte
			var f decompress.Format
			var err error
			n := allocated(func() {
				got, f, err = decompress.ReadAllLimited(c.in, "k", nil, limits.Kernel)
			})
			if err != nil || f != c.f || !bytes.Equal(got, plain) {
				t.Fatalf("got %d bytes, format %s, error %v; want the %d bytes back from %s", len(got), f, err, len(plain), c.f)
			}
			if want := uint64(len(plain)) + c.maxAlloc; n > want {
				t.Errorf("allocated %d MiB for %d MiB out, want at most %d MiB", n>>20, len(plain)>>20, want>>20)
			}
		})
	}
}

// TestReadAllLimitedHostile: a bomb stops on its expansion ratio having
// allocated little, a declared size that lies (4 GiB in a 100-byte gzip
// stream) is not allocated, and output over the caller's limit names it.
func TestReadAllLimitedHostile(t *testing.T) {
	lying := decompresstest.Compress(t, decompress.Gzip, []byte("short"))
	binary.LittleEndian.PutUint32(lying[len(lying)-4:], 0xffffffff)
	cases := []struct {
		name     string
		in       []byte
		v        *limits.Values
		want     string
		maxAlloc uint64
	}{
		{"gzip bomb", decompresstest.Bomb(t, decompress.Gzip, nil, gib, nil), nil, "--limit expansion=", 48 << 20},
		{"zstd bomb", decompresstest.Bomb(t, decompress.Zstd, nil, gib, nil), nil, "--limit expansion=", 48 << 20},
		{"lying ISIZE", lying, nil, "gzip", 20 << 20},
		// Its last 4 bytes, read as ISIZE, may say anything up to what
		// 4000 bytes may expand to unchecked (ExpansionFloor).
		{"truncated gzip", decompresstest.Compress(t, decompress.Gzip, lowEntropy(1<<20))[:4000], nil, "gzip: unexpected EOF", 18 << 20},
		{"truncated zstd", decompresstest.Compress(t, decompress.Zstd, lowEntropy(1<<20))[:4000], nil, "zstd", 4 << 20},
		{"over the kernel limit", decompresstest.Compress(t, decompress.Gzip, lowEntropy(3<<20)), (*limits.Values)(nil).With(limits.Kernel, 2<<20),
			"gzip stream of k: more than 2MiB is over the kernel limit of 2MiB (size of a kernel image (bzImage, vmlinuz, UKI)): if the input is trusted, raise it with --limit kernel=4MiB", 8 << 20},
		{"plain over the kernel limit", lowEntropy(3 << 20), (*limits.Values)(nil).With(limits.Kernel, 2<<20), "--limit kernel=3MiB", 1 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			var err error
			n := allocated(func() { _, _, err = decompress.ReadAllLimited(c.in, "k", c.v, limits.Kernel) })
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %v, want < 2s", took)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one with %q", err, c.want)
			}
			if n > c.maxAlloc {
				t.Errorf("allocated %d MiB, want at most %d MiB", n>>20, c.maxAlloc>>20)
			}
		})
	}
}
