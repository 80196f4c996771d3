package diff

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/cocobuild/cocobuild/disk"
	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/rootfs/verity"
)

// fsTree writes the test tree; changed gives bin/agent other content (of
// the same size), etc/release another mode and bin/sh another target.
func fsTree(t *testing.T, changed bool) string {
	t.Helper()
	dir := t.TempDir()
	agent, mode, target := "agent-v1", os.FileMode(0o644), "agent"
	if changed {
		agent, mode, target = "agent-v2", 0o600, "busybox"
	}
	must(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "bin", "agent"), []byte(agent), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "etc", "release"), []byte("0.1.0\n"), mode))
	must(t, os.Chmod(filepath.Join(dir, "etc", "release"), mode))
	must(t, os.WriteFile(filepath.Join(dir, "etc", "same"), []byte(strings.Repeat("same\n", 1000)), 0o644))
	must(t, os.Symlink(target, filepath.Join(dir, "bin", "sh")))
	epoch := time.Unix(1700000000, 0)
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode()&os.ModeSymlink == 0 {
			os.Chtimes(p, epoch, epoch)
		}
		return nil
	})
	return dir
}

// mkfs makes an image of kind from dir with the Debian tool; variant
// changes the image's UUID (and for squashfs its creation time), so that
// images of the same tree differ in bytes only.
func mkfs(t *testing.T, kind, dir string, variant int) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), kind+".img")
	uuid := []string{"8c3e3bb4-6a3a-4b2e-9a3b-0f1e2d3c4b5a", "1b2c3d4e-5f60-4718-9a0b-1c2d3e4f5a6b"}[variant]
	var cmd *exec.Cmd
	switch kind {
	case "erofs":
		cmd = exec.Command(testenv.Tool(t, "mkfs.erofs", "erofs-utils"), "-T", "1700000000", "-U", uuid, out, dir)
	case "squashfs":
		cmd = exec.Command(testenv.Tool(t, "mksquashfs", "squashfs-tools"), dir, out, "-noappend", "-quiet", "-no-progress",
			"-all-root", "-all-time", "1700000000", "-mkfs-time", []string{"1700000000", "1700000001"}[variant])
	case "ext4":
		cmd = exec.Command(testenv.Tool(t, "mkfs.ext4", "e2fsprogs"), "-q", "-F", "-d", dir, "-U", uuid,
			"-E", "root_owner=0:0,hash_seed="+uuid, "-b", "4096", out, "4M")
		cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1700000000")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, b)
	}
	return out
}

// summary is "member: what" for each difference, all of them read as
// format.
func summary(t *testing.T, ds []Difference, format string) []string {
	t.Helper()
	var got []string
	for _, d := range ds {
		if d.Format != format {
			t.Errorf("read as %s, want %s: %v", d.Format, format, d)
		}
		got = append(got, d.Member+": "+d.What)
	}
	return got
}

var wantChanged = []string{
	"bin/agent: content; first differing byte at offset 7",
	"bin/sh: link",
	"etc/release: mode",
}

// TestFSImagesNameTheChangedFiles builds erofs, squashfs and ext4 images
// of two trees that differ in one file's content, one mode and one
// symbolic link's target, and checks that diff names exactly those files;
// images of the same tree that differ in bytes (UUID, time) give one
// layout line and no file.
func TestFSImagesNameTheChangedFiles(t *testing.T) {
	base, changed := fsTree(t, false), fsTree(t, true)
	for _, kind := range []string{"erofs", "squashfs", "ext4"} {
		t.Run(kind, func(t *testing.T) {
			a, b := mkfs(t, kind, base, 0), mkfs(t, kind, changed, 0)
			rep, err := Paths(a, b)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(wantChanged, summary(t, rep.Differences, kind)); d != "" {
				t.Errorf("differences (-want +got):\n%s", d)
			}
			if rep.Differences[1].A != "agent" || rep.Differences[1].B != "busybox" {
				t.Errorf("link difference %+v, want a: agent, b: busybox", rep.Differences[1])
			}
			same := mkfs(t, kind, base, 1)
			rep, err = Paths(a, same)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Differences) != 1 || rep.Differences[0].Member != "" || !strings.HasPrefix(rep.Differences[0].What, "layout (same files") {
				t.Errorf("images of the same tree: %+v, want one layout line and no file", rep.Differences)
			}
		})
	}
}

// TestFSImagesUnderVerity appends a dm-verity tree (as the rootfs block
// does) to the images: the files are still compared, and two images with
// the same data part and another salt differ in the verity area only.
func TestFSImagesUnderVerity(t *testing.T) {
	base, changed := fsTree(t, false), fsTree(t, true)
	appendTree := func(p string, salt string) string {
		t.Helper()
		if _, err := verity.Append(context.Background(), p, verity.Params{Salt: []byte(salt), Superblock: true, UUID: [16]byte{1, 2, 3}}); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := appendTree(mkfs(t, "erofs", base, 0), "salt-a")
	b := appendTree(mkfs(t, "erofs", changed, 0), "salt-a")
	rep, err := Paths(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(wantChanged, summary(t, rep.Differences, "erofs")); d != "" {
		t.Errorf("differences under verity (-want +got):\n%s", d)
	}
	b = appendTree(mkfs(t, "erofs", base, 0), "salt-b")
	rep, err = Paths(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Differences) != 1 || !strings.HasPrefix(rep.Differences[0].What, "dm-verity area (same files, same data part") {
		t.Errorf("same data, other salt: %+v, want one dm-verity area line", rep.Differences)
	}
}

// TestGPTDescendsIntoFileSystems: a disk whose root partition holds
// erofs images of the two trees names the files inside the partition.
func TestGPTDescendsIntoFileSystems(t *testing.T) {
	base, changed := fsTree(t, false), fsTree(t, true)
	image := func(root string) string {
		l, err := disk.Plan(&disk.Spec{GUID: "7e8c1d36-7f7c-5a51-9c22-1b7e0f1c2d3e", Size: 4 << 20, Partitions: []disk.Partition{
			{Name: "root", Type: disk.PartitionTypes["root-x86-64"], GUID: "4fbd7e29-9d25-41b8-afd0-062c0ceff05d", Content: root, Size: 1 << 20},
		}})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "disk.raw")
		if err := disk.WriteRaw(context.Background(), p, l, 0); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rep, err := Paths(image(mkfs(t, "erofs", base, 0)), image(mkfs(t, "erofs", changed, 0)))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, w := range wantChanged {
		want = append(want, "partition 1 (root): "+w)
	}
	if d := cmp.Diff(want, summary(t, rep.Differences, "erofs")); d != "" {
		t.Errorf("differences (-want +got):\n%s", d)
	}
}

// TestHostileFSImages: an image whose superblock is valid but whose rest
// is garbage fails with an error naming the tool and the image, at once;
// a tree larger than the decompressed limit stops the extraction with the
// limit; a missing tool names its Debian package.
func TestHostileFSImages(t *testing.T) {
	base, changed := fsTree(t, false), fsTree(t, true)
	for _, kind := range []string{"erofs", "squashfs", "ext4"} {
		t.Run(kind, func(t *testing.T) {
			good := mkfs(t, kind, base, 0)
			b, err := os.ReadFile(good)
			must(t, err)
			keep := map[string]int{"erofs": 1024 + 128, "squashfs": 96, "ext4": 2048}[kind]
			for i := keep; i < len(b); i++ {
				b[i] = byte(i*131 + 7)
			}
			bad := filepath.Join(t.TempDir(), "bad.img")
			must(t, os.WriteFile(bad, b, 0o644))
			start := time.Now()
			_, err = Paths(good, bad)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %v, want < 10s", took)
			}
			tool := fsTools[kind][0]
			if err == nil || !strings.Contains(err.Error(), tool) || !strings.Contains(err.Error(), "bad.img") || !strings.Contains(err.Error(), "damaged") {
				t.Errorf("garbage after the superblock: error %v, want one naming %s, bad.img and the damage", err, tool)
			}

			// squashfs and erofs are refused from their listing, before
			// extraction; ext4's stats give no sizes: the watchdog stops it.
			wantWhat := map[string]string{"erofs": "bytes of the files in the erofs image", "squashfs": "bytes of the files in the squashfs image", "ext4": "bytes extracted"}[kind]
			other := mkfs(t, kind, changed, 0)
			small := Comparer{Limits: (*limits.Values)(nil).With(limits.Decompressed, 2048)}
			_, err = small.Paths(good, other)
			var le *limits.Error
			if !errors.As(err, &le) || le.Limit.Name != "decompressed" || !strings.Contains(err.Error(), wantWhat) || !strings.Contains(err.Error(), "--limit decompressed=") {
				t.Errorf("with a 2 KiB decompressed limit: error %v, want the decompressed limit for %q", err, wantWhat)
			}
			few := Comparer{Limits: (*limits.Values)(nil).With(limits.Entries, 3)}
			_, err = few.Paths(good, other)
			if !errors.As(err, &le) || le.Limit.Name != "entries" || !strings.Contains(err.Error(), "entries of the "+kind+" image") {
				t.Errorf("with an entries limit of 3: error %v, want the entries limit from the %s listing", err, kind)
			}
		})
	}
	t.Run("missing tool", func(t *testing.T) {
		a, b := mkfs(t, "squashfs", base, 0), mkfs(t, "squashfs", changed, 0)
		t.Setenv("PATH", t.TempDir())
		_, err := Paths(a, b)
		if err == nil || !strings.Contains(err.Error(), "unsquashfs not found: install the Debian package squashfs-tools") {
			t.Errorf("without unsquashfs: error %v, want one naming squashfs-tools", err)
		}
	})
}

// TestFSImageOwners: run as root, the tools keep the owners, and an image
// whose files belong to another uid names each of them.
func TestFSImageOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owners are compared only as root (the tools keep them only then)")
	}
	base := fsTree(t, false)
	a := mkfs(t, "erofs", base, 0)
	b := filepath.Join(t.TempDir(), "b.img")
	cmd := exec.Command(testenv.Tool(t, "mkfs.erofs", "erofs-utils"), "-T", "1700000000", "-U", "8c3e3bb4-6a3a-4b2e-9a3b-0f1e2d3c4b5a", "--force-uid=1000", b, base)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	rep, err := Paths(a, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/: owner", "bin: owner", "bin/agent: owner", "bin/sh: owner", "etc: owner", "etc/release: owner", "etc/same: owner"}
	if d := cmp.Diff(want, summary(t, rep.Differences, "erofs")); d != "" {
		t.Errorf("differences (-want +got):\n%s", d)
	}
	if len(rep.Differences) > 0 && (rep.Differences[0].A != "0:0" || rep.Differences[0].B != "1000:0") {
		t.Errorf("owner difference %+v, want a: 0:0, b: 1000:0", rep.Differences[0])
	}
}

// TestSquashfsXattrsAndRoot: unsquashfs run as root extracts extended
// attributes, and an xattr's value is named; the root directory's mode
// is compared too.
func TestSquashfsXattrsAndRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("unsquashfs extracts extended attributes only as root")
	}
	a, b := fsTree(t, false), fsTree(t, false)
	must(t, unix.Lsetxattr(filepath.Join(a, "etc", "same"), "user.color", []byte("red"), 0))
	must(t, unix.Lsetxattr(filepath.Join(b, "etc", "same"), "user.color", []byte("blue"), 0))
	must(t, os.Chmod(a, 0o755))
	must(t, os.Chmod(b, 0o711))
	rep, err := Paths(mkfs(t, "squashfs", a, 0), mkfs(t, "squashfs", b, 0))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rep.Differences {
		got = append(got, d.Member+": "+d.What+" (a: "+d.A+", b: "+d.B+")")
	}
	want := []string{"/: mode (a: drwxr-xr-x, b: drwx--x--x)", "etc/same: xattrs (a: user.color=red, b: user.color=blue)"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("differences (-want +got):\n%s", d)
	}
}

// TestFSImageMtimes: a file whose modification time differs is named,
// with both times, in each file system.
func TestFSImageMtimes(t *testing.T) {
	base, touched := fsTree(t, false), fsTree(t, false)
	when := time.Unix(1700000123, 0)
	must(t, os.Chtimes(filepath.Join(touched, "etc", "same"), when, when))
	for _, kind := range []string{"erofs", "ext4"} { // mksquashfs -all-time and mkfs.erofs -T set every time
		t.Run(kind, func(t *testing.T) {
			a, b := mkfs(t, kind, base, 0), mkfs(t, kind, touched, 0)
			if kind == "erofs" { // per-file times, as the rootfs block makes them
				a, b = filepath.Join(t.TempDir(), "a.img"), filepath.Join(t.TempDir(), "b.img")
				for _, x := range [][2]string{{a, base}, {b, touched}} {
					cmd := exec.Command(testenv.Tool(t, "mkfs.erofs", "erofs-utils"), "-U", "8c3e3bb4-6a3a-4b2e-9a3b-0f1e2d3c4b5a", x[0], x[1])
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
					}
				}
			}
			rep, err := Paths(a, b)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range rep.Differences {
				got = append(got, d.Member+": "+d.What+" (a: "+d.A+", b: "+d.B+")")
			}
			if d := cmp.Diff([]string{"etc/same: mtime (a: 1700000000, b: 1700000123)"}, got); d != "" {
				t.Errorf("differences (-want +got):\n%s", d)
			}
		})
	}
}

// TestSniffFS: the superblocks the tools write are recognised, with their
// sizes; a two-byte ext4 magic or a squashfs magic of another version in
// other data is not.
func TestSniffFS(t *testing.T) {
	tree := fsTree(t, false)
	for _, kind := range []string{"erofs", "squashfs", "ext4"} {
		b, err := os.ReadFile(mkfs(t, kind, tree, 0))
		must(t, err)
		img, ok := sniffFS(memArtifact("x", b).r)
		if !ok || img.kind != kind || img.dataSize != int64(len(b)) || img.verityAt != -1 {
			t.Errorf("%s image of %d bytes: got %+v, %v, want kind %s, data size %d, no verity", kind, len(b), img, ok, kind, len(b))
		}
	}
	ext4Magic := make([]byte, 4096)
	ext4Magic[1024+0x38], ext4Magic[1024+0x39] = 0x53, 0xef
	squashfs3 := append([]byte("hsqs"), make([]byte, 4092)...)
	squashfs3[28] = 3
	for name, b := range map[string][]byte{"ext4 magic alone": ext4Magic, "squashfs 3": squashfs3} {
		if img, ok := sniffFS(memArtifact("x", b).r); ok {
			t.Errorf("%s: read as %+v, want no file system", name, img)
		}
	}
}
