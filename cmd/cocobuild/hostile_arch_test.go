package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/decompress"
	"github.com/cocobuild/cocobuild/internal/decompress/decompresstest"
	"github.com/cocobuild/cocobuild/internal/newc/newctest"
)

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkFast asserts a run finished in < 2 s within 100 MB, failed with
// code, wrote nothing to stdout and said each of want.
func checkFast(t *testing.T, r measuredRun, code int, want ...string) {
	t.Helper()
	if !r.fast(2*time.Second) || r.maxRSSMB() > 100 {
		t.Errorf("took %v (%v CPU) and %d MB, want < 2s and < 100 MB", r.wall, r.cpu, r.maxRSSMB())
	}
	if r.code != code || r.stdout != "" {
		t.Errorf("exit %d, stdout %q; want exit %d and nothing", r.code, r.stdout, code)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr %q lacks %q", r.stderr, w)
		}
	}
}

// TestDiffHostileInputs: the bombs and special files of issue 17 given to
// diff finish at once, within 100 MB, and name the limit and its flag.
func TestDiffHostileInputs(t *testing.T) {
	dir := t.TempDir()
	bomb := func(ino uint64) []byte {
		return decompresstest.Bomb(t, decompress.Zstd, newctest.Header(ino, 0o100644, 1<<30, 8, "big.img\x00\x00\x00"), 1<<30, nil)
	}
	bombA, bombB := writeFile(t, dir, "a.cpio.zst", bomb(1)), writeFile(t, dir, "b.cpio.zst", bomb(2))
	valid := writeFile(t, dir, "valid.cpio", newctest.Archive([]string{"x"}, func(int) string { return "1" }))
	names := writeFile(t, dir, "names.cpio", newctest.Header(1, 0o100644, 0, 0xffffffff, "x\x00"))
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(bombA); st.Size() > 128<<10 {
		t.Errorf("the bomb takes %d bytes, want < 128 KiB", st.Size())
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"zstd cpio of a GiB file", []string{"diff", bombA, bombB}, []string{"zstd stream of", "--limit expansion="}},
		{"namesize 0xffffffff", []string{"diff", names, valid}, []string{"names.cpio", "--limit name="}},
		{"fifo", []string{"diff", fifo, valid}, []string{"not a regular file"}},
		{"/dev/zero", []string{"diff", valid, "/dev/zero"}, []string{"not a regular file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkFast(t, runMeasured(t, c.args...), 2, c.want...)
		})
	}
}

// TestDiffManyEntries: 200,000 entries per side, one of them different.
// (Archives in opposite orders, where every member of one side waits for
// its counterpart, are repro/diff's TestWaitingMembersPacked.)
func TestDiffManyEntries(t *testing.T) {
	const n = 200_000
	dir := t.TempDir()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("usr/lib/f%06d", i)
	}
	mk := func(odd string) []byte {
		return decompresstest.Compress(t, decompress.Zstd, newctest.Archive(names, func(i int) string {
			if i == n/2 {
				return odd
			}
			return "data"
		}))
	}
	a, b := writeFile(t, dir, "a.cpio.zst", mk("a")), writeFile(t, dir, "b.cpio.zst", mk("b"))
	r := runMeasured(t, "diff", a, b)
	if !r.fast(2*time.Second) || r.maxRSSMB() > 100 {
		t.Errorf("took %v (%v CPU) and %d MB, want < 2s and < 100 MB", r.wall, r.cpu, r.maxRSSMB())
	}
	if want := fmt.Sprintf("usr/lib/f%06d: content", n/2); r.code != 1 || !strings.Contains(r.stdout, want) || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("exit %d, stdout %q; want exit 1 and one line with %q", r.code, r.stdout, want)
	}
}

// TestInspectHostileInputs: compressed zeros (zstd, gzip, xz: a GiB each),
// a name size of 4 GiB, a pipe and /dev/zero given to inspect.
func TestInspectHostileInputs(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// Contents over a limit fail the inspection (exit 1); a FILE that is
	// no regular file is a wrong argument (exit 2).
	cases := []struct {
		name string
		file string
		code int
		want []string
	}{
		{"zstd zeros", writeFile(t, dir, "z.zst", decompresstest.Bomb(t, decompress.Zstd, nil, 1<<30, nil)), 1, []string{"zstd stream of", "--limit expansion="}},
		{"gzip zeros", writeFile(t, dir, "z.gz", decompresstest.Bomb(t, decompress.Gzip, nil, 1<<30, nil)), 1, []string{"gzip stream of", "--limit expansion="}},
		{"xz zeros", writeFile(t, dir, "z.xz", decompresstest.Bomb(t, decompress.XZ, nil, 1<<30, nil)), 1, []string{"xz stream of", "--limit expansion="}},
		{"namesize 0xffffffff", writeFile(t, dir, "names.cpio", newctest.Header(1, 0o100644, 0, 0xffffffff, "x\x00")), 1, []string{"--limit name="}},
		{"fifo", fifo, 2, []string{"not a regular file"}},
		{"/dev/zero", "/dev/zero", 2, []string{"not a regular file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkFast(t, runMeasured(t, "inspect", c.file), c.code, c.want...)
		})
	}
	// Raised, the expansion limit lets the decompressed limit stop it.
	r := runMeasured(t, "inspect", "--limit", "expansion=100000", "--limit", "decompressed=64MiB", cases[0].file)
	checkFast(t, r, 1, "--limit decompressed=128MiB")
}

// TestTerminalEscapes: entry names and link targets that would set the
// terminal's title or clear it are escaped in text (inspect and diff) and
// exact in JSON.
func TestTerminalEscapes(t *testing.T) {
	dir := t.TempDir()
	title, clear := "\x1b]0;pwned\a", "\x1b[2J"
	names := []string{title, "etc/" + clear}
	a := writeFile(t, dir, "a.cpio", newctest.Archive(names, func(int) string { return "a" }))
	b := writeFile(t, dir, "b.cpio", newctest.Archive(names, func(int) string { return "b" }))
	for _, args := range [][]string{{"inspect", a}, {"diff", a, b}} {
		code, stdout, stderr := runCLI(t, args...)
		if code > 1 || strings.ContainsAny(stdout, "\x1b\a") || !strings.Contains(stdout, `\x1b]0;pwned\x07`) || !strings.Contains(stdout, `etc/\x1b[2J`) {
			t.Errorf("%s: exit %d, text %q (%s); want the names escaped", args[0], code, stdout, stderr)
		}
		code, stdout, _ = runCLI(t, append([]string{"--json"}, args...)...)
		var v any
		if err := json.Unmarshal([]byte(stdout), &v); err != nil || code > 1 {
			t.Fatalf("%s --json: exit %d, %v", args[0], code, err)
		}
		got, _ := json.Marshal(v)
		for _, n := range names {
			want, _ := json.Marshal(n)
			if !bytes.Contains(got, want[1:len(want)-1]) {
				t.Errorf("%s --json lacks the exact name %q: %s", args[0], n, got)
			}
		}
	}
}

// TestErrorsEscaped: an error that quotes a name from the input (here a
// path that holds a title sequence and a screen clear, as a script that
// globs someone else's directory passes it) is escaped on stderr, line by
// line, and exact in --json.
func TestErrorsEscaped(t *testing.T) {
	dir := t.TempDir()
	valid := writeFile(t, dir, "valid.cpio", newctest.Archive([]string{"x"}, func(int) string { return "1" }))
	bad := filepath.Join(dir, "x\x1b]0;pwned\a\x1b[2J")
	for _, args := range [][]string{{"diff", valid, bad}, {"inspect", bad}, {"measure", "tdx", "--firmware", bad}} {
		code, _, stderr := runCLI(t, args...)
		if code != exitUsage || strings.ContainsAny(stderr, "\x1b\a") || !strings.Contains(stderr, `x\x1b]0;pwned\x07\x1b[2J`) {
			t.Errorf("%s: exit %d, stderr %q; want exit 2 and the path escaped", args[0], code, stderr)
		}
		code, stdout, _ := runCLI(t, append([]string{"--json"}, args...)...)
		var got struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil || code != exitUsage || !strings.Contains(got.Error, bad) {
			t.Errorf("%s --json: exit %d, error %q (%v); want the exact path %q", args[0], code, got.Error, err, bad)
		}
	}
	if got, want := escapeLines("a\x1b[2J\nb\tc"), "a\\x1b[2J\nb\\tc"; got != want {
		t.Errorf("escapeLines = %q, want %q", got, want)
	}
}

// TestServeIndexLimit: serve reads the feed's index whole, within the
// document limit, which --limit raises as verify's does (serve had no
// --limit, while its error named it).
func TestServeIndexLimit(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "index.json", bytes.Repeat([]byte(" "), 2<<10))
	code, _, stderr := runCLI(t, "serve", dir, "--addr", "127.0.0.1:0", "--limit", "document=1KiB")
	if want := "index.json: 2KiB is over the document limit of 1KiB"; code != exitFailure || !strings.Contains(stderr, want) || !strings.Contains(stderr, "--limit document=") {
		t.Errorf("exit %d, stderr %q; want exit 1 and %q", code, stderr, want)
	}
	code, _, stderr = runCLI(t, "serve", dir, "--addr", "127.0.0.1:0", "--limit", "document=4KiB")
	if code != exitFailure || !strings.Contains(stderr, "feed index") || strings.Contains(stderr, "limit") {
		t.Errorf("raised: exit %d, stderr %q; want the index read and refused as invalid JSON", code, stderr)
	}
}
