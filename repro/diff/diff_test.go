package diff

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/cocobuild/cocobuild/internal/decompress"
	"github.com/cocobuild/cocobuild/internal/decompress/decompresstest"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/newc/newctest"
)

type entry struct {
	name string
	mode uint64 // with type bits
	data string
}

func makeCPIO(t *testing.T, entries []entry) []byte { return makeCPIOF(t, entries) }

// makeCPIOF writes entries as a newc archive with u-root's writer.
func makeCPIOF(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	for _, e := range entries {
		rec := cpio.StaticRecord([]byte(e.data), cpio.Info{Name: e.name, Mode: e.mode, NLink: 1, FileSize: uint64(len(e.data))})
		if err := w.WriteRecord(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// TestCPIONamesExactlyTheChangedEntries: one file's content and another
// file's mode differ; the report names those two entries and nothing else.
func TestCPIONamesExactlyTheChangedEntries(t *testing.T) {
	base := []entry{
		{"bin", 0o040755, ""},
		{"bin/agent", 0o100755, "agent-v1"},
		{"etc", 0o040755, ""},
		{"etc/release", 0o100644, "0.1.0"},
		{"init", 0o120777, "bin/agent"},
	}
	changed := append([]entry(nil), base...)
	changed[1].data = "agent-v2+" // other size and content
	changed[3].mode = 0o100600    // other mode
	for _, compress := range []bool{false, true} {
		a, b := makeCPIO(t, base), makeCPIO(t, changed)
		if compress {
			a, b = gz(t, a), gz(t, b)
		}
		got := files(t, "initrd.img", a, b)
		var summary []string
		for _, d := range got {
			summary = append(summary, d.Format+" "+d.Member+" "+d.What)
		}
		want := []string{"cpio bin/agent size, content", "cpio etc/release mode"}
		if diff := cmp.Diff(want, summary); diff != "" {
			t.Errorf("compressed=%v: differences (-want +got):\n%s\nfull: %+v", compress, diff, got)
		}
	}
}

func TestIdenticalAndReordered(t *testing.T) {
	e := []entry{{"a", 0o100644, "1"}, {"b", 0o100644, "2"}}
	a := makeCPIO(t, e)
	if d := files(t, "x.cpio", a, a); len(d) != 0 {
		t.Errorf("identical archives: %v", d)
	}
	b := makeCPIO(t, []entry{e[1], e[0]})
	got := files(t, "x.cpio", a, b)
	if len(got) != 1 || got[0].What != "order" {
		t.Errorf("reordered archive: %+v, want one order difference", got)
	}
}

func TestTarAndJSONAndBytes(t *testing.T) {
	mk := func(mode int64, body string) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "lib/modules/x.ko", Mode: mode, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
		tw.Close()
		return buf.Bytes()
	}
	if got := files(t, "m.tar", mk(0o644, "aa"), mk(0o644, "ab")); len(got) != 1 || got[0].Member != "lib/modules/x.ko" || got[0].What != "content" {
		t.Errorf("tar: %+v", got)
	}
	ja := []byte(`{"measurements":[{"values":{"mrtd":"aa"}}],"epoch":0}`)
	jb := []byte(`{"measurements":[{"values":{"mrtd":"bb"}}],"epoch":0}`)
	if got := files(t, "manifest.json", ja, jb); len(got) != 1 || got[0].Member != "measurements[0]/values/mrtd" || got[0].A != `"aa"` {
		t.Errorf("json: %+v", got)
	}
	got := files(t, "vmlinuz", []byte("abcdef"), []byte("abXdef"))
	if len(got) != 1 || got[0].Format != "bytes" || got[0].What != "content; first differing byte at offset 2" {
		t.Errorf("bytes: %+v", got)
	}
}

func TestTrees(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		os.MkdirAll(filepath.Join(d, "kernel"), 0o755)
		os.WriteFile(filepath.Join(d, "kernel", "vmlinuz"), []byte("k"), 0o644)
	}
	os.WriteFile(filepath.Join(a, "only-a"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(b, "manifest.json"), []byte(`{}`), 0o644)
	os.Chmod(filepath.Join(b, "kernel", "vmlinuz"), 0o600)
	rep, err := Trees(a, b)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rep.Differences {
		got = append(got, d.Artifact+": "+d.What)
	}
	want := []string{"kernel/vmlinuz: mode", "manifest.json: missing in a", "only-a: missing in b"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tree differences (-want +got):\n%s", diff)
	}
}

// FuzzFiles: two artifacts compared as JSON, tar and cpio, seeded with the
// hostile shapes of issue 17: a name size of 4 GiB, a content size of
// 4 GiB, a zstd bomb, zstd inside gzip, a truncated xz stream.
func FuzzFiles(f *testing.F) {
	f.Add([]byte("070701"), []byte("070701"))
	f.Add([]byte{0x1f, 0x8b, 8, 0}, []byte{0x1f, 0x8b})
	valid := makeCPIOF(f, []entry{{"x", 0o100644, "1"}})
	f.Add(newctest.Header(1, 0o100644, 0, 0xffffffff, "x\x00"), valid)
	f.Add(valid, newctest.Header(1, 0o100644, 0xffffffff, 2, "x\x00\x00\x00"))
	bomb := decompresstest.Bomb(f, decompress.Zstd, newctest.Header(1, 0o100644, 4<<20, 2, "x\x00\x00\x00"), 4<<20, nil)
	f.Add(bomb, bomb)
	f.Add(decompresstest.Compress(f, decompress.Gzip, decompresstest.Compress(f, decompress.Zstd, valid)), valid)
	f.Add(decompresstest.Compress(f, decompress.XZ, valid)[:20], valid)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		c := Comparer{Limits: fuzzLimits}
		c.Files("x.json", a, b)
		c.Files("x.tar", a, b)
		c.Files("x.cpio", a, b)
	})
}

func FuzzGPT(f *testing.F) {
	b := make([]byte, 4096)
	copy(b[512:], "EFI PART")
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		a := memArtifact("d", b)
		if ok, _ := gptFormat.match("d", a, nil); ok {
			next, done := gptFormat.members(a, nil)
			for {
				if _, ok, _ := next(); !ok {
					break
				}
			}
			done()
		}
	})
}

func TestLongValuesAreAbbreviated(t *testing.T) {
	long := func(c string) []byte { return []byte(`{"payload":"` + strings.Repeat(c, 500) + `"}`) }
	got := files(t, "rvps.json", long("a"), long("b"))
	if len(got) != 1 || len(got[0].A) > 120 || len(got[0].B) > 120 || !strings.Contains(got[0].A, "502 bytes") {
		t.Errorf("long JSON values not abbreviated: %+v", got)
	}
}

// TestTooLargeIsAnError: a compressed artifact that holds more than the
// decompressed limit is an error naming the stream and the flag, not a
// comparison of members cut short at the limit.
func TestTooLargeIsAnError(t *testing.T) {
	base := []entry{{"big", 0o100644, strings.Repeat("x", 4<<20)}}
	changed := []entry{{"big", 0o100644, strings.Repeat("y", 4<<20)}}
	a, b := gz(t, makeCPIO(t, base)), gz(t, makeCPIO(t, changed))
	small := Comparer{Limits: (*limits.Values)(nil).With(limits.Decompressed, 1<<20)}
	_, err := small.Files("initrd.cpio.gz", a, b)
	var le *limits.Error
	if !errors.As(err, &le) || le.Limit.Name != "decompressed" || !strings.Contains(err.Error(), "gzip stream of a/initrd.cpio.gz") ||
		!strings.Contains(err.Error(), "--limit decompressed=") {
		t.Errorf("with a 1 MiB limit: error %v, want a decompressed limit error for the gzip stream of a/initrd.cpio.gz", err)
	}
	got := files(t, "initrd.cpio.gz", a, b)
	if len(got) != 1 || got[0].Format != "cpio" || !strings.Contains(got[0].Member, "big") {
		t.Errorf("with the default limits: got %+v, want the cpio member big", got)
	}
}

// files compares two artifacts in memory with the default limits.
func files(t *testing.T, name string, a, b []byte) []Difference {
	t.Helper()
	ds, err := Files(name, a, b)
	if err != nil {
		t.Fatalf("Files(%s): %v", name, err)
	}
	return ds
}
