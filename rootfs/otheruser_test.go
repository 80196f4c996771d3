package rootfs

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/uuid"
)

const helperEnv = "COCOBUILD_ROOTFS_IMAGE_HELPER"

// TestHelperBuildImage is not a test: TestImagesAsOtherUser runs the test
// binary as another user with this one selected, to build an image there.
func TestHelperBuildImage(t *testing.T) {
	args := strings.Split(os.Getenv(helperEnv), "\n")
	if len(args) != 3 {
		t.Skip("helper for TestImagesAsOtherUser")
	}
	typ, tarPath, out := args[0], args[1], args[2]
	opt := ImageOptions{Type: typ, UUID: uuid.MustParse("0f2e2f5c-6a4b-4d4e-9a51-3c1b2a0d9e7f"), Epoch: testEpoch, Label: "root", Chown: os.Geteuid() == 0}
	if _, err := BuildImage(context.Background(), tarPath, out, t.TempDir(), opt); err != nil {
		t.Fatal(err)
	}
}

// TestImagesAsOtherUser builds each image as root and as an unprivileged
// user, and requires the same bytes: nothing of the builder's uid may
// reach the image. erofs and ext4 take a tree owned by root (other owners
// need root); squashfs takes any tree, devices included.
func TestImagesAsOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching to another user needs root")
	}
	// A directory the other user can enter and write, holding a copy of
	// this test binary.
	dir, err := os.MkdirTemp("", "cocobuild-otheruser-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "rootfs.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	allRoot := NewTree(t.TempDir(), testEpoch)
	for _, f := range []string{"/etc/a", "/usr/bin/b", "/x y/z"} {
		if err := allRoot.AddFile("t", f, strings.NewReader(f), 0o644, 0, 0, 10); err != nil {
			t.Fatal(err)
		}
	}
	if err := allRoot.AddEntry("t", "/etc/l", Entry{Type: TypeSymlink, Link: "a"}); err != nil {
		t.Fatal(err)
	}
	trees := map[string]*Tree{EROFS: allRoot, Ext4: allRoot, SquashFS: sampleTree(t, true)}
	for _, typ := range FileSystems {
		t.Run(typ, func(t *testing.T) {
			if typ == SquashFS && !userNamespaces(t) {
				t.Skip("uid 65534 cannot create a user namespace here (needed for squashfs as non-root)")
			}
			tarPath := filepath.Join(dir, typ+".tar")
			f, err := os.Create(tarPath)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := trees[typ].WriteTar(f); err != nil {
				t.Fatal(err)
			}
			f.Close()
			os.Chmod(tarPath, 0o644)
			asRoot := filepath.Join(t.TempDir(), "root."+typ)
			opt := ImageOptions{Type: typ, UUID: uuid.MustParse("0f2e2f5c-6a4b-4d4e-9a51-3c1b2a0d9e7f"), Epoch: testEpoch, Label: "root", Chown: true}
			if _, err := BuildImage(context.Background(), tarPath, asRoot, t.TempDir(), opt); err != nil {
				t.Fatal(err)
			}
			asUser := filepath.Join(dir, "user."+typ)
			cmd := exec.Command(bin, "-test.run=^TestHelperBuildImage$", "-test.count=1")
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + dir, "HOME=" + dir, helperEnv + "=" + typ + "\n" + tarPath + "\n" + asUser}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("building as uid 65534: %v\n%s", err, out)
			}
			a, _ := os.ReadFile(asRoot)
			b, err := os.ReadFile(asUser)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Errorf("%s built as uid 65534 differs from the one built as root (%s, %s)", typ, shaHex(a), shaHex(b))
			}
		})
	}
}

// userNamespaces says whether uid 65534 may create a user namespace
// (asked of util-linux's unshare, run as that user).
func userNamespaces(t testing.TB) bool {
	bin, err := exec.LookPath("unshare")
	if err != nil {
		t.Logf("unshare (util-linux) not found: %v", err)
		return false
	}
	cmd := exec.Command(bin, "--user", "--map-root-user", "/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("user namespace as uid 65534: %v %s", err, out)
	}
	return err == nil
}
