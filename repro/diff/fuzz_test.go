package diff

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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

// buildTree makes a tree below dir from spec, one entry a line: "f NAME
// CONTENT" (a file), "d NAME" (a directory), "l NAME TARGET" (a symbolic
// link, its target anything: /dev/zero, itself, ../..), "p NAME" (a named
// pipe). Names are cut to 64 bytes and kept inside dir; lines that say
// nothing valid, or name an entry twice, are skipped.
func buildTree(dir, spec string) {
	for i, line := range strings.Split(spec, "\n") {
		if i >= 64 {
			return
		}
		kind, rest, _ := strings.Cut(line, " ")
		name, arg, _ := strings.Cut(rest, " ")
		name = strings.Trim(strings.ReplaceAll(name, "..", "_"), "/")
		if name == "" || len(name) > 64 || strings.ContainsRune(name, 0) {
			continue
		}
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		switch kind {
		case "f":
			os.WriteFile(p, []byte(arg), 0o644)
		case "d":
			os.Mkdir(p, 0o755)
		case "l":
			os.Symlink(arg, p)
		case "p":
			syscall.Mkfifo(p, 0o644)
		}
	}
}

// treesWithin runs c.Trees(a, b) and fails the test when it has not
// returned after d: it followed a link or opened a pipe.
func treesWithin(t *testing.T, c Comparer, a, b string, d time.Duration) (*Report, error) {
	t.Helper()
	done := make(chan struct{})
	var rep *Report
	var err error
	go func() {
		rep, err = c.Trees(a, b)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("Trees did not return in %v: it followed a link or opened a pipe", d)
	}
	return rep, err
}

// FuzzTrees: diff of two directory trees holding files, links (to
// /dev/zero, loops, out of the tree) and named pipes, made by buildTree:
// it returns (no link followed, no pipe opened), within the entries limit,
// and two links with different targets differ whatever they lead to.
func FuzzTrees(f *testing.F) {
	f.Add("f x same\nf y same\nl link x\nl zero /dev/zero\nl loop loop\np fifo", "f x same\nf y same\nl link y\nl zero /dev/zero\nl loop loop\np fifo")
	f.Add("p fifo-vs-file", "f fifo-vs-file data")
	f.Add("l a b\nl b a\nd sub\nl sub/up ../..", "l a b\nl b a\nd sub\nl sub/up /")
	f.Add("f big "+strings.Repeat("z", 4096), "l big /dev/zero")
	f.Fuzz(func(t *testing.T, specA, specB string) {
		a, b := t.TempDir(), t.TempDir()
		buildTree(a, specA)
		buildTree(b, specB)
		rep, err := treesWithin(t, Comparer{Limits: fuzzLimits}, a, b, 10*time.Second)
		if err != nil {
			return
		}
		for _, d := range rep.Differences {
			la, errA := os.Readlink(filepath.Join(a, d.Artifact))
			lb, errB := os.Readlink(filepath.Join(b, d.Artifact))
			if errA == nil && errB == nil && la == lb && d.What == "link" {
				t.Errorf("%s: links to the same target %q reported as %+v", d.Artifact, la, d)
			}
		}
		if rep.Compared > 1000 {
			t.Errorf("compared %d entries past the limit of 1000", rep.Compared)
		}
	})
}
