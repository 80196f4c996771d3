package disk_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/recipes"
)

func shaHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeRecipe(t testing.TB, blocks string) string {
	t.Helper()
	dir := t.TempDir()
	k := testenv.FakeBzImage("6.1.0-test", 64*1024)
	must(t, os.WriteFile(filepath.Join(dir, "vmlinuz"), k, 0o644))
	recipe := fmt.Sprintf(`
recipe {
  name  = "t"
  epoch = 1700000000
}

input "k" {
  file   = "vmlinuz"
  sha256 = %q
}
%s`, shaHex(k), blocks)
	must(t, os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(recipe), 0o644))
	return dir
}

func load(dir, cache string) (*builder.Loaded, error) {
	l, err := builder.Load(dir, testkinds.LoadOptions(cache, input.Options{}))
	var de *builder.DiagError
	if errors.As(err, &de) {
		var sb strings.Builder
		recipes.WriteDiagnostics(&sb, de.Files, de.Diags)
		return nil, errors.New(sb.String())
	}
	return l, err
}

func build(t testing.TB, dir, cache, out string) (*builder.BuildResult, error) {
	t.Helper()
	l, err := load(dir, cache)
	if err != nil {
		return nil, err
	}
	return l.Build(context.Background(), out, 2, nil)
}

const guestBlocks = `
rootfs "root" {
  file "/etc/cocobuild-release" {
    content = "0.1.0\n"
  }
  verity {
    data_device = "/dev/vda1"
    hash_device = "/dev/vda2"
  }
}

kernel "guest" {
  image   = input.k
  cmdline = concat(["console=ttyS0"], rootfs.root.verity.cmdline)
}

disk "guest" {
  format = ["raw", "qcow2"]
  partition "root" {
    content = rootfs.root
  }
  partition "verity" {
    content = rootfs.root.verity
  }
  partition "esp" {
    size  = "40MiB"
    files = {
      "/EFI/BOOT/BOOTX64.EFI" = kernel.guest.image
    }
  }
}
`

// TestDiskRecipe builds a verity rootfs onto a GPT disk (raw and qcow2)
// twice and requires identical bytes; sgdisk must find no problem; the
// partition GUIDs are the halves of the root hash; veritysetup accepts the
// partitions as they are on the disk and refuses them with one byte of the
// root partition flipped.
func TestDiskRecipe(t *testing.T) {
	testenv.Tool(t, "mkfs.erofs", "erofs-utils")
	testenv.Tool(t, "qemu-img", "qemu-utils")
	vs := testenv.Tool(t, "veritysetup", "cryptsetup-bin")
	dir := writeRecipe(t, guestBlocks)
	outA, outB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	res, err := build(t, dir, t.TempDir(), outA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := build(t, dir, t.TempDir(), outB); err != nil {
		t.Fatal(err)
	}
	arts := map[string]manifest.Artifact{}
	for _, a := range res.Manifest.Artifacts {
		arts[a.Name] = a
		x, _ := os.ReadFile(filepath.Join(outA, a.Path))
		y, _ := os.ReadFile(filepath.Join(outB, a.Path))
		if shaHex(x) != a.SHA256 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between builds or from the manifest", a.Path)
		}
	}
	raw, qc := arts["disk.guest"], arts["disk.guest.qcow2"]
	if raw.Path != "disk/guest/disk.raw" || qc.Path != "disk/guest/disk.qcow2" {
		t.Fatalf("disk artifacts: %+v", res.Manifest.Artifacts)
	}
	img := filepath.Join(outA, raw.Path)
	out, err := exec.Command(testenv.Tool(t, "sgdisk", "gdisk"), "-v", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") {
		t.Errorf("sgdisk -v: %v\n%s", err, out)
	}
	cmpOut, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "qcow2", img, filepath.Join(outA, qc.Path)).CombinedOutput()
	if err != nil {
		t.Errorf("qemu-img compare: %v\n%s", err, cmpOut)
	}

	v := arts["rootfs.root.verity"].Extra
	rh := v["root_hash"].(string)
	guid := func(h string) string { return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32] }
	parts := raw.Extra["partitions"].([]map[string]any)
	if got, want := parts[0]["uuid"], guid(rh[:32]); got != want {
		t.Errorf("root partition GUID %v, want the first half of the root hash %s", got, want)
	}
	if got, want := parts[1]["uuid"], guid(rh[32:]); got != want {
		t.Errorf("verity partition GUID %v, want the second half of the root hash %s", got, want)
	}
	if got, want := parts[0]["type"], "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"; got != want {
		t.Errorf("root partition type %v, want %s", got, want)
	}
	if got, want := parts[2]["type"], "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"; got != want {
		t.Errorf("esp partition type %v, want %s", got, want)
	}
	kcl := arts["kernel.guest"].Extra["cmdline"].(string)
	if !strings.Contains(kcl, " /dev/vda1 /dev/vda2 ") || !strings.Contains(kcl, rh) {
		t.Errorf("kernel cmdline %q lacks the devices or the root hash", kcl)
	}

	// The partitions as they lie on the disk (whole partitions, padding
	// included), checked by veritysetup with the root hash alone: the
	// superblock gives the rest.
	b, _ := os.ReadFile(img)
	part := func(i int) []byte {
		first, last := int(parts[i]["first_lba"].(float64)), int(parts[i]["last_lba"].(float64))
		return b[first*512 : (last+1)*512]
	}
	tmp := t.TempDir()
	data, hash := filepath.Join(tmp, "p1"), filepath.Join(tmp, "p2")
	must(t, os.WriteFile(data, part(0), 0o644))
	must(t, os.WriteFile(hash, part(1), 0o644))
	if out, err := exec.Command(vs, "verify", data, hash, rh).CombinedOutput(); err != nil {
		t.Errorf("veritysetup verify on the disk's partitions: %v\n%s", err, out)
	}
	flipped := part(0)
	flipped[100] ^= 0x20
	must(t, os.WriteFile(data, flipped, 0o644))
	if out, err := exec.Command(vs, "verify", data, hash, rh).CombinedOutput(); err == nil {
		t.Errorf("veritysetup verify accepted a root partition with a flipped byte:\n%s", out)
	}
}

func TestDiskRecipeErrors(t *testing.T) {
	tests := []struct {
		name, blocks, want string
	}{
		{"no partitions", `disk "d" {}`, "Disk without partitions"},
		{"bad format", `disk "d" {
  format = "vmdk"
  partition "p" {
    size = "1MiB"
  }
}`, `not "vmdk"`},
		{"content and files", `disk "d" {
  partition "p" {
    content = input.k
    files   = { "/a" = input.k }
  }
}`, "either content"},
		{"bad type", `disk "d" {
  partition "p" {
    content = input.k
    type    = "rootfs"
  }
}`, "is not one of esp"},
		{"unaligned size", `disk "d" {
  partition "p" {
    size = "1000KiB"
  }
}`, "not a multiple of 1MiB"},
		{"small esp", `disk "d" {
  partition "esp" {
    size  = "8MiB"
    files = { "/EFI/BOOT/BOOTX64.EFI" = input.k }
  }
}`, "at least 33MiB"},
		{"null verity", `rootfs "r" {
  file "/x" {
    content = "x"
  }
}
disk "d" {
  partition "v" {
    content = rootfs.r.verity
  }
}`, "Null content"},
		{"relative file path", `disk "d" {
  partition "esp" {
    size  = "40MiB"
    files = { "EFI/x" = input.k }
  }
}`, "clean absolute path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeRecipe(t, tc.blocks)
			_, err := build(t, dir, t.TempDir(), filepath.Join(t.TempDir(), "o"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), "r.hcl:") {
				t.Errorf("error %v does not point into the recipe", err)
			}
		})
	}
}
