package feed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

const testArtifactType = "application/vnd.cocobuild.reference-values.v1"

// pushDisk pushes a small artifact standing for the disk image and tags it.
func pushDisk(t *testing.T, o *OCI, tag string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	b := []byte("not really a qcow2")
	layer := content.NewDescriptorFromBytes("application/vnd.cocobuild.disk.v1", b)
	if err := o.Repo.Push(ctx, layer, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	desc, err := oras.PackManifest(ctx, o.Repo, oras.PackManifestVersion1_1, "application/vnd.cocobuild.disk.v1",
		oras.PackManifestOptions{Layers: []ocispec.Descriptor{layer}, ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "1970-01-01T00:00:00Z"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Repo.Tag(ctx, desc, tag); err != nil {
		t.Fatal(err)
	}
	return desc
}

// exerciseOCI pushes two releases with the disk as subject, discovers them
// from the disk, pulls them back and checks rollback and immutability.
func exerciseOCI(t *testing.T, host string) (*OCI, ocispec.Descriptor) {
	ctx := context.Background()
	o, err := OpenOCI("oci://" + host + "/coco/sample")
	if err != nil {
		t.Fatal(err)
	}
	if !o.Repo.PlainHTTP {
		t.Fatalf("%s is loopback: want plain HTTP", host)
	}
	disk := pushDisk(t, o, "disk")
	r1, b1 := testRelease("sample", "1.0.0")
	d1, _, err := o.Push(ctx, r1, b1, testArtifactType, "disk", testSigning())
	if err != nil {
		t.Fatal(err)
	}
	// Pushing the same release again changes nothing.
	again, _, err := o.Push(ctx, r1, b1, testArtifactType, "disk", testSigning())
	if err != nil || again.Digest != d1.Digest {
		t.Errorf("second push: %v, %v (want the same manifest %s)", again.Digest, err, d1.Digest)
	}
	r2, b2 := testRelease("sample", "1.1.0")
	if _, _, err := o.Push(ctx, r2, b2, testArtifactType, "oci://"+host+"/coco/sample@"+disk.Digest.String(), testSigning()); err != nil {
		t.Fatal(err)
	}
	refs, err := o.Referrers(ctx, "disk", testArtifactType)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 {
		t.Fatalf("%d referrers of the disk, want 2: %+v", len(refs), refs)
	}
	for _, r := range refs {
		if r.ArtifactType != testArtifactType {
			t.Errorf("referrer %s has artifactType %q", r.Digest, r.ArtifactType)
		}
	}
	for _, c := range []struct {
		rel   Release
		blobs map[string][]byte
	}{{r1, b1}, {r2, b2}} {
		got, blobs, err := o.Pull(ctx, c.rel.Version)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&c.rel, got); diff != "" {
			t.Errorf("pulled release %s (-pushed +pulled):\n%s", c.rel.Version, diff)
		}
		if diff := cmp.Diff(c.blobs, blobs); diff != "" {
			t.Errorf("pulled documents %s (-pushed +pulled):\n%s", c.rel.Version, diff)
		}
	}
	// A moving tag refuses to go back, and a version's content is fixed.
	latest := &OCI{Repo: o.Repo, Tag: "latest"}
	if _, _, err := latest.Push(ctx, r2, b2, testArtifactType, "", testSigning()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := latest.Push(ctx, r1, b1, testArtifactType, "", testSigning()); !errors.Is(err, ErrRollback) {
		t.Errorf("pushing 1.0.0 over latest=1.1.0: %v, want ErrRollback", err)
	}
	changed := r2
	changed.Documents = r1.Documents
	if _, _, err := o.Push(ctx, changed, b1, testArtifactType, "", testSigning()); !errors.Is(err, ErrImmutable) {
		t.Errorf("pushing other documents as 1.1.0: %v, want ErrImmutable", err)
	}
	// The signed index at tag "index" lists both releases, re-signed at
	// each successful push (1.0.0 twice, 1.1.0, 1.1.0 at latest).
	b, err := o.IndexBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ix, _, err := VerifyIndex(b, testSigner().Public(), testNow)
	if err != nil {
		t.Fatalf("the index at tag %s: %v", IndexTag, err)
	}
	if diff := cmp.Diff([]Release{r1, r2}, ix.Releases); ix.Version != 4 || diff != "" {
		t.Errorf("the index at tag %s: version %d, want 4; releases (-want +got):\n%s", IndexTag, ix.Version, diff)
	}
	// A subject in another repository is refused.
	if _, _, err := o.Push(ctx, r2, b2, testArtifactType, host+"/other/repo:disk", testSigning()); err == nil || !strings.Contains(err.Error(), "another repository") {
		t.Errorf("subject in another repository: %v", err)
	}
	return o, disk
}

func TestOCIInProcessRegistry(t *testing.T) {
	srv := httptest.NewServer(ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	exerciseOCI(t, strings.TrimPrefix(srv.URL, "http://"))
}

// TestOCIDockerRegistry runs Debian's docker-registry (distribution 2.8,
// which has no referrers API: oras falls back to the referrers tag schema).
func TestOCIDockerRegistry(t *testing.T) {
	addr := testenv.DockerRegistry(t)
	o, disk := exerciseOCI(t, addr)
	// Distribution 2.8 has no referrers API: the referrers are listed in an
	// index under the tag schema's tag.
	fallback := "sha256-" + disk.Digest.Encoded()
	if _, m, err := o.fetchManifest(context.Background(), fallback); err != nil {
		t.Errorf("no referrers index at tag %s: %v", fallback, err)
	} else if m.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("tag %s holds %s, want an image index", fallback, m.MediaType)
	}
}

func TestOpenOCI(t *testing.T) {
	cases := []struct {
		ref, tag  string
		plainHTTP bool
		err       string
	}{
		{"oci://127.0.0.1:5000/coco/sample:0.1.0", "0.1.0", true, ""},
		{"oci://localhost:5000/coco/sample", "", true, ""},
		{"oci://ghcr.io/acme/rv:1.0.0", "1.0.0", false, ""},
		{"oci://ghcr.io/acme/rv@sha256:" + strings.Repeat("a", 64), "", false, "not a digest"},
		{"oci://registry.example/UPPER:1", "", false, "invalid"},
	}
	for _, c := range cases {
		o, err := OpenOCI(c.ref)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.ref, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.ref, err)
			continue
		}
		if o.Tag != c.tag || o.Repo.PlainHTTP != c.plainHTTP {
			t.Errorf("%s: tag %q plainHTTP %v, want %q %v", c.ref, o.Tag, o.Repo.PlainHTTP, c.tag, c.plainHTTP)
		}
	}
}

// racingRegistry is an in-process registry where, while race is set,
// another publisher tags its own index (the first index ever tagged, saved
// from its PUT) right after each tag of the feed index: the interleaving of
// two publishers that read the same previous index.
type racingRegistry struct {
	reg   http.Handler
	mu    sync.Mutex
	race  bool
	first []byte // the body of the first PUT of the index tag
	ctype string
}

func (rr *racingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut || !strings.HasSuffix(r.URL.Path, "/manifests/"+IndexTag) {
		rr.reg.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rr.reg.ServeHTTP(w, r)
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if rr.first == nil {
		rr.first, rr.ctype = body, r.Header.Get("Content-Type")
		return
	}
	if rr.race {
		other := httptest.NewRequest(http.MethodPut, r.URL.Path, bytes.NewReader(rr.first))
		other.Header.Set("Content-Type", rr.ctype)
		rec := httptest.NewRecorder()
		rr.reg.ServeHTTP(rec, other)
		if rec.Code != http.StatusCreated {
			panic(fmt.Sprintf("the racing publisher's tag failed: %d %s", rec.Code, rec.Body))
		}
	}
}

// TestOCIIndexRace: when another publisher's index replaces ours right
// after we tag it, Push says so (ErrRaced) instead of reporting a release
// the standing index does not list; re-running it adds the release.
func TestOCIIndexRace(t *testing.T) {
	ctx := context.Background()
	rr := &racingRegistry{reg: ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(rr)
	defer srv.Close()
	o, err := OpenOCI("oci://" + strings.TrimPrefix(srv.URL, "http://") + "/coco/sample")
	if err != nil {
		t.Fatal(err)
	}
	r1, b1 := testRelease("sample", "1.0.0")
	if _, _, err := o.Push(ctx, r1, b1, testArtifactType, "", testSigning()); err != nil {
		t.Fatal(err)
	}
	r2, b2 := testRelease("sample", "1.1.0")
	rr.mu.Lock()
	rr.race = true
	rr.mu.Unlock()
	_, _, err = o.Push(ctx, r2, b2, testArtifactType, "", testSigning())
	if !errors.Is(err, ErrRaced) || !strings.Contains(err.Error(), "re-run") {
		t.Fatalf("push while another publisher tags the index: error %v, want ErrRaced saying to re-run", err)
	}
	rr.mu.Lock()
	rr.race = false
	rr.mu.Unlock()
	_, ix, err := o.Push(ctx, r2, b2, testArtifactType, "", testSigning())
	if err != nil {
		t.Fatalf("re-running the push: %v", err)
	}
	var got []string
	for _, r := range ix.Releases {
		got = append(got, r.Version)
	}
	if want := []string{"1.0.0", "1.1.0"}; !cmp.Equal(got, want) {
		t.Errorf("index after the re-run lists %v, want %v", got, want)
	}
}
