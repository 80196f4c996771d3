// Package feed stores and serves published releases of reference values:
// a directory feed (content-addressed blobs and an append-only index.json of
// releases, updated atomically), its read-only HTTP server and client, and
// OCI registries (an OCI 1.1 artifact per release, through oras-go).
//
// The feed's index (index.json, or the artifact at tag IndexTag of an OCI
// feed) is signed with the publisher's key, which signs the releases too:
// this package signs it on each append and verifies it (VerifyIndex: the
// signature, its expiry; State: that it is not older than one seen
// before). Within the index, a feed knows releases only as named,
// versioned sets of documents by digest; what the documents say and who
// signed them is checked by package publish.
package feed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/semver"

	"github.com/cocobuild/cocobuild/publish/sign"
)

// Schema identifies the signed index format.
const Schema = "https://github.com/cocobuild/cocobuild/feed/v2"

// LegacySchema is the unsigned index of earlier cocobuild versions: it is
// refused (ErrUnsigned), never read as a feed.
const LegacySchema = "https://github.com/cocobuild/cocobuild/feed/v1"

// IndexMediaType is the media type of a signed index, and the payload type
// its signature covers (DSSE's pre-authentication encoding, so that no
// other document the key signs can pass for an index).
const IndexMediaType = "application/vnd.cocobuild.feed.index.v2+json"

// IndexType is the _type of the signed part of an index.
const IndexType = "cocobuild-feed-index"

// DefaultIndexTTL is how long an index stays valid after an append signed
// it, unless Signing.TTL says otherwise. A feed whose publisher has not
// re-signed its index for that long is stale (or frozen by its server),
// and verify rejects it.
const DefaultIndexTTL = 7 * 24 * time.Hour

// Index is the signed part of index.json: every release ever appended,
// oldest first, with the digests of their documents, under a version that
// grows by one with each append and an expiry. It has the properties of
// TUF's timestamp, snapshot and targets roles in one document signed by
// the publisher's key: a verifier that remembers the highest version it
// has seen detects a rollback, the expiry a freeze, and the digests any
// mix-and-match of documents.
type Index struct {
	Type     string    `json:"_type"`
	Schema   string    `json:"schema"`
	Version  int64     `json:"version"`
	Expires  time.Time `json:"expires"`
	Key      string    `json:"key"` // the signing key's ID, as Release.Key
	Releases []Release `json:"releases"`
}

// SignedIndex is index.json as stored and served: the index, as signed,
// and its signatures, in the layout of TUF metadata.
type SignedIndex struct {
	Signed     json.RawMessage `json:"signed"`
	Signatures []Signature     `json:"signatures"`
}

// Signature is a signature of the index: the key's ID and the signature
// (standard base64) over the DSSE pre-authentication encoding of
// IndexMediaType and the compact JSON of "signed".
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
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
	// ErrUnsigned: the feed's index is the unsigned format of earlier
	// versions, which nothing protects from rollback or freeze.
	ErrUnsigned = errors.New("the feed index is unsigned (the format of cocobuild before signed indexes)")
	// ErrIndexSignature: the index's signature does not verify.
	ErrIndexSignature = errors.New("the feed index signature does not verify")
	// ErrIndexExpired: the index expired: its publisher has not re-signed
	// it, or a server replays an old one (a freeze).
	ErrIndexExpired = errors.New("the feed index has expired: the feed is frozen or stale")
	// ErrNoIndex: there is no index where a feed should be.
	ErrNoIndex = errors.New("no feed index")
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
	// IndexBytes returns the signed index as stored or served, not yet
	// verified (see VerifyIndex); ErrNoIndex (wrapped) when there is none.
	IndexBytes(ctx context.Context) ([]byte, error)
	// Blob returns the bytes of a digest, checked against it.
	Blob(ctx context.Context, digest string) ([]byte, error)
	// Location names the feed for the versions a verifier remembers
	// (State): an absolute dir: path, a URL, an oci:// repository.
	Location() string
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

// ParseIndex decodes an index.json and checks its form (known schema,
// well-formed releases, per name strictly growing versions), but neither
// its signature nor its expiry: VerifyIndex does. The legacy unsigned
// format is ErrUnsigned.
func ParseIndex(b []byte) (*Index, error) {
	ix, _, _, err := decodeIndex(b)
	return ix, err
}

// decodeIndex decodes an index.json into the index, the compact JSON its
// signatures cover, and the signatures.
func decodeIndex(b []byte) (*Index, []byte, []Signature, error) {
	var env struct {
		SignedIndex
		Schema string `json:"schema"` // the legacy format's
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, nil, nil, fmt.Errorf("feed index: %w", err)
	}
	if env.Signed == nil {
		if env.Schema == LegacySchema {
			return nil, nil, nil, fmt.Errorf("%w: re-publish the feed with this cocobuild: move the feed aside and publish its releases again (cocobuild publish --to, or build with the recipe's feeds), which signs a new index with the publisher's key", ErrUnsigned)
		}
		return nil, nil, nil, errors.New("feed index: no signed part: not a cocobuild feed index")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, env.Signed); err != nil {
		return nil, nil, nil, fmt.Errorf("feed index: %w", err)
	}
	var ix Index
	if err := json.Unmarshal(env.Signed, &ix); err != nil {
		return nil, nil, nil, fmt.Errorf("feed index: %w", err)
	}
	if ix.Type != IndexType || ix.Schema != Schema {
		return nil, nil, nil, fmt.Errorf("feed index of type %q, schema %q: want %q, %q", ix.Type, ix.Schema, IndexType, Schema)
	}
	if ix.Version < 1 || ix.Expires.IsZero() || ix.Key == "" {
		return nil, nil, nil, fmt.Errorf("feed index: version %d, expires %s, key %q: want a version from 1, an expiry and a key", ix.Version, ix.Expires.Format(time.RFC3339), ix.Key)
	}
	if err := ix.Check(); err != nil {
		return nil, nil, nil, err
	}
	return &ix, compact.Bytes(), env.Signatures, nil
}

// pae is DSSE's pre-authentication encoding of an index.
func pae(signed []byte) []byte {
	return fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(IndexMediaType), IndexMediaType, len(signed), signed)
}

// signedBy reports whether one of sigs is pub's signature of signed.
func signedBy(signed []byte, sigs []Signature, pub *sign.PublicKey) bool {
	return slices.ContainsFunc(sigs, func(s Signature) bool {
		raw, err := base64.StdEncoding.DecodeString(s.Sig)
		return err == nil && s.KeyID == pub.ID() && pub.Verify(pae(signed), raw) == nil
	})
}

// VerifyIndex decodes an index.json and checks that it is signed by pub
// and not expired at now: the index is what the publisher signed last, or
// an older index that has not expired yet (State tells those apart). It
// returns the index and the sha256 digest of what was signed.
func VerifyIndex(b []byte, pub *sign.PublicKey, now time.Time) (*Index, string, error) {
	ix, signed, sigs, err := decodeIndex(b)
	if err != nil {
		return nil, "", err
	}
	if ix.Key != pub.ID() {
		return nil, "", fmt.Errorf("%w: the index is signed by key %s, not %s: a feed is verified with its publisher's key", ErrIndexSignature, ix.Key, pub.ID())
	}
	if !signedBy(signed, sigs, pub) {
		ids := make([]string, 0, len(sigs))
		for _, s := range sigs {
			ids = append(ids, s.KeyID)
		}
		return nil, "", fmt.Errorf("%w with key %s: the index was altered after it was signed, or signed by another key (its signatures name %s)", ErrIndexSignature, pub.ID(), strings.Join(ids, ", "))
	}
	if !now.Before(ix.Expires) {
		return nil, "", fmt.Errorf("%w: index version %d expired at %s (now %s): the publisher has not re-signed it since, or the server replays an old one; ask the publisher to publish again, which re-signs it",
			ErrIndexExpired, ix.Version, ix.Expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return ix, Digest(signed), nil
}

// Signing is how an append re-signs the index: with the publisher's key
// (the one that signs the releases), for TTL after Now.
type Signing struct {
	Signer *sign.Signer
	TTL    time.Duration // 0: DefaultIndexTTL
	Now    time.Time     // the zero time: the wall clock
}

func (sg Signing) ttl() time.Duration {
	if sg.TTL == 0 {
		return DefaultIndexTTL
	}
	return sg.TTL
}

// next returns the index that follows prev (nil for a new feed) with the
// given releases: version + 1, a new expiry, signed by the signer.
func (sg Signing) next(prev *Index, releases []Release) (*Index, []byte, error) {
	if sg.Signer == nil {
		return nil, nil, errors.New("no signer for the feed index")
	}
	if sg.TTL < 0 {
		return nil, nil, fmt.Errorf("feed index lifetime %s: want a positive duration", sg.TTL)
	}
	ttl, now := sg.ttl(), sg.Now
	if now.IsZero() {
		now = time.Now()
	}
	ix := &Index{Type: IndexType, Schema: Schema, Version: 1, Expires: now.Add(ttl).UTC().Truncate(time.Second),
		Key: sg.Signer.Public().ID(), Releases: releases}
	if prev != nil {
		ix.Version = prev.Version + 1
	}
	if ix.Releases == nil {
		ix.Releases = []Release{}
	}
	b, err := EncodeIndex(ix, sg.Signer)
	if err != nil {
		return nil, nil, err
	}
	return ix, b, nil
}

// EncodeIndex signs an index as it is (its version, expiry and key are the
// caller's) and returns index.json: indented JSON with a final newline.
func EncodeIndex(ix *Index, s *sign.Signer) ([]byte, error) {
	if err := ix.Check(); err != nil {
		return nil, err
	}
	signed, err := json.Marshal(ix)
	if err != nil {
		return nil, err
	}
	sig, err := s.Sign(pae(signed))
	if err != nil {
		return nil, fmt.Errorf("signing the feed index: %w", err)
	}
	b, err := json.MarshalIndent(SignedIndex{Signed: signed, Signatures: []Signature{{KeyID: s.Public().ID(), Sig: base64.StdEncoding.EncodeToString(sig)}}}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// previous reads the index an append of rel to rd builds on: nil for a
// feed without one; refused when it is unsigned, signed by another key or
// altered (an expired index is fine: the append re-signs it). It returns
// its releases and whether rel is to be added (false: the identical
// release is there), or the error of an append checkAppend refuses.
func (sg Signing) previous(ctx context.Context, rd Reader, where string, rel *Release) (prev *Index, releases []Release, add bool, err error) {
	b, err := rd.IndexBytes(ctx)
	if errors.Is(err, ErrNoIndex) {
		add, err = checkAppend(&Index{}, rel)
		return nil, nil, add, err
	}
	if err != nil {
		return nil, nil, false, err
	}
	ix, signed, sigs, err := decodeIndex(b)
	if err != nil {
		return nil, nil, false, fmt.Errorf("%s: %w", where, err)
	}
	if err := checkKey(where, ix.Key, rel); err != nil {
		return nil, nil, false, err
	}
	pub := sg.Signer.Public()
	if !signedBy(signed, sigs, pub) {
		return nil, nil, false, fmt.Errorf("%w: the index of %s does not verify with key %s, which the index names: it was altered; restore it from a copy or re-publish the feed", ErrIndexSignature, where, pub.ID())
	}
	add, err = checkAppend(ix, rel)
	return ix, ix.Releases, add, err
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

// checkSigner refuses a release whose key is not the signer's: the index
// and the releases are signed by one key.
func (sg Signing) checkSigner(rel *Release) error {
	if sg.Signer == nil {
		return errors.New("no signer for the feed index")
	}
	if id := sg.Signer.Public().ID(); rel.Key != id {
		return fmt.Errorf("%w: %s %s is signed by key %s, the feed index would be signed by key %s: sign both with one key", ErrOtherKey, rel.Name, rel.Version, rel.Key, id)
	}
	return nil
}
