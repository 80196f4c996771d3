package rootfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

const testEpoch = 1700000000

// sampleTree builds a tree with every kind of entry: nested directories,
// files of several sizes, a hard link, symlinks, setuid and sticky modes,
// other owners, a device, a fifo, a long name and a big directory.
func sampleTree(t testing.TB, withDevices bool) *Tree {
	t.Helper()
	tr := NewTree(t.TempDir(), testEpoch)
	add := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	add(tr.AddEntry("test", "/etc", Entry{Type: TypeDir, Mode: 0o755, MTime: 1000}))
	add(tr.AddFile("test", "/etc/cocobuild-release", strings.NewReader("0.1.0\n"), 0o644, 0, 0, 2000))
	add(tr.AddFile("test", "/etc/shadow", strings.NewReader("root:*:1::::::\n"), 0o640, 0, 42, 3000))
	add(tr.AddFile("test", "/usr/bin/tool", bytes.NewReader(bytes.Repeat([]byte("tool"), 50000)), 0o4755, 0, 0, testEpoch+999))
	add(tr.AddHardlink("test", "/usr/bin/tool-alias", "/usr/bin/tool"))
	add(tr.AddEntry("test", "/bin", Entry{Type: TypeSymlink, Link: "usr/bin"}))
	add(tr.AddEntry("test", "/usr/lib/os-release", Entry{Type: TypeSymlink, Link: "../../etc/cocobuild-release", MTime: 5}))
	add(tr.AddEntry("test", "/tmp", Entry{Type: TypeDir, Mode: 0o1777, MTime: 7}))
	add(tr.AddEntry("test", "/home/user", Entry{Type: TypeDir, Mode: 0o750, UID: 1000, GID: 1000, MTime: 8}))
	add(tr.AddFile("test", "/home/user/.profile", strings.NewReader("export PS1='$ '\n"), 0o600, 1000, 1000, 9))
	add(tr.AddFile("test", "/empty", strings.NewReader(""), 0o644, 0, 0, 10))
	add(tr.AddFile("test", "/"+strings.Repeat("long-name-", 20), strings.NewReader("x"), 0o644, 0, 0, 11))
	for i := 0; i < 1200; i++ {
		add(tr.AddFile("test", fmt.Sprintf("/many/f%04d", i), strings.NewReader(fmt.Sprint(i)), 0o644, 0, 0, 12))
	}
	if withDevices {
		add(tr.AddEntry("test", "/dev/null", Entry{Type: TypeChar, Mode: 0o666, Major: 1, Minor: 3}))
		add(tr.AddEntry("test", "/dev/vda", Entry{Type: TypeBlock, Mode: 0o660, GID: 6, Major: 254, Minor: 0}))
		add(tr.AddEntry("test", "/run/initctl", Entry{Type: TypeFIFO, Mode: 0o600}))
	}
	return tr
}

func writeTreeTar(t testing.TB, tr *Tree) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tree.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.WriteTar(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// listTree describes a tree as one line per entry.
func listTree(t testing.TB, tr *Tree) []string {
	t.Helper()
	var out []string
	for _, e := range tr.Entries() {
		out = append(out, describe(t, e.Path, e.Type, e.Mode, e.UID, e.GID, e.MTime, e.Link, e.Major, e.Minor, blobPath(e)))
	}
	return out
}

func blobPath(e *Entry) string {
	if e.data == nil {
		return ""
	}
	return e.data.path
}

func describe(t testing.TB, p string, typ Type, mode uint32, uid, gid int, mtime int64, link string, major, minor uint32, content string) string {
	t.Helper()
	s := fmt.Sprintf("/%s %s %04o %d:%d", p, typ, mode, uid, gid)
	if typ != TypeSymlink { // extractors do not set symlink times
		s += fmt.Sprintf(" %d", mtime)
	}
	switch typ {
	case TypeSymlink:
		s += " -> " + link
	case TypeChar, TypeBlock:
		s += fmt.Sprintf(" %d:%d", major, minor)
	case TypeReg:
		b, err := os.ReadFile(content)
		if err != nil {
			t.Fatal(err)
		}
		s += " " + shaHex(b)
	}
	return s
}

func shaHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// listDir describes an unpacked directory the same way.
func listDir(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			rel = ""
		}
		if rel == "lost+found" {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		var typ Type
		var link string
		switch m := info.Mode(); {
		case m.IsDir():
			typ = TypeDir
		case m.IsRegular():
			typ = TypeReg
		case m&fs.ModeSymlink != 0:
			typ = TypeSymlink
			link, _ = os.Readlink(p)
		case m&fs.ModeCharDevice != 0:
			typ = TypeChar
		case m&fs.ModeDevice != 0:
			typ = TypeBlock
		case m&fs.ModeNamedPipe != 0:
			typ = TypeFIFO
		}
		out = append(out, describe(t, rel, typ, st.Mode&0o7777, int(st.Uid), int(st.Gid), st.Mtim.Sec, link,
			uint32(st.Rdev>>8&0xfff), uint32(st.Rdev&0xff|st.Rdev>>12&0xfff00), p))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func runTool(t testing.TB, name, pkg string, args ...string) string {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, name, pkg), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// unpackImage extracts a file system image with its own tools, as root.
func unpackImage(t testing.TB, typ, img string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "x")
	switch typ {
	case SquashFS:
		runTool(t, "unsquashfs", "squashfs-tools", "-no-progress", "-d", dir, img)
	case EROFS:
		runTool(t, "fsck.erofs", "erofs-utils", "--extract="+dir, img)
	case Ext4:
		os.Mkdir(dir, 0o755)
		runTool(t, "debugfs", "e2fsprogs", "-R", "rdump / "+dir, img)
		// rdump writes the root's entries into dir, whose own attributes
		// it leaves alone: take them from the image.
		out := runTool(t, "debugfs", "e2fsprogs", "-R", "stat <2>", img)
		var mode, uid, gid int
		fmt.Sscanf(out[strings.Index(out, "Mode:"):], "Mode:  %o", &mode)
		fmt.Sscanf(out[strings.Index(out, "User:"):], "User: %d Group: %d", &uid, &gid)
		os.Chmod(dir, fs.FileMode(mode&0o777))
		os.Lchown(dir, uid, gid)
		var mt int64
		if i := strings.Index(out, "mtime: 0x"); i >= 0 {
			fmt.Sscanf(out[i:], "mtime: 0x%x", &mt)
		}
		os.Chtimes(dir, unixTime(mt), unixTime(mt))
	}
	return dir
}

func fsck(t testing.TB, typ, img string) {
	t.Helper()
	switch typ {
	case SquashFS:
		runTool(t, "unsquashfs", "squashfs-tools", "-s", img)
		runTool(t, "unsquashfs", "squashfs-tools", "-lls", "-n", img) // reads every directory and inode
	case EROFS:
		runTool(t, "fsck.erofs", "erofs-utils", img)
	case Ext4:
		runTool(t, "e2fsck", "e2fsprogs", "-fn", img)
	}
}

// TestImages builds each file system twice from the same tree, checks it
// with the file system's own fsck, requires identical bytes, and unpacks
// it with the file system's own tools to compare every entry.
func TestImages(t *testing.T) {
	root := os.Geteuid() == 0
	for _, typ := range FileSystems {
		t.Run(typ, func(t *testing.T) {
			tr := sampleTree(t, root)
			tarPath := writeTreeTar(t, tr)
			var digests []string
			var img string
			for i := 0; i < 2; i++ {
				if i == 1 {
					waitNextSecond() // so that anything taken from the clock differs
				}
				img = filepath.Join(t.TempDir(), "rootfs."+typ)
				opt := ImageOptions{Type: typ, UUID: uuid.MustParse("0f2e2f5c-6a4b-4d4e-9a51-3c1b2a0d9e7f"), Epoch: testEpoch, Label: "root", Chown: root}
				info, err := BuildImage(context.Background(), tarPath, img, t.TempDir(), opt)
				if err != nil {
					t.Fatal(err)
				}
				if info.Size%4096 != 0 || info.Entries != tr.Len() {
					t.Errorf("info = %+v, want a multiple of 4096 bytes and %d entries", info, tr.Len())
				}
				b, _ := os.ReadFile(img)
				digests = append(digests, shaHex(b))
			}
			if digests[0] != digests[1] {
				t.Errorf("two builds differ: %s and %s", digests[0], digests[1])
			}
			fsck(t, typ, img)
			if !root {
				t.Skip("unpacking with owners needs root")
			}
			// The extractors of erofs-utils and e2fsprogs drop setuid and
			// sticky bits (they chown after chmod), and debugfs rdump skips
			// devices and fifos: compare what they keep, then read the rest
			// from the image's inodes.
			want := listTree(t, tr)
			got := listDir(t, unpackImage(t, typ, img))
			if typ != SquashFS {
				want, got = lossy(want, typ), lossy(got, typ)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("unpacked %s differs from the tree (-tree +image):\n%s", typ, diff)
			}
			if typ == SquashFS {
				return
			}
			for _, e := range tr.Entries() {
				if e.Mode&0o7000 == 0 && e.Type != TypeChar && e.Type != TypeBlock && e.Type != TypeFIFO {
					continue
				}
				mode, rdev := inodeMode(t, typ, img, "/"+e.Path)
				if got, want := mode&0o7777, e.Mode; got != want {
					t.Errorf("%s: /%s has mode %04o in the image, want %04o", typ, e.Path, got, want)
				}
				if e.Type == TypeChar || e.Type == TypeBlock {
					if got, want := rdev, [2]uint32{e.Major, e.Minor}; got != want {
						t.Errorf("%s: /%s is device %d:%d in the image, want %d:%d", typ, e.Path, got[0], got[1], want[0], want[1])
					}
				}
			}
		})
	}
}

func unixTime(s int64) time.Time { return time.Unix(s, 0) }

// lossy removes from a listing what an extractor cannot reproduce: mode
// bits above 0777, and (debugfs rdump) devices and fifos.
func lossy(list []string, typ string) []string {
	var out []string
	for _, l := range list {
		f := strings.Fields(l)
		if typ == Ext4 && (strings.Contains(l, " device ") || f[1] == "fifo") {
			continue
		}
		i := 2
		if f[1] == "character" || f[1] == "block" {
			i = 3
		}
		f[i] = "0" + f[i][len(f[i])-3:]
		out = append(out, strings.Join(f, " "))
	}
	return out
}

// inodeMode reads the mode (with the setuid, setgid and sticky bits) and
// the device number of a path straight from the image.
func inodeMode(t testing.TB, typ, img, p string) (uint32, [2]uint32) {
	t.Helper()
	switch typ {
	case Ext4:
		out := runTool(t, "debugfs", "e2fsprogs", "-R", "stat "+p, img)
		var mode uint32
		fmt.Sscanf(out[strings.Index(out, "Mode:"):], "Mode:  %o", &mode)
		var rdev [2]uint32
		if i := strings.Index(out, "Device major/minor number: "); i >= 0 {
			fmt.Sscanf(out[i:], "Device major/minor number: %d:%d", &rdev[0], &rdev[1])
		}
		return mode, rdev
	case EROFS:
		// dump.erofs prints the inode number; the mode is the le16 at
		// offset 4 of the inode, which starts at meta_blkaddr*4096+nid*32.
		sb := runTool(t, "dump.erofs", "erofs-utils", "-s", img)
		var meta int64
		fmt.Sscanf(sb[strings.Index(sb, "inode metadata start block:"):], "inode metadata start block: %d", &meta)
		out := runTool(t, "dump.erofs", "erofs-utils", "--path="+p, img)
		var nid int64
		fmt.Sscanf(out[strings.Index(out, "NID:"):], "NID: %d", &nid)
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		off := meta*4096 + nid*32
		mode := uint32(b[off+4]) | uint32(b[off+5])<<8
		var rdev [2]uint32
		if m := mode & 0o170000; m == 0o020000 || m == 0o060000 {
			// i_u holds the device number (new encoding) at offset 16.
			dev := uint32(b[off+16]) | uint32(b[off+17])<<8 | uint32(b[off+18])<<16 | uint32(b[off+19])<<24
			rdev = [2]uint32{dev >> 8 & 0xfff, dev&0xff | dev>>12&0xfff00}
		}
		return mode, rdev
	}
	t.Fatalf("no inode reader for %s", typ)
	return 0, [2]uint32{}
}

// waitNextSecond sleeps until the wall clock's second changes.
func waitNextSecond() {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second).Sub(now) + 10*time.Millisecond)
}

// TestExt4EpochZero: e2fsprogs takes E2FSPROGS_FAKE_TIME=0 for "unset", so
// epoch 0 needs care; two builds a second apart must still be identical,
// with every inode time at 0.
func TestExt4EpochZero(t *testing.T) {
	testenv.Tool(t, "mke2fs", "e2fsprogs")
	tr := NewTree(t.TempDir(), 0)
	if err := tr.AddFile("t", "/etc/x", strings.NewReader("x"), 0o644, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	tarPath := writeTreeTar(t, tr)
	var sums []string
	var img string
	for i := 0; i < 2; i++ {
		if i == 1 {
			waitNextSecond()
		}
		img = filepath.Join(t.TempDir(), "x.ext4")
		if _, err := BuildImage(context.Background(), tarPath, img, t.TempDir(), ImageOptions{Type: Ext4, UUID: uuid.MustParse("5a1d6a0e-3c1e-4f0b-8f65-7b1f8e2b0c11"), Chown: os.Geteuid() == 0}); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(img)
		sums = append(sums, shaHex(b))
	}
	if sums[0] != sums[1] {
		t.Errorf("ext4 at epoch 0 differs between builds a second apart")
	}
	fsck(t, Ext4, img)
	for _, p := range []string{"/", "/etc", "/etc/x", "/lost+found"} {
		out := runTool(t, "debugfs", "e2fsprogs", "-R", "stat "+p, img)
		for _, f := range []string{"ctime", "atime", "mtime", "crtime"} {
			if !regexp.MustCompile(`(?m)^\s*` + f + `: 0x00000000:00000000`).MatchString(out) {
				t.Errorf("%s: %s is not 0:\n%s", p, f, out)
			}
		}
	}
}

// TestErofsOwnersWithoutRoot: an erofs image of a tree with files not
// owned by root, built without setting owners (as a user who cannot),
// goes through fakeroot and is byte for byte the image root builds with
// the owners set; fsck.erofs extracts the owner from it.
func TestErofsOwnersWithoutRoot(t *testing.T) {
	testenv.Tool(t, "mkfs.erofs", "erofs-utils")
	testenv.Tool(t, "fakeroot", "fakeroot")
	if os.Geteuid() != 0 {
		t.Skip("the comparison with the image root builds needs root")
	}
	tr := NewTree(t.TempDir(), 100)
	for _, f := range []struct {
		name     string
		mode     uint32
		uid, gid int
	}{{"/home/u/f", 0o644, 1000, 1000}, {"/usr/bin/su", 0o4755, 0, 0}, {"/var/mail", 0o2775, 0, 8}, {"/etc/shadow", 0o640, 0, 42}} {
		if err := tr.AddFile("t", f.name, strings.NewReader(f.name), f.mode, f.uid, f.gid, 1); err != nil {
			t.Fatal(err)
		}
	}
	tarPath := writeTreeTar(t, tr)
	id := uuid.MustParse("5a1d6a0e-3c1e-4f0b-8f65-7b1f8e2b0c11")
	var sums []string
	for _, chown := range []bool{true, false} {
		img := filepath.Join(t.TempDir(), "img")
		if _, err := BuildImage(context.Background(), tarPath, img, t.TempDir(), ImageOptions{Type: EROFS, UUID: id, Chown: chown}); err != nil {
			t.Fatalf("chown %v: %v", chown, err)
		}
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, shaHex(b))
		if !chown {
			fsck(t, EROFS, img)
		}
	}
	if sums[0] != sums[1] {
		t.Errorf("erofs image with owners set (root) %s, through fakeroot %s: want the same bytes", sums[0], sums[1])
	}
}

func TestBuildImageErrors(t *testing.T) {
	tr := NewTree(t.TempDir(), 100)
	if err := tr.AddFile("t", "/home/u/f", strings.NewReader("x"), 0o644, 1000, 1000, 1); err != nil {
		t.Fatal(err)
	}
	tarPath := writeTreeTar(t, tr)
	id := uuid.MustParse("5a1d6a0e-3c1e-4f0b-8f65-7b1f8e2b0c11")
	testenv.Tool(t, "mke2fs", "e2fsprogs")
	_, err := BuildImage(context.Background(), tarPath, filepath.Join(t.TempDir(), "img"), t.TempDir(), ImageOptions{Type: Ext4, UUID: id, Chown: false})
	if err == nil || !strings.Contains(err.Error(), "not owned by root") || !strings.Contains(err.Error(), "squashfs") {
		t.Errorf("ext4 without chown, files of uid 1000: %v", err)
	}
	for _, tc := range []struct {
		opt  ImageOptions
		want string
	}{
		{ImageOptions{Type: "btrfs"}, `"btrfs" is not supported`},
		{ImageOptions{Type: SquashFS, Compression: "brotli"}, "compression"},
		{ImageOptions{Type: EROFS, Compression: "zstd", Chown: true}, "compression"},
	} {
		_, err := BuildImage(context.Background(), tarPath, filepath.Join(t.TempDir(), "img"), t.TempDir(), tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.opt, err, tc.want)
		}
	}
	// A missing tool names its Debian package.
	t.Setenv("PATH", t.TempDir())
	for typ, pkg := range map[string]string{EROFS: "erofs-utils", SquashFS: "squashfs-tools", Ext4: "e2fsprogs"} {
		_, err := BuildImage(context.Background(), tarPath, filepath.Join(t.TempDir(), "img"), t.TempDir(), ImageOptions{Type: typ, UUID: id, Chown: true})
		var tm *ToolMissingError
		if !errors.As(err, &tm) || tm.Package != pkg || !strings.Contains(err.Error(), "apt-get install "+pkg) {
			t.Errorf("%s without its tool: %v", typ, err)
		}
	}
}

func TestToolVersions(t *testing.T) {
	for typ, want := range map[string]string{EROFS: `^mkfs\.erofs \S+$`, SquashFS: `^mksquashfs version \S+$`, Ext4: `^mke2fs \S+, debugfs \S+$`} {
		testenv.Tool(t, map[string]string{EROFS: "mkfs.erofs", SquashFS: "mksquashfs", Ext4: "mke2fs"}[typ],
			map[string]string{EROFS: "erofs-utils", SquashFS: "squashfs-tools", Ext4: "e2fsprogs"}[typ])
		v, err := ToolVersions(context.Background(), typ)
		if err != nil || !regexp.MustCompile(want).MatchString(v) {
			t.Errorf("ToolVersions(%s) = %q, %v; want %s", typ, v, err, want)
		}
	}
	if _, err := ToolVersions(context.Background(), "zfs"); err == nil {
		t.Error("ToolVersions(zfs) succeeded")
	}
}
