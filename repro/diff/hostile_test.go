package diff

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/decompress"
	"github.com/cocobuild/cocobuild/internal/decompress/decompresstest"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/newc/newctest"
	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestTreesDoNotFollow: symbolic links are compared by their targets (to
// /dev/zero, a loop, two targets with equal contents), pipes by type and
// mode, device nodes by their numbers; nothing is followed or opened (a
// followed link to /dev/zero or an opened pipe would never return).
func TestTreesDoNotFollow(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		must(t, os.WriteFile(filepath.Join(d, "x"), []byte("same"), 0o644))
		must(t, os.WriteFile(filepath.Join(d, "y"), []byte("same"), 0o644))
		must(t, os.Symlink("/dev/zero", filepath.Join(d, "zero")))
		must(t, os.Symlink("loop", filepath.Join(d, "loop")))
		must(t, syscall.Mkfifo(filepath.Join(d, "fifo"), 0o644))
	}
	must(t, os.Symlink("x", filepath.Join(a, "link")))
	must(t, os.Symlink("y", filepath.Join(b, "link")))
	must(t, syscall.Mkfifo(filepath.Join(a, "fifo-vs-file"), 0o644))
	must(t, os.WriteFile(filepath.Join(b, "fifo-vs-file"), nil, 0o644))
	want := []string{
		"fifo-vs-file: type (a: prw-r--r--, b: -rw-r--r--)",
		"link: link (a: x, b: y)",
	}
	if os.Geteuid() == 0 { // device nodes need root
		must(t, syscall.Mknod(filepath.Join(a, "null"), syscall.S_IFCHR|0o666, 1<<8|3))
		must(t, syscall.Mknod(filepath.Join(b, "null"), syscall.S_IFCHR|0o666, 1<<8|5))
		want = append(want, "null: device (a: 1:3, b: 1:5)")
	} else {
		t.Log("not root: device nodes not compared")
	}
	rep, err := treesWithin(t, Comparer{}, a, b, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rep.Differences {
		got = append(got, d.String())
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("differences (-want +got):\n%s", d)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestPathsRefuseSpecialFiles: a pipe or a device given as A or B fails at
// once.
func TestPathsRefuseSpecialFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	must(t, syscall.Mkfifo(fifo, 0o644))
	file := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(file, []byte("x"), 0o644))
	for _, p := range [][2]string{{fifo, file}, {file, fifo}, {"/dev/zero", file}} {
		start := time.Now()
		_, err := Paths(p[0], p[1])
		var nr *limits.NotRegularError
		if !errors.As(err, &nr) || time.Since(start) > 2*time.Second {
			t.Errorf("Paths(%s, %s): error %v after %v, want a NotRegularError at once", p[0], p[1], err, time.Since(start))
		}
	}
}

// TestArchiveBombs: archives whose headers or streams are hostile fail at
// once with the limit and the flag.
func TestArchiveBombs(t *testing.T) {
	valid := makeCPIO(t, []entry{{"x", 0o100644, "1"}})
	big := func(ino uint64) []byte {
		return decompresstest.Bomb(t, decompress.Zstd, newctest.Header(ino, 0o100644, 1<<30, 8, "big.img\x00\x00\x00"), 1<<30, nil)
	}
	tarHuge := func(size int64) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "huge", Mode: 0o644, Size: size, Typeflag: tar.TypeReg})
		return buf.Bytes() // no content: the header claims it
	}
	cases := []struct {
		name, file string
		a, b       []byte
		limit      string
	}{
		{"zstd cpio of a GiB file", "initrd.cpio.zst", big(1), big(2), "expansion"},
		{"namesize 0xffffffff", "initrd.cpio", newctest.Header(1, 0o100644, 0, 0xffffffff, "x\x00"), valid, "name"},
		{"namesize 0xffffffff in b", "initrd.cpio", valid, newctest.Header(1, 0o100644, 0, 0xffffffff, "x\x00"), "name"},
		{"tar header of 8 GiB", "m.tar", tarHuge(8 << 30), tarHuge(1), "file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			testenv.Fast(t, 2*time.Second, func() { _, err = Files(c.file, c.a, c.b) })
			var le *limits.Error
			if !errors.As(err, &le) || le.Limit.Name != c.limit || !strings.Contains(err.Error(), "--limit "+c.limit+"=") {
				t.Errorf("error %v, want a *limits.Error for %s naming --limit %s=", err, c.limit, c.limit)
			}
		})
	}
}

// TestTextEscapes: names and values from the inputs are escaped in text,
// exact in the structure JSON encodes.
func TestTextEscapes(t *testing.T) {
	title, clear := "\x1b]0;pwned\a", "\x1b[2J"
	a := makeCPIO(t, []entry{{title, 0o100644, "1"}, {"l", 0o120777, clear}})
	b := makeCPIO(t, []entry{{title, 0o100644, "2"}, {"l", 0o120777, "x"}})
	ds := files(t, "x"+clear+".cpio", a, b)
	if len(ds) != 2 || ds[0].Member != title || !strings.HasPrefix(ds[1].A, clear+";") {
		t.Fatalf("differences %+v, want the exact names and targets", ds)
	}
	for _, d := range ds {
		if s := d.String(); strings.ContainsAny(s, "\x1b\a") || !strings.Contains(s, `\x1b`) {
			t.Errorf("text %q holds raw escapes or lacks the escaped form", s)
		}
	}
}

// TestManyEntries: 200,000 entries per side (the default entries limit)
// are compared side by side, without holding them; one more is an error.
func TestManyEntries(t *testing.T) {
	const n = 200_000
	mk := func(n int, odd string) []byte {
		var buf bytes.Buffer
		for i := range n {
			data := "d"
			if i == n/2 {
				data = odd
			}
			name := fmt.Sprintf("dir/f%06d\x00", i)
			h := newctest.Header(uint64(i+1), 0o100644, uint64(len(data)), uint64(len(name)), name)
			buf.Write(h)
			buf.Write(make([]byte, (4-buf.Len()%4)%4))
			buf.WriteString(data)
			buf.Write(make([]byte, (4-buf.Len()%4)%4))
		}
		buf.Write(newctest.Header(0, 0, 0, 11, "TRAILER!!!\x00"))
		buf.Write(make([]byte, (4-buf.Len()%4)%4))
		return decompresstest.Compress(t, decompress.Zstd, buf.Bytes())
	}
	a, b := mk(n, "a"), mk(n, "b")
	var ds []Difference
	testenv.Fast(t, 2*time.Second, func() { ds = files(t, "many.cpio.zst", a, b) })
	if len(ds) != 1 || ds[0].Member != fmt.Sprintf("dir/f%06d", n/2) || ds[0].What != "content" {
		t.Errorf("differences %+v, want the content of dir/f%06d", ds, n/2)
	}
	_, err := Files("many.cpio.zst", mk(n+1, "a"), mk(n+1, "b"))
	var le *limits.Error
	if !errors.As(err, &le) || le.Limit.Name != "entries" || !strings.Contains(err.Error(), "--limit entries=") {
		t.Errorf("%d entries: error %v, want the entries limit", n+1, err)
	}
}

// TestTreeListingCompact: a tree is listed in some tens of bytes an entry
// (its name, mode and device numbers), so that two trees at the entries
// limit fit in well under 100 MB; as fs.FileInfo values (a stat buffer
// each) 200,000 entries a side took 270 MB.
func TestTreeListingCompact(t *testing.T) {
	const n = 20_000
	dir := t.TempDir()
	for i := range n {
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d", i)), nil, 0o644))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l, err := Comparer{}.listTree(dir)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if err != nil || len(l) != n {
		t.Fatalf("listed %d entries, error %v; want %d", len(l), err, n)
	}
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d entries listed in %d bytes each", n, per)
	if per > 100 {
		t.Errorf("the listing holds %d bytes an entry, want at most 100", per)
	}
	runtime.KeepAlive(l)
}

// TestPackedMember: a member waiting for its counterpart comes back as it
// was, whatever its fields hold (a hex digest is kept as its bytes; other
// values, upper-case hex among them, as they are).
func TestPackedMember(t *testing.T) {
	hash := strings.Repeat("0123456789abcdef", 4)
	for _, m := range []Member{
		{Name: "usr/lib/f000001", Type: "file", Mode: "0644", Owner: "0:0", Size: 4, Hash: hash, Order: 7},
		{Name: "x", Label: "x (label)", Type: "symlink", Mode: "0777", Owner: "1000:1000", Link: "../\x1b[2J", Order: 1 << 40},
		{Name: "$.a", Type: "value", Hash: `{"k":"v"}`, Size: -1},
		{Name: "p1", Type: "partition", Hash: strings.ToUpper(hash), Attrs: []Attr{{"guid", "0FC63DAF"}, {"", ""}}},
		{Name: ""},
	} {
		if got := pack(m).unpack(m.Name); !cmp.Equal(got, m, cmp.Comparer(func(x, y []Attr) bool { return slices.Equal(x, y) })) {
			t.Errorf("pack(%+v).unpack() = %+v", m, got)
		}
	}
	if n := len(pack(Member{Name: "usr/lib/f000001", Type: "file", Mode: "0644", Owner: "0:0", Size: 4, Hash: hash})); n > 64 {
		t.Errorf("a file member packs into %d bytes, want at most 64", n)
	}
}

// TestWaitingMembersPacked: two archives in opposite orders hold every
// member of one side waiting for its counterpart until the middle; they
// wait packed, in some 150 bytes each with the map (as Member values with
// hex digests, about 300), and all pair up.
func TestWaitingMembersPacked(t *testing.T) {
	const n = 50_000
	member := func(i int) Member {
		h := sha256.Sum256([]byte(fmt.Sprint(i)))
		return Member{Name: fmt.Sprintf("usr/lib/f%06d", i), Type: "file", Mode: "0644", Owner: "0:0", Size: 4, Hash: hex.EncodeToString(h[:]), Order: i}
	}
	iter := func(at func(i int) int, mid func()) memberIter {
		i := 0
		return func() (Member, bool, error) {
			if i == n {
				return Member{}, false, nil
			}
			if i == n/2 && mid != nil {
				mid()
			}
			i++
			return member(at(i - 1)), true, nil
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ds, err := compareMembers("a.cpio", "cpio", iter(func(i int) int { return i }, nil), iter(func(i int) int { return n - 1 - i }, func() {
		runtime.GC()
		runtime.ReadMemStats(&after)
	}))
	if err != nil || len(ds) != 1 || ds[0].What != "order" {
		t.Fatalf("differences %+v, error %v; want only the order", ds, err)
	}
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d members waiting, %d bytes each", n, per)
	if per > 200 {
		t.Errorf("a waiting member takes %d bytes, want at most 200", per)
	}
}
