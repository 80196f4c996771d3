// Package feed stores and serves published releases of reference values:
// a directory feed (content-addressed blobs and an append-only index.json of
// releases, updated atomically), its read-only HTTP server and client, and
// OCI registries (an OCI 1.1 artifact per release, through oras-go).
//
// A feed knows releases only as named, versioned sets of documents; what
// the documents say and who signed them is checked by package publish.
package feed

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

// Schema identifies the index format.
const Schema = "https://github.com/cocobuild/cocobuild/feed/v1"

// Index is index.json: every release ever appended, oldest first.
type Index struct {
	Schema   string    `json:"schema"`
	Releases []Release `json:"releases"`
}

// Release is one published release.
type Release struct {
	Name      string     `json:"name"`
	Version   string     `json:"version"`
	Issued    time.Time  `json:"issued"`
	Expires   time.Time  `json:"expires"`
	Recipe    string     `json:"recipe_sha256"`
	Key       string     `json:"key"` // the signing key's ID (sha256 of its PKIX encoding)
	Documents []Document `json:"documents"`
}

// Document is a file of a release, stored as a blob.
type Document struct {
	Name      string `json:"name"`
	Format    string `json:"format"`
	MediaType string `json:"media_type"`
	Digest    string `json:"digest"` // sha256:HEX
	Size      int64  `json:"size"`
}

// Errors of appending a release.
var (
	ErrRollback  = errors.New("release version is not newer than the latest")
	ErrImmutable = errors.New("release already published with other content")
	// ErrOtherKey: the feed's releases are signed by another key.
	ErrOtherKey = errors.New("the feed is signed by another key")
)

// checkKey refuses a release signed by another key than the releases
// already in a feed: a feed is verified as a whole with one key.
func checkKey(where, existing string, rel *Release) error {
	if existing == rel.Key {
		return nil
	}
	return fmt.Errorf("%w: %s holds releases signed by key %s; %s %s is signed by key %s. A feed is verified with one key: sign with the feed's key, or publish to another feed", ErrOtherKey, where, existing, rel.Name, rel.Version, rel.Key)
}

// Reader reads a feed.
type Reader interface {
	// Index returns the index.
	Index(ctx context.Context) (*Index, error)
	// Blob returns the bytes of a digest, checked against it.
	Blob(ctx context.Context, digest string) ([]byte, error)
}

// Digest returns the sha256:HEX digest of b.
func Digest(b []byte) string {
	d := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(d[:])
}

// checkDigest checks the syntax of a sha256:HEX digest and returns HEX.
func checkDigest(d string) (string, error) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 || strings.ToLower(h) != h {
		return "", fmt.Errorf("digest %q: want sha256: and 64 lowercase hex digits", d)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("digest %q: %w", d, err)
	}
	return h, nil
}

// ParseIndex decodes and checks an index: known schema, well-formed
// releases, and per name strictly growing versions.
func ParseIndex(b []byte) (*Index, error) {
	var ix Index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, fmt.Errorf("feed index: %w", err)
	}
	if ix.Schema != Schema {
		return nil, fmt.Errorf("feed index schema %q: want %q", ix.Schema, Schema)
	}
	if err := ix.Check(); err != nil {
		return nil, err
	}
	return &ix, nil
}

// Check checks the releases of an index: documents with valid digests and,
// for each name, versions that only grow (a rollback is an error).
func (ix *Index) Check() error {
	latest := map[string]string{}
	for i, r := range ix.Releases {
		if r.Name == "" || !semver.IsValid("v"+r.Version) {
			return fmt.Errorf("feed index: release %d has name %q and version %q", i, r.Name, r.Version)
		}
		if len(r.Documents) == 0 {
			return fmt.Errorf("feed index: release %s %s has no documents", r.Name, r.Version)
		}
		for _, d := range r.Documents {
			if _, err := checkDigest(d.Digest); err != nil {
				return fmt.Errorf("feed index: release %s %s, %s: %w", r.Name, r.Version, d.Name, err)
			}
			if d.Name == "" || strings.ContainsAny(d.Name, "/\\") {
				return fmt.Errorf("feed index: release %s %s has a document named %q", r.Name, r.Version, d.Name)
			}
		}
		if prev, ok := latest[r.Name]; ok && semver.Compare("v"+r.Version, "v"+prev) <= 0 {
			return fmt.Errorf("feed index: %w: %s %s comes after %s", ErrRollback, r.Name, r.Version, prev)
		}
		latest[r.Name] = r.Version
	}
	return nil
}

// Latest returns the newest release of a name, or nil.
func (ix *Index) Latest(name string) *Release {
	var best *Release
	for i := range ix.Releases {
		r := &ix.Releases[i]
		if r.Name == name && (best == nil || semver.Compare("v"+r.Version, "v"+best.Version) > 0) {
			best = r
		}
	}
	return best
}

// Find returns the release of a name and version, or nil.
func (ix *Index) Find(name, version string) *Release {
	for i := range ix.Releases {
		if ix.Releases[i].Name == name && ix.Releases[i].Version == version {
			return &ix.Releases[i]
		}
	}
	return nil
}

// sameDocuments reports whether two releases hold the same documents.
func sameDocuments(a, b *Release) bool {
	if len(a.Documents) != len(b.Documents) {
		return false
	}
	for i := range a.Documents {
		if a.Documents[i] != b.Documents[i] {
			return false
		}
	}
	return true
}

// checkAppend decides whether rel may join ix: added is false when the
// identical release is already there.
func checkAppend(ix *Index, rel *Release) (add bool, err error) {
	for _, r := range ix.Releases {
		if err := checkKey("the feed", r.Key, rel); err != nil {
			return false, err
		}
	}
	if prev := ix.Find(rel.Name, rel.Version); prev != nil {
		if sameDocuments(prev, rel) {
			return false, nil
		}
		return false, fmt.Errorf("%w: %s %s is in the feed with other documents; releases are immutable, publish a new version", ErrImmutable, rel.Name, rel.Version)
	}
	if l := ix.Latest(rel.Name); l != nil && semver.Compare("v"+rel.Version, "v"+l.Version) <= 0 {
		return false, fmt.Errorf("%w: %s %s is not newer than %s, the latest in the feed", ErrRollback, rel.Name, rel.Version, l.Version)
	}
	return true, nil
}

// encodeIndex writes an index as indented JSON with a final newline.
func encodeIndex(ix *Index) ([]byte, error) {
	if ix.Releases == nil {
		ix.Releases = []Release{}
	}
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
