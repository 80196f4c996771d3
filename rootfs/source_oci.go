package rootfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// refNameAnnotation names an image in an OCI layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// DefaultPlatform is the platform chosen from multi-platform images.
const DefaultPlatform = "linux/amd64"

// OpenLayoutImage selects an image in a local OCI image layout: the one
// whose ref.name annotation is ref (when ref is given), else the only image,
// else the one for platform. Index entries that are indexes themselves are
// searched for platform.
func OpenLayoutImage(dir, ref, platform string) (v1.Image, v1.Hash, error) {
	plat, err := v1.ParsePlatform(platform)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("platform %q: %w", platform, err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	descs := im.Manifests
	if ref != "" {
		var sel []v1.Descriptor
		var names []string
		for _, d := range descs {
			n := d.Annotations[refNameAnnotation]
			names = append(names, n)
			if n == ref {
				sel = append(sel, d)
			}
		}
		if len(sel) == 0 {
			sort.Strings(names)
			return nil, v1.Hash{}, fmt.Errorf("OCI layout %s has no image named %q (it has %s)", dir, ref, strings.Join(names, ", "))
		}
		descs = sel
	}
	return selectImage(dir, idx, descs, *plat)
}

// layoutRefNames reads the index of an OCI image layout and returns the
// names (org.opencontainers.image.ref.name) of its images, sorted.
func layoutRefNames(dir string) ([]string, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, d := range im.Manifests {
		if n := d.Annotations[refNameAnnotation]; n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

func selectImage(where string, idx v1.ImageIndex, descs []v1.Descriptor, plat v1.Platform) (v1.Image, v1.Hash, error) {
	var cands []v1.Descriptor
	for _, d := range descs {
		if len(descs) == 1 || d.Platform == nil || d.Platform.Satisfies(plat) {
			cands = append(cands, d)
		}
	}
	if len(cands) == 0 {
		return nil, v1.Hash{}, fmt.Errorf("%s has no image for platform %s", where, plat)
	}
	if len(cands) > 1 {
		var ds []string
		for _, d := range cands {
			ds = append(ds, d.Digest.String())
		}
		return nil, v1.Hash{}, fmt.Errorf("%s holds %d images for platform %s (%s): choose one with ref", where, len(cands), plat, strings.Join(ds, ", "))
	}
	d := cands[0]
	switch d.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("%s: index %s: %w", where, d.Digest, err)
		}
		cim, err := child.IndexManifest()
		if err != nil {
			return nil, v1.Hash{}, fmt.Errorf("%s: index %s: %w", where, d.Digest, err)
		}
		return selectImage(where+" "+d.Digest.String(), child, cim.Manifests, plat)
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
	default:
		return nil, v1.Hash{}, fmt.Errorf("%s: %s has media type %q, not an image", where, d.Digest, d.MediaType)
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("%s: image %s: %w", where, d.Digest, err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, v1.Hash{}, fmt.Errorf("%s: image %s: %w", where, d.Digest, err)
	}
	if got := sha256.Sum256(raw); d.Digest.Algorithm != "sha256" || hex.EncodeToString(got[:]) != d.Digest.Hex {
		return nil, v1.Hash{}, fmt.Errorf("%s: manifest %s does not match its digest (sha256 %x)", where, d.Digest, got)
	}
	return img, d.Digest, nil
}

// ParsePinnedRef parses a registry reference that must be pinned by digest
// (REGISTRY/REPO@sha256:…, optionally with a tag before the @).
func ParsePinnedRef(ref string) (name.Digest, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return name.Digest{}, fmt.Errorf("image reference %q: %w", ref, err)
	}
	d, ok := r.(name.Digest)
	if !ok {
		return name.Digest{}, fmt.Errorf("image reference %q is not pinned: write it with its digest, %s@sha256:… (`crane digest %s` prints it)", ref, r.Context().Name(), ref)
	}
	if !strings.HasPrefix(d.DigestStr(), "sha256:") {
		return name.Digest{}, fmt.Errorf("image reference %q: only sha256 digests are accepted", ref)
	}
	return d, nil
}

// PullImage fetches the image for platform from a registry reference pinned
// by digest. The registry's bytes are checked against the digest.
func PullImage(ctx context.Context, ref, platform string) (v1.Image, error) {
	d, err := ParsePinnedRef(ref)
	if err != nil {
		return nil, err
	}
	plat, err := v1.ParsePlatform(platform)
	if err != nil {
		return nil, fmt.Errorf("platform %q: %w", platform, err)
	}
	img, err := remote.Image(d, remote.WithContext(ctx), remote.WithPlatform(*plat))
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return img, nil
}

// AddImage applies the layers of an OCI image, bottom first, with their
// whiteouts. Each layer's compressed bytes are checked against its digest.
func (t *Tree) AddImage(ctx context.Context, source string, img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		dg, err := l.Digest()
		if err != nil {
			return fmt.Errorf("%s: layer %d: %w", source, i, err)
		}
		mt, err := l.MediaType()
		if err != nil {
			return fmt.Errorf("%s: layer %s: %w", source, dg, err)
		}
		if !mt.IsLayer() {
			return fmt.Errorf("%s: layer %s has media type %q, not a layer", source, dg, mt)
		}
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("%s: layer %s: %w", source, dg, err)
		}
		h := sha256.New()
		lsrc := fmt.Sprintf("%s layer %s", source, dg)
		err = t.AddLayer(lsrc, io.TeeReader(rc, h))
		if err == nil {
			_, err = io.Copy(h, rc) // the tar's trailing padding
		}
		rc.Close()
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); dg.Algorithm != "sha256" || got != dg.Hex {
			return fmt.Errorf("%s: layer %s does not match its digest (sha256:%s)", source, dg, got)
		}
	}
	return nil
}
