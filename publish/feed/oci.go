package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/mod/semver"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/ociclient"
)

// Annotations of a release manifest.
const (
	AnnotationName    = "dev.cocobuild.release.name"
	AnnotationVersion = "dev.cocobuild.release.version"
	AnnotationExpires = "dev.cocobuild.release.expires"
	AnnotationRecipe  = "dev.cocobuild.release.recipe-sha256"
	AnnotationKey     = "dev.cocobuild.release.key"
	AnnotationFormat  = "dev.cocobuild.document.format"
	// AnnotationIndexVersion is on the manifest of a feed index.
	AnnotationIndexVersion = "dev.cocobuild.feed.index.version"
)

// OCI is a repository of an OCI registry that holds releases, one OCI 1.1
// artifact manifest (with artifactType) per release, tagged. A release
// whose subject is given (the pushed disk image) is found from it through
// the referrers API, or the referrers tag schema on registries without one.
//
// Blobs (the index, a release's documents) are read within the document
// limit of Limits (limits.Document, --limit document=SIZE): a descriptor
// that states a larger size is refused before anything is fetched.
type OCI struct {
	Repo *remote.Repository
	Tag  string // "" for the release version
	// Limits bound what is fetched for one blob; nil holds the defaults.
	Limits *limits.Values
}

// OCIPrefix starts an OCI feed reference: oci://REGISTRY/REPO[:TAG].
const OCIPrefix = "oci://"

// ErrRaced says that another publisher tagged the feed's index while this
// one did: the index that stands may not list this release. Re-run the
// publish; publish to a feed from one place at a time.
var ErrRaced = errors.New("the feed index was replaced by another publisher")

// IndexTag is the tag of the feed's signed index in an OCI repository: an
// artifact (artifactType IndexMediaType) of one layer, index.json, that
// each push re-signs and re-tags.
const IndexTag = "index"

// OpenOCI parses oci://REGISTRY/REPO[:TAG]. Registries on a loopback
// address are spoken to over plain HTTP, others over HTTPS; credentials come
// from the Docker configuration (docker login), when there is one.
func OpenOCI(ref string) (*OCI, error) {
	r := strings.TrimPrefix(ref, OCIPrefix)
	pr, err := registry.ParseReference(r)
	if err != nil {
		return nil, fmt.Errorf("OCI reference %q: %w (want oci://REGISTRY/REPO:TAG)", ref, err)
	}
	tag := ""
	if pr.Reference != "" {
		if _, err := pr.Digest(); err == nil {
			return nil, fmt.Errorf("OCI reference %q: publish to a tag, not a digest", ref)
		}
		tag = pr.Reference
	}
	if tag == IndexTag {
		return nil, fmt.Errorf("OCI reference %q: tag %s holds the feed's signed index, not a release: name the repository alone (oci://%s/%s) or a release tag", ref, IndexTag, pr.Registry, pr.Repository)
	}
	pr.Reference = ""
	repo, err := remote.NewRepository(pr.String())
	if err != nil {
		return nil, err
	}
	repo.PlainHTTP = ociclient.PlainHTTP(pr.Registry)
	// Without a readable docker configuration the feed is reached
	// anonymously; a registry that wants credentials then says so.
	repo.Client, _ = ociclient.Client(retry.DefaultClient)
	return &OCI{Repo: repo, Tag: tag}, nil
}

func (o *OCI) tag(rel *Release) string {
	if o.Tag != "" {
		return o.Tag
	}
	return rel.Version
}

// Push publishes a release: the documents as layers, an empty config, the
// manifest with artifactType and, when subject is set, the subject (a tag
// or digest in the same repository, or a full reference to it); then it
// re-signs the feed's index (tag IndexTag) with the release added, version
// + 1. Pushing the identical release again only re-signs the index; a tag
// that holds another version of the release is refused when that version
// is newer (ErrRollback) or the same with other documents (ErrImmutable),
// and so is a release not newer than the latest of its name in the index.
//
// A registry offers no lock, so one publisher at a time per feed: the index
// is read, then the next one tagged. Push reads the tag back after tagging
// and fails with ErrRaced when another publisher's index replaced it
// (leaving the release's tag unset); publishing the release again adds it
// to the index that stands.
func (o *OCI) Push(ctx context.Context, rel Release, blobs map[string][]byte, artifactType, subject string, sg Signing) (ocispec.Descriptor, *Index, error) {
	none := ocispec.Descriptor{}
	if err := sg.checkSigner(&rel); err != nil {
		return none, nil, err
	}
	tag := o.tag(&rel)
	var layers []ocispec.Descriptor
	for _, d := range rel.Documents {
		b, ok := blobs[d.Digest]
		if !ok || Digest(b) != d.Digest {
			return none, nil, fmt.Errorf("document %s: no bytes for %s", d.Name, d.Digest)
		}
		desc := ocispec.Descriptor{MediaType: d.MediaType, Digest: digest.Digest(d.Digest), Size: int64(len(b)),
			Annotations: map[string]string{ocispec.AnnotationTitle: d.Name, AnnotationFormat: d.Format}}
		layers = append(layers, desc)
	}
	var subj *ocispec.Descriptor
	if subject != "" {
		sd, err := o.resolveSubject(ctx, subject)
		if err != nil {
			return none, nil, err
		}
		subj = &sd
	}
	prev, releases, add, err := sg.previous(ctx, o, o.Location(), &rel)
	if err != nil {
		return none, nil, err
	}
	if prev, err := o.fetchRelease(ctx, tag); err == nil {
		if err := checkKey("tag "+tag, prev.Key, &rel); err != nil {
			return none, nil, err
		}
		if prev.Name == rel.Name && prev.Version == rel.Version && !sameDocuments(prev, &rel) {
			return none, nil, fmt.Errorf("%w: %s %s is at tag %s with other documents; releases are immutable, publish a new version", ErrImmutable, rel.Name, rel.Version, tag)
		}
		if prev.Name == rel.Name && semver.Compare("v"+rel.Version, "v"+prev.Version) < 0 {
			return none, nil, fmt.Errorf("%w: tag %s holds %s %s, newer than %s", ErrRollback, tag, prev.Name, prev.Version, rel.Version)
		}
	} else if !errors.Is(err, errdef.ErrNotFound) {
		return none, nil, fmt.Errorf("reading tag %s: %w", tag, err)
	}
	for i, l := range layers {
		if err := pushIfMissing(ctx, o.Repo, l, blobs[rel.Documents[i].Digest]); err != nil {
			return none, nil, fmt.Errorf("pushing %s: %w", rel.Documents[i].Name, err)
		}
	}
	opts := oras.PackManifestOptions{
		Layers: layers,
		ManifestAnnotations: map[string]string{
			ocispec.AnnotationCreated: rel.Issued.UTC().Format(time.RFC3339), // the recipe epoch: reproducible
			ocispec.AnnotationTitle:   rel.Name,
			ocispec.AnnotationVersion: rel.Version,
			AnnotationName:            rel.Name,
			AnnotationVersion:         rel.Version,
			AnnotationExpires:         rel.Expires.UTC().Format(time.RFC3339),
			AnnotationRecipe:          rel.Recipe,
			AnnotationKey:             rel.Key,
		},
	}
	opts.Subject = subj
	desc, err := oras.PackManifest(ctx, o.Repo, oras.PackManifestVersion1_1, artifactType, opts)
	if err != nil {
		return none, nil, fmt.Errorf("pushing the manifest: %w", err)
	}
	if add {
		releases = append(releases, rel)
	}
	ix, err := o.pushIndex(ctx, sg, prev, releases)
	if err != nil {
		return none, nil, err
	}
	if err := o.Repo.Tag(ctx, desc, tag); err != nil {
		return none, nil, fmt.Errorf("tagging %s: %w", tag, err)
	}
	return desc, ix, nil
}

// pushIndex signs the index that follows prev and tags it IndexTag.
func (o *OCI) pushIndex(ctx context.Context, sg Signing, prev *Index, releases []Release) (*Index, error) {
	ix, b, err := sg.next(prev, releases)
	if err != nil {
		return nil, err
	}
	layer := ocispec.Descriptor{MediaType: IndexMediaType, Digest: digest.Digest(Digest(b)), Size: int64(len(b)),
		Annotations: map[string]string{ocispec.AnnotationTitle: IndexFile}}
	if err := pushIfMissing(ctx, o.Repo, layer, b); err != nil {
		return nil, fmt.Errorf("pushing the feed index: %w", err)
	}
	desc, err := oras.PackManifest(ctx, o.Repo, oras.PackManifestVersion1_1, IndexMediaType, oras.PackManifestOptions{
		Layers: []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{
			ocispec.AnnotationCreated: ix.Expires.Add(-sg.ttl()).Format(time.RFC3339),
			AnnotationIndexVersion:    fmt.Sprint(ix.Version),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("pushing the feed index manifest: %w", err)
	}
	if err := o.Repo.Tag(ctx, desc, IndexTag); err != nil {
		return nil, fmt.Errorf("tagging the feed index %s: %w", IndexTag, err)
	}
	// A registry has no lock: another publisher that read the same previous
	// index may have tagged its own version N+1 between our read and our
	// tag, or just after it. Whichever tag lands last wins, and the other
	// release drops out of the index; check that ours is the one that stands.
	now, err := o.Repo.Resolve(ctx, IndexTag)
	if err != nil {
		return nil, fmt.Errorf("reading back the feed index %s just tagged: %w", IndexTag, err)
	}
	if now.Digest != desc.Digest {
		return nil, fmt.Errorf("%w: tag %s of %s holds %s, not the index version %d just pushed (%s): another publisher raced this one; publish one at a time per feed, and re-run this publish (the identical release is not appended twice)",
			ErrRaced, IndexTag, o.Location(), now.Digest, ix.Version, desc.Digest)
	}
	return ix, nil
}

// IndexBytes implements Reader: the layer of the artifact at IndexTag.
func (o *OCI) IndexBytes(ctx context.Context) ([]byte, error) {
	desc, m, err := o.fetchManifest(ctx, IndexTag)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s has no tag %s (publish to it with this cocobuild)", ErrNoIndex, o.Location(), IndexTag)
	}
	if err != nil {
		return nil, fmt.Errorf("reading tag %s: %w", IndexTag, err)
	}
	if m.ArtifactType != IndexMediaType || len(m.Layers) != 1 || m.Layers[0].MediaType != IndexMediaType {
		return nil, fmt.Errorf("tag %s (%s) is not a cocobuild feed index: want artifactType %s and one layer of it", IndexTag, desc.Digest, IndexMediaType)
	}
	return o.fetchLimited(ctx, m.Layers[0])
}

// Blob implements Reader: a blob of the repository by digest.
func (o *OCI) Blob(ctx context.Context, dg string) ([]byte, error) {
	if _, err := checkDigest(dg); err != nil {
		return nil, err
	}
	desc, err := o.Repo.Blobs().Resolve(ctx, dg)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", dg, err)
	}
	return o.fetchLimited(ctx, desc)
}

// Location implements Reader: oci://REGISTRY/REPO, without the tag.
func (o *OCI) Location() string {
	return OCIPrefix + o.Repo.Reference.Registry + "/" + o.Repo.Reference.Repository
}

// fetchLimited fetches a blob within the document limit, checked against
// its descriptor's size and digest: a descriptor over the limit is refused
// before the blob is fetched.
func (o *OCI) fetchLimited(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
	if err := o.checkSize(d); err != nil {
		return nil, err
	}
	b, err := content.FetchAll(ctx, o.Repo.Blobs(), d)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", d.Digest, err)
	}
	return b, nil
}

// checkSize refuses a descriptor whose size is over the document limit
// (or negative), before anything is fetched: content.FetchAll reads
// exactly the stated size into one buffer.
func (o *OCI) checkSize(d ocispec.Descriptor) error {
	if d.Size < 0 {
		return fmt.Errorf("blob %s of %s: negative size %d in its descriptor", d.Digest, o.Location(), d.Size)
	}
	return o.Limits.Check(fmt.Sprintf("blob %s of %s", d.Digest, o.Location()), limits.Document, d.Size)
}

// Tagged reads the release record of the manifest at a tag (or digest).
func (o *OCI) Tagged(ctx context.Context, ref string) (*Release, error) {
	return o.fetchRelease(ctx, ref)
}

func pushIfMissing(ctx context.Context, repo *remote.Repository, d ocispec.Descriptor, b []byte) error {
	ok, err := repo.Exists(ctx, d)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	err = repo.Push(ctx, d, bytes.NewReader(b))
	if errors.Is(err, errdef.ErrAlreadyExists) {
		return nil
	}
	return err
}

// resolveSubject resolves a tag or digest of the repository, or a full
// reference to it.
func (o *OCI) resolveSubject(ctx context.Context, subject string) (ocispec.Descriptor, error) {
	ref := strings.TrimPrefix(subject, OCIPrefix)
	if strings.Contains(ref, "/") {
		pr, err := registry.ParseReference(ref)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("subject %q: %w", subject, err)
		}
		if pr.Registry != o.Repo.Reference.Registry || pr.Repository != o.Repo.Reference.Repository {
			return ocispec.Descriptor{}, fmt.Errorf("subject %q is in another repository than %s: referrers live beside their subject", subject, o.Repo.Reference)
		}
		ref = pr.Reference
	}
	d, err := o.Repo.Resolve(ctx, ref)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("subject %q: %w (push the disk image first)", subject, err)
	}
	return ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, nil
}

// fetchManifest reads the manifest a reference resolves to.
func (o *OCI) fetchManifest(ctx context.Context, ref string) (ocispec.Descriptor, *ocispec.Manifest, error) {
	desc, rc, err := o.Repo.FetchReference(ctx, ref)
	if err != nil {
		return desc, nil, err
	}
	defer rc.Close()
	if err := o.checkSize(desc); err != nil { // oras bounds it too (MaxMetadataBytes)
		return desc, nil, err
	}
	b, err := content.ReadAll(rc, desc)
	if err != nil {
		return desc, nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return desc, nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	return desc, &m, nil
}

// releaseOf reads the release record of a manifest.
func releaseOf(m *ocispec.Manifest) (*Release, error) {
	a := m.Annotations
	if a[AnnotationName] == "" || a[AnnotationVersion] == "" {
		return nil, errors.New("the manifest is not a cocobuild release (no release annotations)")
	}
	rel := &Release{Name: a[AnnotationName], Version: a[AnnotationVersion], Recipe: a[AnnotationRecipe], Key: a[AnnotationKey]}
	var err error
	if rel.Issued, err = time.Parse(time.RFC3339, a[ocispec.AnnotationCreated]); err != nil {
		return nil, fmt.Errorf("release created annotation: %w", err)
	}
	if rel.Expires, err = time.Parse(time.RFC3339, a[AnnotationExpires]); err != nil {
		return nil, fmt.Errorf("release expires annotation: %w", err)
	}
	for _, l := range m.Layers {
		name := l.Annotations[ocispec.AnnotationTitle]
		if name == "" || strings.ContainsAny(name, "/\\") {
			return nil, fmt.Errorf("layer %s has no usable title", l.Digest)
		}
		rel.Documents = append(rel.Documents, Document{Name: name, Format: l.Annotations[AnnotationFormat], MediaType: l.MediaType, Digest: string(l.Digest), Size: l.Size})
	}
	return rel, nil
}

func (o *OCI) fetchRelease(ctx context.Context, ref string) (*Release, error) {
	_, m, err := o.fetchManifest(ctx, ref)
	if err != nil {
		return nil, err
	}
	return releaseOf(m)
}

// Pull reads the release at the tag (or a digest): its record and the bytes
// of its documents by digest, each checked against its descriptor.
func (o *OCI) Pull(ctx context.Context, ref string) (*Release, map[string][]byte, error) {
	if ref == "" {
		ref = o.Tag
	}
	if ref == "" {
		return nil, nil, errors.New("no tag to pull: use oci://REGISTRY/REPO:TAG")
	}
	desc, m, err := o.fetchManifest(ctx, ref)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	if m.ArtifactType == "" {
		return nil, nil, fmt.Errorf("manifest %s has no artifactType", desc.Digest)
	}
	rel, err := releaseOf(m)
	if err != nil {
		return nil, nil, err
	}
	blobs := map[string][]byte{}
	for _, l := range m.Layers {
		if err := o.checkSize(l); err != nil {
			return nil, nil, err
		}
		b, err := content.FetchAll(ctx, o.Repo, l) // checks size and digest
		if err != nil {
			return nil, nil, fmt.Errorf("fetching %s: %w", l.Annotations[ocispec.AnnotationTitle], err)
		}
		blobs[string(l.Digest)] = b
	}
	return rel, blobs, nil
}

// Referrers lists the manifests of artifactType ("" for any) whose subject
// is the given tag or digest: through the referrers API, or the referrers
// tag schema where the registry has none.
func (o *OCI) Referrers(ctx context.Context, subject, artifactType string) ([]ocispec.Descriptor, error) {
	sd, err := o.resolveSubject(ctx, subject)
	if err != nil {
		return nil, err
	}
	var out []ocispec.Descriptor
	err = o.Repo.Referrers(ctx, sd, artifactType, func(r []ocispec.Descriptor) error {
		out = append(out, r...)
		return nil
	})
	return out, err
}
