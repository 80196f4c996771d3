package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
)

// What cosign v3 looks for in an attestation referrer of an image
// (`cosign verify-attestation`, `cosign download attestation`): a manifest
// of exactly one layer whose media type is a sigstore bundle, the bundle's
// media type as artifactType, and annotations naming the bundle's content
// and the in-toto predicate type (as `cosign attest` writes them).
const (
	// SigstoreBundleMediaType is the media type of a sigstore bundle v0.3,
	// the referrer's artifactType and the media type of its one layer.
	SigstoreBundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// AnnotationBundleContent says what the bundle holds ("dsse-envelope").
	AnnotationBundleContent = "dev.sigstore.bundle.content"
	// AnnotationBundlePredicateType names the predicate type of the in-toto
	// statement inside the bundle.
	AnnotationBundlePredicateType = "dev.sigstore.bundle.predicateType"
)

// ResolveSubject resolves a subject of the repository (a tag, a digest, or
// a full reference in the same repository) to its descriptor and to its
// reference by digest, REGISTRY/REPO@sha256:HEX: what a statement names the
// disk image by, so that cosign finds the disk's manifest digest among its
// subjects.
func (o *OCI) ResolveSubject(ctx context.Context, subject string) (ocispec.Descriptor, string, error) {
	d, err := o.resolveSubject(ctx, subject)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	ref := o.Repo.Reference
	ref.Reference = d.Digest.String()
	return d, ref.String(), nil
}

// PushAttestation pushes a sigstore bundle that holds a DSSE-signed in-toto
// statement of predicateType as a referrer of subject (the disk image), in
// the shape cosign v3 reads: one layer of SigstoreBundleMediaType, that media
// type as artifactType, an empty config, the content and predicate-type
// annotations. created (the release's issue time, not the wall clock) keeps
// the manifest reproducible, so pushing the same bundle again yields the
// same manifest. The statement must name the subject's digest among its
// subjects for cosign to accept it.
//
// The layer is titled name (org.opencontainers.image.title), which cosign
// ignores and `oras pull` needs to write the bundle to a file.
func (o *OCI) PushAttestation(ctx context.Context, subject, name string, bundle []byte, predicateType string, created time.Time) (ocispec.Descriptor, error) {
	if predicateType == "" {
		return ocispec.Descriptor{}, errors.New("an attestation referrer needs the statement's predicate type")
	}
	sd, err := o.resolveSubject(ctx, subject)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	layer := content.NewDescriptorFromBytes(SigstoreBundleMediaType, bundle)
	if err := pushIfMissing(ctx, o.Repo, layer, bundle); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pushing the statement bundle: %w", err)
	}
	layer.Annotations = map[string]string{ocispec.AnnotationTitle: name}
	desc, err := oras.PackManifest(ctx, o.Repo, oras.PackManifestVersion1_1, SigstoreBundleMediaType, oras.PackManifestOptions{
		Layers:  []ocispec.Descriptor{layer},
		Subject: &sd,
		ManifestAnnotations: map[string]string{
			ocispec.AnnotationCreated:     created.UTC().Format(time.RFC3339),
			AnnotationBundleContent:       "dsse-envelope",
			AnnotationBundlePredicateType: predicateType,
		},
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pushing the attestation referrer of %s: %w", subject, err)
	}
	return desc, nil
}
