package rootfs_test

import (
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

	"github.com/google/go-cmp/cmp"

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

// writeRecipe writes a recipe directory: a fake kernel input, a source
// directory and the given blocks.
func writeRecipe(t testing.TB, blocks string) string {
	t.Helper()
	dir := t.TempDir()
	k := testenv.FakeBzImage("6.1.0-test", 64*1024)
	must(t, os.WriteFile(filepath.Join(dir, "vmlinuz"), k, 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "root/usr/bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "root/usr/bin/hello"), []byte("#!/bin/sh\necho hello\n"), 0o775))
	must(t, os.WriteFile(filepath.Join(dir, "root/etc-motd"), []byte("welcome\n"), 0o600))
	must(t, os.Symlink("usr/bin", filepath.Join(dir, "root/bin")))
	recipe := fmt.Sprintf(`
recipe {
  name  = "t"
  epoch = 1700000000
}

variable "release" {
  type    = string
  default = "1.2.3"
}

input "k" {
  file   = "vmlinuz"
  sha256 = %q
}
%s`, shaHex(k), blocks)
	must(t, os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(recipe), 0o644))
	return dir
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func build(t testing.TB, dir, cache, out string) (*builder.BuildResult, error) {
	t.Helper()
	l, err := builder.Load(dir, testkinds.LoadOptions(cache, input.Options{}))
	if err != nil {
		var de *builder.DiagError
		if errors.As(err, &de) {
			var sb strings.Builder
			recipes.WriteDiagnostics(&sb, de.Files, de.Diags)
			return nil, errors.New(sb.String())
		}
		return nil, err
	}
	return l.Build(context.Background(), out, 2, nil)
}

const sampleBlocks = `
rootfs "root" {
  from {
    dir = "root"
  }
  file "/etc/cocobuild-release" {
    content = "${var.release}\n"
  }
  dir "/var/empty" {
    mode = "0700"
  }
  symlink "/sbin" {
    target = "usr/bin"
  }
  override "/etc-motd" {
    mode = "0644"
    uid  = 1000
  }
  verity {}
}

kernel "guest" {
  image   = input.k
  cmdline = concat(["console=ttyS0"], rootfs.root.verity.cmdline)
}
`

// TestRecipeBuild builds a recipe with a verity rootfs twice, from two
// caches, and requires identical outputs; veritysetup must accept the
// artifacts with the manifest's parameters, and the kernel cmdline must
// carry the root hash.
func TestRecipeBuild(t *testing.T) {
	testenv.Tool(t, "mkfs.erofs", "erofs-utils")
	vs := testenv.Tool(t, "veritysetup", "cryptsetup-bin")
	dir := writeRecipe(t, sampleBlocks)
	outA, outB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	resA, err := build(t, dir, t.TempDir(), outA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := build(t, dir, t.TempDir(), outB); err != nil {
		t.Fatal(err)
	}
	for _, a := range resA.Manifest.Artifacts {
		x, _ := os.ReadFile(filepath.Join(outA, a.Path))
		y, _ := os.ReadFile(filepath.Join(outB, a.Path))
		if shaHex(x) != a.SHA256 || shaHex(y) != a.SHA256 {
			t.Errorf("%s: builds differ or disagree with the manifest: %s, %s, manifest %s", a.Path, shaHex(x), shaHex(y), a.SHA256)
		}
	}
	ma, _ := os.ReadFile(filepath.Join(outA, "manifest.json"))
	mb, _ := os.ReadFile(filepath.Join(outB, "manifest.json"))
	if diff := cmp.Diff(string(ma), string(mb)); diff != "" {
		t.Errorf("manifests differ:\n%s", diff)
	}

	arts := map[string]manifest.Artifact{}
	for _, a := range resA.Manifest.Artifacts {
		arts[a.Name] = a
	}
	img, vt := arts["rootfs.root"], arts["rootfs.root.verity"]
	if img.Kind != "rootfs" || vt.Kind != "verity" {
		t.Fatalf("artifacts: %+v", resA.Manifest.Artifacts)
	}
	for _, k := range []string{"root_hash", "salt", "data_blocks", "data_block_size", "hash_block_size", "hash_offset", "hash_algorithm"} {
		if _, ok := vt.Extra[k]; !ok {
			t.Errorf("verity manifest entry lacks %s: %v", k, vt.Extra)
		}
	}
	x := vt.Extra
	num := func(k string) string { return fmt.Sprint(x[k]) }
	args := []string{"verify", filepath.Join(outA, img.Path), filepath.Join(outA, vt.Path), x["root_hash"].(string),
		"--hash", x["hash_algorithm"].(string), "--data-block-size", num("data_block_size"), "--hash-block-size", num("hash_block_size"),
		"--data-blocks", num("data_blocks"), "--hash-offset", num("hash_offset"), "--salt", x["salt"].(string)}
	if out, err := exec.Command(vs, args...).CombinedOutput(); err != nil {
		t.Errorf("veritysetup %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if got, want := num("data_blocks"), fmt.Sprint(img.Size/4096); got != want {
		t.Errorf("data_blocks = %v, want %v (image of %d bytes)", got, want, img.Size)
	}
	kern := arts["kernel.guest"]
	cl := kern.Extra["cmdline"].(string)
	wantCl := fmt.Sprintf(`console=ttyS0 dm-mod.create="dm-verity,,,ro,0 %d verity 1 PARTUUID=%s PARTUUID=%s 4096 4096 %d 1 sha256 %s %s" root=/dev/dm-0 rootfstype=erofs ro`,
		img.Size/512, x["root_hash"].(string)[:8]+"-"+x["root_hash"].(string)[8:12]+"-"+x["root_hash"].(string)[12:16]+"-"+x["root_hash"].(string)[16:20]+"-"+x["root_hash"].(string)[20:32],
		x["partition_uuid"], img.Size/4096, x["root_hash"], x["salt"])
	if cl != wantCl {
		t.Errorf("kernel cmdline\n got %s\nwant %s", cl, wantCl)
	}

	// The image holds what the recipe says.
	ex := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command(testenv.Tool(t, "fsck.erofs", "erofs-utils"), "--extract="+ex, filepath.Join(outA, img.Path)).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs: %v\n%s", err, out)
	}
	for p, want := range map[string]string{"etc/cocobuild-release": "1.2.3\n", "usr/bin/hello": "#!/bin/sh\necho hello\n", "etc-motd": "welcome\n"} {
		if got, err := os.ReadFile(filepath.Join(ex, p)); err != nil || string(got) != want {
			t.Errorf("/%s = %q, %v; want %q", p, got, err, want)
		}
	}
	for p, want := range map[string]string{"usr/bin/hello": "-rwxr-xr-x", "etc-motd": "-rw-r--r--", "var/empty": "drwx------", "sbin": "Lrwxrwxrwx"} {
		st, err := os.Lstat(filepath.Join(ex, p))
		if err != nil {
			t.Errorf("/%s: %v", p, err)
			continue
		}
		if got := st.Mode().String(); got != want {
			t.Errorf("/%s mode %s, want %s", p, got, want)
		}
	}
}
