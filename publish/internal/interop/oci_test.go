package interop_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/feed"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// TestOCIAttestationAsCosignReadsIt publishes a release to an in-process
// registry with the disk image as subject and reads the disk's referrers as
// cosign v3's verify-attestation does (GetBundles: a referrer is a bundle
// only with exactly one layer of a sigstore bundle media type), then
// verifies that bundle with sigstore-go against the disk's manifest digest,
// as cosign does. The real cosign runs on the same in cmd/cocobuild's
// TestCosignOrasVerifyPublished.
func TestOCIAttestationAsCosignReadsIt(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo := strings.TrimPrefix(srv.URL, "http://") + "/coco/sample"
	o, err := feed.OpenOCI("oci://" + repo)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte("not really a qcow2")
	layer := content.NewDescriptorFromBytes("application/vnd.cocobuild.disk.v1", b)
	if err := o.Repo.Push(ctx, layer, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	disk, err := oras.PackManifest(ctx, o.Repo, oras.PackManifestVersion1_1, "application/vnd.cocobuild.disk.v1",
		oras.PackManifestOptions{Layers: []ocispec.Descriptor{layer}, ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "1970-01-01T00:00:00Z"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Repo.Tag(ctx, disk, "disk"); err != nil {
		t.Fatal(err)
	}

	r, s, _ := fixture(t, sign.ECDSAP256, false)
	m := &manifest.Manifest{Cocobuild: r.Cocobuild, Recipe: r.Recipe, Epoch: r.Issued.Unix(),
		Artifacts: []manifest.Artifact{{Name: "disk.guest", Kind: "disk", Path: r.Subjects[0].Name, SHA256: r.Subjects[0].SHA256, Size: 1}}}
	for _, e := range r.Entries {
		vals := map[string]any{}
		for k, v := range e.Values {
			vals[k] = v
		}
		m.Measurements = append(m.Measurements, manifest.Measurement{TEE: e.TEE, Name: e.Name, Params: e.Params, Values: vals})
	}
	cfg := publish.Config{
		Options: publish.Options{TEEs: testTEEs, Name: "r", Version: "1.0.0", Expires: r.Expires},
		To:      []string{"oci://" + repo + ":1.0.0"}, Subject: "disk",
		Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	res, err := publish.Publish(ctx, m, s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A disk image not pushed yet: refused before anything is signed.
	missing := cfg
	missing.Subject, missing.Version = "nodisk", "1.0.1"
	if _, err := publish.Publish(ctx, m, s, missing); err == nil || !strings.Contains(err.Error(), "push the disk image first") {
		t.Errorf("publishing with a subject not in the registry: %v, want an error saying to push the disk image first", err)
	}
	// Publishing the identical release again pushes the same referrer.
	if _, err := publish.Publish(ctx, m, s, cfg); err != nil {
		t.Fatalf("publishing the same release again: %v", err)
	}
	want := publish.Subject{Name: repo + "@" + disk.Digest.String(), Kind: publish.SubjectKindOCI, SHA256: disk.Digest.Encoded(), Size: disk.Size}
	if got := res.Release.Subjects[len(res.Release.Subjects)-1]; got != want {
		t.Errorf("the release's last subject is %+v, want the disk's manifest %+v", got, want)
	}

	var referrers []ocispec.Descriptor
	if err := o.Repo.Referrers(ctx, disk, "", func(rs []ocispec.Descriptor) error { referrers = append(referrers, rs...); return nil }); err != nil {
		t.Fatal(err)
	}
	var bundles [][]byte
	for _, rd := range referrers {
		mb, err := content.FetchAll(ctx, o.Repo, rd)
		if err != nil {
			t.Fatal(err)
		}
		var man ocispec.Manifest
		if err := json.Unmarshal(mb, &man); err != nil {
			t.Fatal(err)
		}
		if len(man.Layers) != 1 || !strings.HasPrefix(man.Layers[0].MediaType, "application/vnd.dev.sigstore.bundle") {
			continue // cosign skips it too
		}
		if man.ArtifactType != feed.SigstoreBundleMediaType || man.Annotations[feed.AnnotationBundlePredicateType] != publish.PredicateType ||
			man.Annotations[feed.AnnotationBundleContent] != "dsse-envelope" || man.Subject == nil || man.Subject.Digest != disk.Digest {
			t.Errorf("the attestation referrer is %s", mb)
		}
		lb, err := content.FetchAll(ctx, o.Repo, man.Layers[0])
		if err != nil {
			t.Fatal(err)
		}
		bundles = append(bundles, lb)
	}
	if len(bundles) != 1 {
		t.Fatalf("%d sigstore bundles among the %d referrers of the disk, want 1", len(bundles), len(referrers))
	}
	var sd publish.Document
	for _, d := range res.Documents {
		if d.Name == publish.StatementFile {
			sd = d
		}
	}
	if !bytes.Equal(bundles[0], sd.Data) {
		t.Error("the referrer's bundle is not the published statement")
	}
	var bb bundle.Bundle
	if err := bb.UnmarshalJSON(bundles[0]); err != nil {
		t.Fatal(err)
	}
	v := keyVerifier(t, s.Public().Hint(), s.Public())
	dd, _ := hex.DecodeString(disk.Digest.Encoded())
	if _, err := v.Verify(&bb, verify.NewPolicy(verify.WithArtifactDigest("sha256", dd), verify.WithKey())); err != nil {
		t.Errorf("sigstore-go rejects the statement for the disk's manifest digest: %v", err)
	}
}
