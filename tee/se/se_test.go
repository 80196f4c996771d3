package se_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
	"github.com/cocobuild/cocobuild/manifest"
	model "github.com/cocobuild/cocobuild/measure/se"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/tee/se"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// hostKeyHash is the public host-key hash of the host-key document
// host.crt as Trustee's se_parse_hdr.py computes se.attestation_phkh
// (deps/verifier/src/se/se_parse_hdr.py): SHA-256 of the P-521 key's affine
// coordinates, each left-padded to 80 bytes. genprotimg wrote the image's
// key slot from the same document, so the slot's hash must equal it.
func hostKeyHash(t *testing.T) string {
	t.Helper()
	pub, err := model.ParseHostKey(testenv.ReadVector(t, "inputs/se/host.crt"))
	if err != nil {
		t.Fatal(err)
	}
	raw := pub.Bytes() // 0x04 || X || Y, each 66 bytes for P-521
	n := (len(raw) - 1) / 2
	var b []byte
	for _, c := range [][]byte{raw[1 : 1+n], raw[1+n:]} {
		b = append(b, make([]byte, 80-len(c))...)
		b = append(b, c...)
	}
	return sha(b)
}

// TestMeasureBlock builds a recipe with a measure "se" block for each
// image: its values are the header's tag and the host key's hash, and the
// RVPS message carries them under Trustee's names.
func TestMeasureBlock(t *testing.T) {
	var inputs, blocks string
	tags := map[string]string{}
	for _, n := range []string{"se1", "se2"} {
		path := testenv.VectorFile(t, "inputs/se/"+n+".img")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		im, err := model.Parse(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		tags[n] = hex.EncodeToString(im.Header.Tag[:])
		inputs += fmt.Sprintf("input %q {\n  file   = %q\n  sha256 = %q\n}\n\n", n, path, sha(b))
		blocks += fmt.Sprintf("measure %q {\n  tee   = \"se\"\n  image = input.%s\n}\n\n", n, n)
	}
	dir := t.TempDir()
	src := "recipe {\n  name = \"se\"\n}\n\n" + inputs + blocks
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := testkinds.Load(t, dir, t.TempDir(), input.Options{}).Build(context.Background(), filepath.Join(dir, "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	phkh := hostKeyHash(t)
	got := map[string]map[string]any{}
	for _, m := range res.Manifest.Measurements {
		got[m.Name] = m.Values
		c, err := manifest.CoverageParam(m.Params)
		if err != nil || !c.Firmware || !c.Kernel || !c.Initrd || !c.Cmdline {
			t.Errorf("%s: covers %+v, %v; want the whole guest", m.Name, c, err)
		}
	}
	want := map[string]map[string]any{
		"se1": {"tag": tags["se1"], "image_phkh_1": phkh},
		"se2": {"tag": tags["se2"], "image_phkh_1": phkh},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("values (-want +got):\n%s", d)
	}

	r, err := publish.NewRelease(res.Manifest, publish.Options{TEEs: testkinds.TEEs(), Name: "se", Version: "1.0.0",
		Expires: time.Now().Add(time.Hour), Namespace: "example.org/coco"})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := publish.EncodeRVPS(r, testkinds.TEEs())
	if err != nil {
		t.Fatal(err)
	}
	p, err := publish.DecodeRVPS(msg)
	if err != nil {
		t.Fatal(err)
	}
	rv := map[string]any{}
	for _, k := range []string{"se.tag", "se.image_phkh", "se.version"} {
		rv[k] = p[k]
	}
	tagList := []any{tags["se1"], tags["se2"]}
	if tags["se1"] > tags["se2"] {
		tagList = []any{tags["se2"], tags["se1"]}
	}
	if d := cmp.Diff(map[string]any{"se.tag": tagList, "se.image_phkh": []any{phkh}, "se.version": float64(256)}, rv); d != "" {
		t.Errorf("RVPS payload (-want +got):\n%s", d)
	}
}

// TestDamagedImageRefused: a build whose SE image's kernel page was
// altered fails, naming the digest that differs.
func TestDamagedImageRefused(t *testing.T) {
	b := bytes.Clone(testenv.ReadVector(t, "inputs/se/se1.img"))
	b[0x15000] ^= 0xff
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "se.img"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf("recipe {\n  name = \"se\"\n}\n\ninput \"img\" {\n  file   = \"se.img\"\n  sha256 = %q\n}\n\nmeasure \"se\" {\n  image = input.img\n}\n", sha(b))
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := testkinds.Load(t, dir, t.TempDir(), input.Options{}).Build(context.Background(), filepath.Join(dir, "out"), 2, nil)
	if err == nil || !strings.Contains(err.Error(), "recomputed pld differ from its header's") {
		t.Errorf("build with a damaged image: %v, want the pld mismatch", err)
	}
}

// TestDecodeErrors: an se block needs an image and takes no kernel,
// initrd, cmdline, firmware or vcpus.
func TestDecodeErrors(t *testing.T) {
	img := testenv.VectorFile(t, "inputs/se/se1.img")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body string
		want       []string
	}{
		{"no image", "", []string{"add image = input.NAME"}},
		{"kernel", "  image  = input.img\n  kernel = input.img\n", []string{"leave kernel out"}},
		{"vcpus", "  image = input.img\n  vcpus = [2]\n", []string{"leave vcpus out"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := fmt.Sprintf("recipe {\n  name = \"r\"\n}\n\ninput \"img\" {\n  file   = %q\n  sha256 = %q\n}\n\nmeasure \"se\" {\n%s}\n", img, sha(b), tc.body)
			if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := builder.Load(dir, testkinds.LoadOptions(t.TempDir(), input.Options{}))
			var de *builder.DiagError
			if !errors.As(err, &de) {
				t.Fatalf("Load: %v, want diagnostics", err)
			}
			var got []string
			for _, d := range de.Diags {
				for _, w := range tc.want {
					if strings.Contains(d.Detail, w) {
						got = append(got, w)
					}
				}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("diagnostics %v (-want +found):\n%s", de.Diags, d)
			}
		})
	}
}

func TestRVPSNames(t *testing.T) {
	for _, c := range []struct{ key, want string }{
		{"tag", "se.tag"},
		{"image_phkh_1", "se.image_phkh"},
		{"image_phkh_12", "se.image_phkh"},
		{"pld", ""},
	} {
		if got := (se.TEE{}).RVPSName("se", c.key); got != c.want {
			t.Errorf("RVPSName(se, %q) = %q, want %q", c.key, got, c.want)
		}
	}
	_, sc, err := (se.TEE{}).RVPSScalars("se", nil, map[string]any{"attestation_version": float64(256)})
	if err != nil || !cmp.Equal(sc, map[string]any{"se.version": float64(256)}) {
		t.Errorf("RVPSScalars = %v, %v; want se.version 256", sc, err)
	}
}
