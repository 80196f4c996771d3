package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// testImage is two gzip layers: a base, and one that whites out a file
// and a directory and makes a directory opaque.
func testImage(t testing.TB) v1.Image {
	t.Helper()
	layer := func(entries ...tarEntry) v1.Layer {
		b := makeTar(t, entries...)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	img, err := mutate.AppendLayers(empty.Image,
		layer(tarEntry{name: "etc/os-release", body: "ID=test\n", mtime: 10}, tarEntry{name: "etc/old", body: "old"},
			tarEntry{name: "var/cache/x/y", body: "cache"}, tarEntry{name: "opt/a", body: "a"}, tarEntry{name: "bin", typ: tar.TypeSymlink, link: "usr/bin"}),
		layer(tarEntry{name: "etc/.wh.old"}, tarEntry{name: "var/.wh.cache"}, tarEntry{name: "opt/.wh..wh..opq"}, tarEntry{name: "opt/b", body: "b"},
			tarEntry{name: "usr/bin/sh", body: "#!", mode: 0o755}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func treeList(t testing.TB, tr *Tree) []string {
	var out []string
	for _, e := range tr.Entries() {
		out = append(out, describe(t, e.Path, e.Type, e.Mode, e.UID, e.GID, e.MTime, e.Link, 0, 0, blobPath(e)))
	}
	return out
}

var wantImageTree = []string{
	"/ directory 0755 0:0 100",
	"/bin symlink 0777 0:0 -> usr/bin",
	"/etc directory 0755 0:0 100",
	"/etc/os-release file 0644 0:0 10 " + shaHex([]byte("ID=test\n")),
	"/opt directory 0755 0:0 100",
	"/opt/b file 0644 0:0 0 " + shaHex([]byte("b")),
	"/usr directory 0755 0:0 100",
	"/usr/bin directory 0755 0:0 100",
	"/usr/bin/sh file 0755 0:0 0 " + shaHex([]byte("#!")),
	"/var directory 0755 0:0 100",
}

// TestOCILayout writes an image into an OCI layout under a name, selects
// it by name and by platform, and applies its layers.
func TestOCILayout(t *testing.T) {
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img := testImage(t)
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{refNameAnnotation: "base:1"}),
		layout.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"})); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	for _, ref := range []string{"base:1", ""} {
		got, dg, err := OpenLayoutImage(dir, ref, DefaultPlatform)
		if err != nil {
			t.Fatalf("ref %q: %v", ref, err)
		}
		if dg != want {
			t.Errorf("ref %q: digest %s, want %s", ref, dg, want)
		}
		tr := NewTree(t.TempDir(), 100)
		if err := tr.AddImage(context.Background(), "oci", got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wantImageTree, treeList(t, tr)); diff != "" {
			t.Errorf("ref %q: tree (-want +got):\n%s", ref, diff)
		}
	}
	if _, _, err := OpenLayoutImage(dir, "base:2", DefaultPlatform); err == nil || !strings.Contains(err.Error(), `no image named "base:2" (it has base:1)`) {
		t.Errorf("missing ref: %v", err)
	}
	if _, _, err := OpenLayoutImage(dir, "", "linux/arm64"); err != nil {
		t.Errorf("the only image should be chosen whatever the platform: %v", err)
	}
	// A second image: now the platform decides, and two for one platform
	// are ambiguous.
	if err := p.AppendImage(empty.Image, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"})); err != nil {
		t.Fatal(err)
	}
	if _, dg, err := OpenLayoutImage(dir, "", DefaultPlatform); err != nil || dg != want {
		t.Errorf("platform choice: %s, %v", dg, err)
	}
	if err := p.AppendImage(empty.Image, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"})); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenLayoutImage(dir, "", DefaultPlatform); err == nil || !strings.Contains(err.Error(), "choose one with ref") {
		t.Errorf("two amd64 images: %v", err)
	}

	// A changed layer blob no longer matches its digest.
	layers, _ := img.Layers()
	ld, _ := layers[1].Digest()
	blob := filepath.Join(dir, "blobs", "sha256", ld.Hex)
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-9] ^= 0xff // inside the gzip trailer's CRC
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, _, err := OpenLayoutImage(dir, "base:1", DefaultPlatform)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewTree(t.TempDir(), 100).AddImage(context.Background(), "oci", got); err == nil {
		t.Error("a corrupted layer was accepted")
	}
}

// TestPullImage pushes the image to an in-process registry and pulls it
// back by digest; a reference without a digest is refused.
func TestPullImage(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img := testImage(t)
	ref, err := name.ParseReference(host + "/test/base:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	dg, _ := img.Digest()
	pulled, err := PullImage(context.Background(), host+"/test/base@"+dg.String(), DefaultPlatform)
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTree(t.TempDir(), 100)
	if err := tr.AddImage(context.Background(), "registry", pulled); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantImageTree, treeList(t, tr)); diff != "" {
		t.Errorf("pulled tree (-want +got):\n%s", diff)
	}
	for _, bad := range []string{host + "/test/base:1", host + "/test/base", "not a ref"} {
		if _, err := PullImage(context.Background(), bad, DefaultPlatform); err == nil {
			t.Errorf("PullImage(%q) succeeded", bad)
		}
	}
	if _, err := ParsePinnedRef(host + "/test/base:1"); err == nil || !strings.Contains(err.Error(), "not pinned") {
		t.Errorf("unpinned reference: %v", err)
	}
}

// TestCheckLayout: the decode-time check of an oci_layout accepts a real
// layout and the name of its image, and blames ref for a name it lacks.
func TestCheckLayout(t *testing.T) {
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(testImage(t), layout.WithAnnotations(map[string]string{refNameAnnotation: "base:1"})); err != nil {
		t.Fatal(err)
	}
	src := []byte("oci_layout = \"l\"\nref = \"x\"\n")
	f, diags := hclsyntax.ParseConfig(src, "r.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	attrs, _ := f.Body.JustAttributes()
	for _, ref := range []string{"base:1", ""} {
		if d := checkLayout("l", dir, ref, attrs); d != nil {
			t.Errorf("ref %q: %s: %s", ref, d.Summary, d.Detail)
		}
	}
	d := checkLayout("l", dir, "base:2", attrs)
	if d == nil || d.Subject.Start.Line != 2 || d.Detail != `oci_layout "l" has no image named "base:2" (it has base:1).` {
		t.Errorf("wrong ref: got %+v, want a diagnostic at line 2 naming base:1", d)
	}
	if d := checkLayout("l", t.TempDir(), "", attrs); d == nil || d.Subject.Start.Line != 1 || d.Summary != "Not an OCI image layout" {
		t.Errorf("empty directory: got %+v, want 'Not an OCI image layout' at line 1", d)
	}
}
