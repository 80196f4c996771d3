package kernel

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// moduleTree makes an installed module tree as modules_install leaves it,
// with file modes from perm.
func moduleTree(t *testing.T, perm os.FileMode) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "lib", "modules", "6.12.117")
	for p, body := range map[string]string{
		"kernel/drivers/block/loop.ko": "\x7fELF loop",
		"modules.order":                "kernel/drivers/block/loop.ko\n",
		"modules.builtin":              "kernel/fs/erofs/erofs.ko\n",
		"modules.builtin.modinfo":      "erofs.license=GPL\x00",
	} {
		f := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(body), perm); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/somewhere/cocobuild-obj", filepath.Join(root, "build")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("block/loop.ko", filepath.Join(root, "kernel/drivers/loop.ko")); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestWriteModuleTar(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	var a, b bytes.Buffer
	n, err := writeModuleTar(moduleTree(t, 0o600), &a, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d modules, want 1", n)
	}
	if _, err := writeModuleTar(moduleTree(t, 0o664), &b, epoch); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two trees with different paths and modes give different archives")
	}
	type hdr struct {
		Name, Link string
		Type       byte
		Mode       int64
	}
	var got []hdr
	tr := tar.NewReader(&a)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(epoch) {
			t.Errorf("%s: uid %d gid %d uname %q gname %q mtime %v", h.Name, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime)
		}
		got = append(got, hdr{h.Name, h.Linkname, h.Typeflag, h.Mode})
	}
	want := []hdr{
		{"kernel/", "", tar.TypeDir, 0o755},
		{"kernel/drivers/", "", tar.TypeDir, 0o755},
		{"kernel/drivers/block/", "", tar.TypeDir, 0o755},
		{"kernel/drivers/block/loop.ko", "", tar.TypeReg, 0o644},
		{"kernel/drivers/loop.ko", "block/loop.ko", tar.TypeSymlink, 0o777},
		{"modules.builtin", "", tar.TypeReg, 0o644},
		{"modules.builtin.modinfo", "", tar.TypeReg, 0o644},
		{"modules.order", "", tar.TypeReg, 0o644},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestWriteModuleTarRejectsOutsideLinks(t *testing.T) {
	for _, target := range []string{"/etc/passwd", "../../../etc"} {
		root := moduleTree(t, 0o644)
		if err := os.Symlink(target, filepath.Join(root, "kernel/escape")); err != nil {
			t.Fatal(err)
		}
		_, err := writeModuleTar(root, io.Discard, time.Unix(0, 0))
		if err == nil || !strings.Contains(err.Error(), "outside the tree") {
			t.Errorf("link to %s: error %v, want one saying it leaves the tree", target, err)
		}
	}
}
