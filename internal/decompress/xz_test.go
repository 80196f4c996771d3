package decompress_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/decompress"
	"github.com/cocobuild/cocobuild/internal/decompress/decompresstest"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestXZLikeTheTool: what xz(1) writes (every check type, several blocks,
// several streams with stream padding) reads back as the tool's input.
func TestXZLikeTheTool(t *testing.T) {
	tool := testenv.Tool(t, "xz", "xz-utils")
	plain := []byte(strings.Repeat("cocobuild initramfs 0123456789\n", 40000))
	xzc := func(args ...string) []byte {
		cmd := exec.Command(tool, append([]string{"-c"}, args...)...)
		cmd.Stdin = bytes.NewReader(plain)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("xz %v: %v", args, err)
		}
		return out
	}
	cases := map[string][]byte{
		"crc32 dict 1MiB (the kernel's)":    xzc("--check=crc32", "--lzma2=dict=1MiB"),
		"crc64 -6":                          xzc("-6"),
		"sha256":                            xzc("--check=sha256"),
		"none":                              xzc("--check=none"),
		"blocks of 64KiB":                   xzc("--block-size=65536"),
		"blocks of 4KiB stating their size": xzc("-T2", "--block-size=4096"),
		"two streams and padding":           append(append(xzc(), 0, 0, 0, 0), xzc()...),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			want := plain
			if name == "two streams and padding" {
				want = append(append([]byte{}, plain...), plain...)
			}
			rc, f, err := decompress.OpenLimited(bytes.NewReader(b), "x.xz", nil)
			if err != nil || f != decompress.XZ {
				t.Fatalf("format %s, error %v", f, err)
			}
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("read %d bytes, error %v; want the %d bytes xz was given", len(got), err, len(want))
			}
		})
	}
	// Corruption is an error, not other bytes.
	b := xzc("--check=crc32")
	b[len(b)/2] ^= 0xff
	rc, _, _ := decompress.OpenLimited(bytes.NewReader(b), "x.xz", nil)
	if got, err := io.ReadAll(rc); err == nil {
		t.Errorf("a corrupt stream read as %d bytes without an error", len(got))
	}
}

// withDict rewrites the dictionary size of each block header of an xz
// stream written by Go's writer (one block) to code (36: 1 GiB).
func withDict(t testing.TB, b []byte, code byte) []byte {
	b = append([]byte{}, b...)
	h := b[12 : 12+(int(b[12])+1)*4]
	i := bytes.Index(h, []byte{0x21, 0x01})
	if i < 0 {
		t.Fatal("no LZMA2 filter in the block header")
	}
	h[i+2] = code
	binary.LittleEndian.PutUint32(h[len(h)-4:], crc32.ChecksumIEEE(h[:len(h)-4]))
	return b
}

// TestXZDictionaryBomb: eight streams of some dozen bytes, each declaring
// a dictionary of 1 GiB, fail before a dictionary is allocated (the xz
// package's reader took 9 s and 2.1 GB for this 512-byte file).
func TestXZDictionaryBomb(t *testing.T) {
	one := withDict(t, decompresstest.Compress(t, decompress.XZ, []byte("070701")), 36)
	bomb := bytes.Repeat(one, 8)
	for _, c := range []struct {
		name  string
		v     *limits.Values
		limit string
	}{
		{"over the decompressed limit", (*limits.Values)(nil).With(limits.Decompressed, 512<<20), "decompressed"},
		{"over 64 MiB", nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			rc, _, err := decompress.OpenLimited(bytes.NewReader(bomb), "bomb.xz", c.v)
			if err == nil {
				_, err = io.ReadAll(rc)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %v", took)
			}
			var le *limits.Error
			switch {
			case err == nil:
				t.Fatal("no error")
			case c.limit != "" && (!errors.As(err, &le) || le.Limit.Name != c.limit):
				t.Errorf("error %v, want the %s limit", err, c.limit)
			case c.limit == "" && !strings.Contains(err.Error(), "dictionary of 1024 MiB"):
				t.Errorf("error %v, want one naming the 1024 MiB dictionary", err)
			}
		})
	}
}

// TestXZManyDictionaries: 2,000 streams of 4 KiB of zeros, each declaring a
// 64 MiB dictionary (a 184 KB file), fail at the ninth, past the
// XZFreeDicts allowance: each dictionary is allocated and zeroed whole (it
// took 35 s and 344 MB); a header that states a block's size is held to it.
func TestXZManyDictionaries(t *testing.T) {
	one := withDict(t, decompresstest.Compress(t, decompress.XZ, make([]byte, 4096)), 28) // 64 MiB
	bomb := bytes.Repeat(one, 2000)
	var err error
	testenv.Fast(t, 2*time.Second, func() {
		rc, _, oerr := decompress.OpenLimited(bytes.NewReader(bomb), "dicts.xz", nil)
		if oerr != nil {
			t.Fatal(oerr)
		}
		_, err = io.Copy(io.Discard, rc)
	})
	if err == nil || !strings.Contains(err.Error(), "stream 9, block 1 declares a dictionary of 65536 KiB after 524288 KiB of dictionaries for 32 KiB of data") {
		t.Errorf("error %v, want the ninth stream's dictionary refused", err)
	}
}

// TestXZConcatenatedStreams: files that cat makes of xz's own streams of
// small files (a segmented initrd; xz -9 -c a b), each stream declaring its
// level's whole dictionary however little it holds, read back as xz -d
// reads them: up to XZFreeDicts streams of xz -9, and 64 of the default
// -6 (a review found that 2 of -9 and 9 of -6 were refused).
func TestXZConcatenatedStreams(t *testing.T) {
	tool := testenv.Tool(t, "xz", "xz-utils")
	for _, c := range []struct {
		level string
		n     int
	}{{"-9", 2}, {"-9", decompress.XZFreeDicts}, {"-6", 9}, {"-6", 64}} {
		t.Run(fmt.Sprintf("%d of xz %s", c.n, c.level), func(t *testing.T) {
			var file, want []byte
			for i := range c.n {
				plain := []byte(fmt.Sprintf("070701 segment %d\n", i))
				cmd := exec.Command(tool, c.level, "-c")
				cmd.Stdin = bytes.NewReader(plain)
				out, err := cmd.Output()
				if err != nil {
					t.Fatal(err)
				}
				file, want = append(file, out...), append(want, plain...)
			}
			cmd := exec.Command(tool, "-d", "-c")
			cmd.Stdin = bytes.NewReader(file)
			if out, err := cmd.Output(); err != nil || !bytes.Equal(out, want) {
				t.Fatalf("xz -d: %v (%d bytes)", err, len(out))
			}
			rc, _, err := decompress.OpenLimited(bytes.NewReader(file), "segments.xz", nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("read %q, error %v; want xz -d's %q", got, err, want)
			}
		})
	}
}

// TestOpenLimitedHead: the start of an xz -9 stream (a 64 MiB dictionary
// in its header) reads back right with a dictionary of the bytes read, not
// 64 MiB: telling formats apart took 64 MiB a look.
func TestOpenLimitedHead(t *testing.T) {
	tool := testenv.Tool(t, "xz", "xz-utils")
	plain := []byte(strings.Repeat("070701 cocobuild initramfs head\n", 20000))
	cmd := exec.Command(tool, "-9", "-c")
	cmd.Stdin = bytes.NewReader(plain)
	b, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rc, f, err := decompress.OpenLimitedHead(bytes.NewReader(b), "x.xz", nil, 512)
	if err != nil || f != decompress.XZ {
		t.Fatalf("format %s, error %v", f, err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	runtime.ReadMemStats(&after)
	if err != nil || !bytes.Equal(got, plain[:512]) {
		t.Errorf("read %q, error %v; want the first 512 bytes", got, err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 8<<20 {
		t.Errorf("allocated %d MiB to read 512 bytes, want at most 8", n>>20)
	}
}
