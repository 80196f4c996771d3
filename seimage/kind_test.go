package seimage_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
	model "github.com/cocobuild/cocobuild/measure/se"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestReproducibleImage builds a recipe with an se_image block (the
// kernel, initrd and parmline of inputs/se, s390-tools' test host key,
// Debian's stage3a/stage3b loaders) and a measure "se" block of it, twice,
// with separate caches: the images must be identical, byte for byte, and
// so the published tag; the image must check as genprotimg's do (its PLD,
// ALD and TLD recomputed by the measure block), and open with the header
// key derived from the seed to give back the inputs.
func TestReproducibleImage(t *testing.T) {
	dir := t.TempDir()
	seed := bytes.Repeat([]byte("cocobuild se seed"), 2)
	if err := os.WriteFile(filepath.Join(dir, "seed"), seed, 0o600); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"kernel": "kernel.img", "initrd": "initrd.img", "host": "host.crt", "stage3a": "stage3a.bin", "stage3b": "stage3b_reloc.bin"}
	src := "recipe {\n  name = \"se\"\n}\n\n"
	for name, f := range files {
		p := testenv.VectorFile(t, "inputs/se/"+f)
		src += fmt.Sprintf("input %q {\n  file   = %q\n  sha256 = %q\n}\n\n", name, p, sha(testenv.ReadVector(t, "inputs/se/"+f)))
	}
	src += fmt.Sprintf("input \"seed\" {\n  file   = \"seed\"\n  sha256 = %q\n}\n\n", sha(seed))
	cmdline := "root=/dev/vda console=ttyS0"
	src += fmt.Sprintf(`se_image "guest" {
  kernel    = input.kernel
  initrd    = input.initrd
  cmdline   = %q
  host_keys = [input.host]
  stage3a   = input.stage3a
  stage3b   = input.stage3b
  seed      = input.seed
}

measure "se" {
  image = se_image.guest
}
`, cmdline)
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var images [][]byte
	var tags []any
	for i := range 2 {
		out := filepath.Join(dir, fmt.Sprintf("out%d", i))
		res, err := testkinds.Load(t, dir, t.TempDir(), input.Options{}).Build(context.Background(), out, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		img, err := os.ReadFile(filepath.Join(out, "se_image", "guest", "se.img"))
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, img)
		for _, m := range res.Manifest.Measurements {
			tags = append(tags, m.Values["tag"])
		}
	}
	if !bytes.Equal(images[0], images[1]) || len(tags) != 2 || tags[0] != tags[1] {
		t.Fatalf("two builds: images equal %v, tags %v; want the same image and tag", bytes.Equal(images[0], images[1]), tags)
	}

	img := images[0]
	im, err := model.Parse(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if tags[0] != hex.EncodeToString(im.Header.Tag[:]) {
		t.Errorf("measured tag %v, the image's header has %x", tags[0], im.Header.Tag)
	}
	hk, err := model.ParseHostKey(testenv.ReadVector(t, "inputs/se/host.crt"))
	if err != nil {
		t.Fatal(err)
	}
	in := &model.BuildInput{Kernel: testenv.ReadVector(t, "inputs/se/kernel.img"), Initrd: testenv.ReadVector(t, "inputs/se/initrd.img"),
		Cmdline: []byte(cmdline), Stage3a: testenv.ReadVector(t, "inputs/se/stage3a.bin"), Stage3b: testenv.ReadVector(t, "inputs/se/stage3b_reloc.bin"),
		HostKeys: []*ecdh.PublicKey{hk}}
	keys, err := model.DeriveKeys(seed, in)
	if err != nil {
		t.Fatal(err)
	}
	s, err := im.Header.Open(img[im.HeaderOffset:], keys.Header[:])
	if err != nil {
		t.Fatal(err)
	}
	args, err := im.ReadStage3bArgs(context.Background(), bytes.NewReader(img), s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := im.Contents(context.Background(), bytes.NewReader(img), s, args)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]model.Content{
		"kernel":  {Size: uint64(len(in.Kernel)), SHA256: sha(in.Kernel)},
		"initrd":  {Size: uint64(len(in.Initrd)), SHA256: sha(in.Initrd)},
		"cmdline": {Size: uint64(len(cmdline)), SHA256: sha([]byte(cmdline)), Text: cmdline},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("contents (-want +got):\n%s", d)
	}
}
