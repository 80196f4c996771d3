package diff

import (
	"archive/tar"
	"bytes"
	"testing"

	"github.com/cocobuild/cocobuild/internal/decompress"
	"github.com/cocobuild/cocobuild/internal/decompress/decompresstest"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/newc/newctest"
)

// fuzzLimits are small, so that a fuzzed bomb stops in milliseconds.
var fuzzLimits = (*limits.Values)(nil).With(limits.Decompressed, 1<<20).With(limits.File, 1<<20).
	With(limits.Entries, 1000).With(limits.NameLen, 256)

// drain reads every member of a through f, checking that what comes out
// is within the limits.
func drain(t *testing.T, f format, b []byte) {
	a := memArtifact("fuzz", b)
	next, done := f.members(a, fuzzLimits)
	defer done()
	for n := 1; ; n++ {
		m, ok, err := next()
		if !ok || err != nil {
			return
		}
		if n > 1000 || len(m.Name) > 256 || len(m.Link) > 256 || m.Size > 1<<20 {
			t.Fatalf("member %d (name of %d bytes, link of %d, size %d) passed the limits", n, len(m.Name), len(m.Link), m.Size)
		}
	}
}

func cpioSeeds(f *testing.F) {
	valid := makeCPIOF(f, []entry{{"x", 0o100644, "1"}})
	f.Add(valid)
	f.Add(newctest.Header(1, 0o100644, 0, 0xffffffff, "x\x00"))
	f.Add(newctest.Header(1, 0o100644, 0xffffffff, 2, "x\x00\x00\x00"))
	f.Add(newctest.Header(1, 0o120777, 0xffffffff, 2, "x\x00\x00\x00"))
	f.Add(decompresstest.Bomb(f, decompress.Zstd, newctest.Header(1, 0o100644, 4<<20, 2, "x\x00\x00\x00"), 4<<20, nil))
	f.Add(decompresstest.Compress(f, decompress.Gzip, decompresstest.Compress(f, decompress.Zstd, valid)))
	f.Add(decompresstest.Compress(f, decompress.XZ, valid)[:20])
}

// FuzzCPIOMembers: diff's cpio member reader on any bytes: no panic, no
// hang, nothing past the limits.
func FuzzCPIOMembers(f *testing.F) {
	f.Add(makeCPIOF(f, []entry{{"bin", 0o040755, ""}, {"bin/agent", 0o100755, "agent"}, {"init", 0o120777, "bin/agent"}}))
	cpioSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) { drain(t, cpioFormat, b) })
}

// FuzzTarMembers: diff's tar member reader on any bytes.
func FuzzTarMembers(f *testing.F) {
	tarOf := func(hs ...*tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hs {
			tw.WriteHeader(h)
			if h.Typeflag == tar.TypeReg && h.Size < 1<<16 {
				tw.Write(make([]byte, h.Size))
			}
		}
		tw.Close()
		return buf.Bytes()
	}
	valid := tarOf(&tar.Header{Name: "lib/modules/x.ko", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg},
		&tar.Header{Name: "l", Linkname: "x", Typeflag: tar.TypeSymlink})
	f.Add(valid)
	f.Add(tarOf(&tar.Header{Name: "huge", Mode: 0o644, Size: 8 << 30, Typeflag: tar.TypeReg}))
	f.Add(tarOf(&tar.Header{Name: string(bytes.Repeat([]byte("n"), 5000)), Mode: 0o644, Typeflag: tar.TypeReg}))
	f.Add(decompresstest.Bomb(f, decompress.Zstd, tarOf(&tar.Header{Name: "z", Mode: 0o644, Size: 4 << 20, Typeflag: tar.TypeReg})[:512], 4<<20, nil))
	f.Add(decompresstest.Compress(f, decompress.Gzip, decompresstest.Compress(f, decompress.Zstd, valid)))
	f.Add(valid[:700])
	f.Fuzz(func(t *testing.T, b []byte) { drain(t, tarFormat, b) })
}
