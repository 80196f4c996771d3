package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish/feed"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// Config is what to publish and where: the release settings, the formats
// and the feed sinks.
type Config struct {
	Options
	Formats []string // default AllFormats
	// To are the feed sinks: dir:PATH or oci://REGISTRY/REPO[:TAG].
	To []string
	// Subject is the OCI reference of the pushed disk image that oci://
	// releases refer to ("" for none).
	Subject string
	// Out, when set, is the build output directory the manifest describes:
	// every subject must be a file inside it, reached by no symbolic link
	// that leaves it.
	Out string
	// Now is the time an expiry already past is refused against (the zero
	// time: the wall clock). It is not the recipe epoch: expiry is about
	// when verifiers accept the release, and they check it against their
	// own clock. It is also when the feeds' re-signed indexes start.
	Now time.Time
	// IndexTTL is how long the feeds' indexes, re-signed by this publish,
	// stay valid (0: feed.DefaultIndexTTL, 7 days). A feed not published to
	// again within it expires: verify then reports it stale.
	IndexTTL time.Duration
	// Limits bound what is read of a feed's existing index and blobs
	// (limits.Document, --limit document=SIZE); nil holds the defaults.
	Limits *limits.Values
}

// ErrExpiresPast is the error of publishing a release whose expiry has
// already passed.
var ErrExpiresPast = errors.New("the release would be expired when published")

// checkExpiry refuses an expiry at or before now.
func checkExpiry(expires, now time.Time) error {
	if now.IsZero() {
		now = time.Now()
	}
	if !now.Before(expires) {
		return fmt.Errorf("%w: expires %s is not after now (%s): verifiers check expiry against the wall clock, so they would reject it at once; set expires to a time in the future such as %s",
			ErrExpiresPast, expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), now.UTC().AddDate(1, 0, 0).Truncate(24*time.Hour).Format(time.RFC3339))
	}
	return nil
}

// checkSubjectFiles opens every subject of r through an os.Root of out, so
// that a subject reached by a symbolic link leading out of the build output
// is refused.
func checkSubjectFiles(r *Release, out string) error {
	root, err := os.OpenRoot(out)
	if err != nil {
		return fmt.Errorf("opening the build output: %w", err)
	}
	defer root.Close()
	for _, s := range r.Subjects {
		// Non-blocking: a named pipe in the output is refused below, not
		// waited on.
		f, err := root.OpenFile(filepath.FromSlash(s.Name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("%w: subject %s: %w; publish signs only files of the build output %s", ErrSubjectOutside, s.Name, err, out)
		}
		fi, err := f.Stat()
		f.Close()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%w: subject %s is not a regular file of %s", ErrSubjectOutside, s.Name, out)
		}
	}
	return nil
}

// Result is what Publish made.
type Result struct {
	Release   *Release
	Documents []Document
	Notes     []string // one line per sink, and warnings
}

// CheckTarget checks the syntax of a feed sink.
func CheckTarget(t string) error {
	switch {
	case strings.HasPrefix(t, "dir:"):
		if strings.TrimPrefix(t, "dir:") == "" {
			return errors.New(`feed "dir:" names no directory`)
		}
		return nil
	case strings.HasPrefix(t, feed.OCIPrefix):
		_, err := feed.OpenOCI(t)
		return err
	}
	return fmt.Errorf("feed %q: use dir:PATH or oci://REGISTRY/REPO[:TAG]", t)
}

// Publish builds the release of a manifest, signs it in every format and
// appends it to each sink (SignRelease, then Deliver). A sink that already
// holds the identical release keeps it as it is, and its index is re-signed
// (version + 1, a new expiry), as every publish to it does.
func Publish(ctx context.Context, m *manifest.Manifest, s *sign.Signer, cfg Config) (*Result, error) {
	res, err := SignRelease(ctx, m, s, cfg)
	if err != nil {
		return nil, err
	}
	notes, err := Deliver(ctx, res, s, cfg)
	res.Notes = append(res.Notes, notes...)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// SignRelease is the first phase of Publish: it builds the release of a
// manifest and signs it in every format, touching no sink (their syntax is
// checked, so that a wrong target fails before anything is signed). The
// build signs before its output directory is in place and delivers after.
func SignRelease(ctx context.Context, m *manifest.Manifest, s *sign.Signer, cfg Config) (*Result, error) {
	formats := cfg.Formats
	if len(formats) == 0 {
		formats = AllFormats
	}
	for _, t := range cfg.To {
		if err := CheckTarget(t); err != nil {
			return nil, err
		}
	}
	if err := checkExpiry(cfg.Expires, cfg.Now); err != nil {
		return nil, err
	}
	r, err := NewRelease(m, cfg.Options)
	if err != nil {
		return nil, err
	}
	if cfg.Out != "" {
		if err := checkSubjectFiles(r, cfg.Out); err != nil {
			return nil, err
		}
	}
	if err := addOCISubjects(ctx, r, cfg); err != nil {
		return nil, err
	}
	docs, err := Sign(ctx, r, s, formats, cfg.TEEs)
	if err != nil {
		return nil, err
	}
	res := &Result{Release: r, Documents: docs}
	if r.DevelopmentKey {
		res.Notes = append(res.Notes, sign.DevKeyWarning)
	}
	if r.PartialCoverage {
		res.Notes = append(res.Notes, fmt.Sprintf("WARNING: signed with partial coverage (allowed): %s; every document says what each leaves out", r.CoverageSummary()))
	}
	return res, nil
}

// Deliver is the second phase of Publish: it appends a release signed
// with s to each sink of cfg.To (re-signing each feed's index with s) and
// says, one note a sink, what it did.
func Deliver(ctx context.Context, res *Result, s *sign.Signer, cfg Config) ([]string, error) {
	var notes []string
	for _, t := range cfg.To {
		note, err := PublishDocuments(ctx, t, res.Release, s, res.Documents, FeedOptions{Subject: cfg.Subject, IndexTTL: cfg.IndexTTL, Now: cfg.Now, Limits: cfg.Limits})
		if err != nil {
			return notes, fmt.Errorf("publishing to %s: %w", t, err)
		}
		notes = append(notes, note)
	}
	return notes, nil
}

// FeedRelease is the feed record of a signed release.
func FeedRelease(r *Release, pub *sign.PublicKey, docs []Document) (feed.Release, map[string][]byte) {
	fr := feed.Release{Name: r.Name, Version: r.Version, Issued: r.Issued, Expires: r.Expires, Recipe: r.Recipe.SHA256, Key: pub.ID()}
	blobs := map[string][]byte{}
	for _, d := range docs {
		if d.Format == FormatPublicKey {
			continue // verifiers must bring their own key
		}
		dg := feed.Digest(d.Data)
		blobs[dg] = d.Data
		fr.Documents = append(fr.Documents, feed.Document{Name: d.Name, Format: d.Format, MediaType: d.MediaType, Digest: dg, Size: int64(len(d.Data))})
	}
	return fr, blobs
}

// FeedOptions say how PublishDocuments appends to a feed.
type FeedOptions struct {
	// Subject is the OCI reference of the pushed disk image that oci://
	// releases refer to ("" for none).
	Subject string
	// IndexTTL is how long the re-signed index stays valid (0:
	// feed.DefaultIndexTTL).
	IndexTTL time.Duration
	// Now is when the index's validity starts (the zero time: the wall
	// clock).
	Now time.Time
	// Limits bound what is read of the feed as it stands (its index, the
	// blobs it holds); nil holds the defaults.
	Limits *limits.Values
}

// PublishDocuments appends signed documents to one sink, re-signs the
// feed's index with s (the key that signed the documents) and says what it
// did.
func PublishDocuments(ctx context.Context, target string, r *Release, s *sign.Signer, docs []Document, fo FeedOptions) (string, error) {
	fr, blobs := FeedRelease(r, s.Public(), docs)
	sg := feed.Signing{Signer: s, TTL: fo.IndexTTL, Now: fo.Now}
	switch {
	case strings.HasPrefix(target, "dir:"):
		d := feed.Dir{Path: strings.TrimPrefix(target, "dir:"), Limits: fo.Limits}
		added, ix, err := d.Append(ctx, fr, blobs, sg)
		if err != nil {
			return "", err
		}
		if !added {
			return fmt.Sprintf("%s %s is already in %s; index re-signed as version %d, expires %s", r.Name, r.Version, target, ix.Version, ix.Expires.Format(time.RFC3339)), nil
		}
		return fmt.Sprintf("published %s %s to %s (index version %d, expires %s)", r.Name, r.Version, target, ix.Version, ix.Expires.Format(time.RFC3339)), nil
	case strings.HasPrefix(target, feed.OCIPrefix):
		o, err := feed.OpenOCI(target)
		if err != nil {
			return "", err
		}
		o.Limits = fo.Limits
		desc, ix, err := o.Push(ctx, fr, blobs, ArtifactType, fo.Subject, sg)
		if err != nil {
			return "", err
		}
		att := ""
		if fo.Subject != "" {
			if att, err = pushAttestation(ctx, o, r, docs, fo.Subject); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("published %s %s to %s@%s (index version %d at tag %s, expires %s)%s", r.Name, r.Version, target, desc.Digest, ix.Version, feed.IndexTag, ix.Expires.Format(time.RFC3339), att), nil
	}
	return "", CheckTarget(target)
}

// ErrOtherName is the error of a release or feed of another release
// series than the one expected (verify --name).
var ErrOtherName = errors.New("another release series")

// FeedCheck is what VerifyFeed checks beyond the releases.
type FeedCheck struct {
	// State, when set, remembers the highest index and release versions
	// seen of each feed and key, and refuses anything older.
	State *feed.State
	// Name, when set, binds the release series: the feed must hold
	// releases of that name and no other.
	Name string
}

// FeedReport is the outcome of verifying a feed.
type FeedReport struct {
	Location     string // the feed, as State remembers it
	IndexVersion int64
	IndexExpires time.Time
	Releases     []FeedEntry
	// Tag, for an oci:// reference with a tag, names the release the tag
	// holds, which is the latest of its name.
	Tag string

	index *feed.Index // the verified index
}

// FeedEntry is one verified release of a feed.
type FeedEntry struct {
	Name, Version string
	Latest        bool // the newest of its name: the one verifiers use
	Expired       bool // only allowed for releases that are not the latest
	Verified      *Verified
}

// VerifyFeed verifies a feed: its index (signed by pub, not expired at
// o.Now, versions of each name only grow, not older than fc.State
// remembers), then every release it lists: each release's documents and
// signatures, and that the index record says what the signed statement
// says. The newest release of each name must not be expired and must not
// be older than MinVersion; older releases may have expired. With
// fc.Name, the feed must hold that release series alone.
func VerifyFeed(ctx context.Context, rd feed.Reader, pub *sign.PublicKey, o VerifyOptions, fc FeedCheck) (*FeedReport, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	b, err := rd.IndexBytes(ctx)
	if err != nil {
		return nil, err
	}
	ix, digest, err := feed.VerifyIndex(b, pub, now)
	if err != nil {
		return nil, err
	}
	if len(ix.Releases) == 0 {
		return nil, errors.New("the feed holds no releases")
	}
	if fc.Name != "" {
		var other []string
		for _, r := range ix.Releases {
			if r.Name != fc.Name && !slices.Contains(other, r.Name) {
				other = append(other, r.Name)
			}
		}
		switch {
		case len(other) > 0:
			return nil, fmt.Errorf("%w: the feed holds releases of %s, not only %s", ErrOtherName, strings.Join(other, ", "), fc.Name)
		case ix.Latest(fc.Name) == nil:
			return nil, fmt.Errorf("%w: the feed holds no release of %s", ErrOtherName, fc.Name)
		}
	}
	rep := &FeedReport{Location: rd.Location(), IndexVersion: ix.Version, IndexExpires: ix.Expires, index: ix}
	for _, fr := range ix.Releases {
		latest := ix.Latest(fr.Name).Version == fr.Version
		docs, err := fetchDocuments(ctx, rd, fr)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", fr.Name, fr.Version, err)
		}
		vo := o
		vo.Artifacts = ""
		if !latest { // kept for the record: everything but expiry and rollback
			vo.MinVersion = ""
			vo.SkipExpiry = true
		}
		v, err := Verify(ctx, docs, pub, vo)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", fr.Name, fr.Version, err)
		}
		if err := matchRecord(fr, v.Release, pub); err != nil {
			return nil, fmt.Errorf("%s %s: %w", fr.Name, fr.Version, err)
		}
		rep.Releases = append(rep.Releases, FeedEntry{Name: fr.Name, Version: fr.Version, Latest: latest,
			Expired: !now.Before(v.Release.Expires), Verified: v})
	}
	if fc.State != nil {
		if err := fc.State.Remember(rd.Location(), pub.ID(), ix, digest); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func fetchDocuments(ctx context.Context, rd feed.Reader, fr feed.Release) ([]Document, error) {
	var docs []Document
	for _, d := range fr.Documents {
		b, err := rd.Blob(ctx, d.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Name, err)
		}
		docs = append(docs, Document{Name: d.Name, Format: d.Format, MediaType: d.MediaType, Data: b})
	}
	return docs, nil
}

// matchRecord checks that a feed's record of a release is what the signed
// statement says, so that an index cannot relabel old documents.
func matchRecord(fr feed.Release, r *Release, pub *sign.PublicKey) error {
	var bad []string
	if fr.Name != r.Name || fr.Version != r.Version {
		bad = append(bad, fmt.Sprintf("the index says %s %s, the statement %s %s", fr.Name, fr.Version, r.Name, r.Version))
	}
	if !fr.Expires.Equal(r.Expires) {
		bad = append(bad, fmt.Sprintf("the index says it expires %s, the statement %s", fr.Expires.Format(time.RFC3339), r.Expires.Format(time.RFC3339)))
	}
	if fr.Recipe != r.Recipe.SHA256 {
		bad = append(bad, "the index names another recipe")
	}
	if fr.Key != pub.ID() {
		bad = append(bad, fmt.Sprintf("the index names key %s", fr.Key))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrMismatch, strings.Join(bad, "; "))
	}
	return nil
}

// Errors of VerifyOCI for a tag, wrapped with detail.
var (
	// ErrNotLatest: the tag is the version tag of a release that a newer
	// one of its name followed.
	ErrNotLatest = errors.New("the tagged release is not the latest")
	// ErrNotListed: the tag holds a release the signed index does not list.
	ErrNotListed = errors.New("the tagged release is not in the signed index")
)

// VerifyOCI verifies the feed of an oci://REGISTRY/REPO[:TAG] reference as
// VerifyFeed does, through its signed index (tag feed.IndexTag), and, when
// the reference names a tag, that the release at the tag is the latest of
// its name in the index, with the documents the index lists: another tag
// (such as "stable") moved back to an older release is a rollback; the
// version tag of an older release is ErrNotLatest, a release the index
// does not list ErrNotListed.
func VerifyOCI(ctx context.Context, ref string, pub *sign.PublicKey, o VerifyOptions, fc FeedCheck) (*FeedReport, error) {
	oc, err := feed.OpenOCI(ref)
	if err != nil {
		return nil, err
	}
	oc.Limits = o.Limits
	rep, err := VerifyFeed(ctx, oc, pub, o, fc)
	if err != nil {
		return nil, err
	}
	if oc.Tag == "" {
		return rep, nil
	}
	tagged, err := oc.Tagged(ctx, oc.Tag)
	if err != nil {
		return nil, fmt.Errorf("tag %s: %w", oc.Tag, err)
	}
	latest, listed := rep.index.Latest(tagged.Name), rep.index.Find(tagged.Name, tagged.Version)
	switch {
	case latest != nil && CompareVersions(tagged.Version, latest.Version) > 0:
		return nil, fmt.Errorf("%w: tag %s holds %s %s, newer than %s, the latest the signed index lists: the index was rolled back", ErrRollback, oc.Tag, tagged.Name, tagged.Version, latest.Version)
	case listed == nil:
		return nil, fmt.Errorf("%w: tag %s holds %s %s, which the signed index does not list: it was not published to this feed with cocobuild publish, or the index was rolled back. Do not use it: verify %s without a tag to see the releases the publisher signed, and ask the publisher to publish %s %s again if it should be one of them",
			ErrNotListed, oc.Tag, tagged.Name, tagged.Version, oc.Location(), tagged.Name, tagged.Version)
	case !slices.Equal(listed.Documents, tagged.Documents):
		return nil, fmt.Errorf("%w: tag %s holds %s %s with other documents than the signed index lists", ErrMismatch, oc.Tag, tagged.Name, tagged.Version)
	case latest.Version != tagged.Version && oc.Tag == tagged.Version:
		// The release's own version tag: it was not moved, a newer
		// release followed it.
		return nil, fmt.Errorf("%w: %s %s is not the latest (%s): verify %s without a tag to check every release, or name the tag %s",
			ErrNotLatest, tagged.Name, tagged.Version, latest.Version, oc.Location(), latest.Version)
	case latest.Version != tagged.Version:
		return nil, fmt.Errorf("%w: tag %s holds %s %s, but the signed index lists %s as the latest: the tag was moved back, or name the latest release's tag", ErrRollback, oc.Tag, tagged.Name, tagged.Version, latest.Version)
	}
	for _, e := range rep.Releases {
		if e.Name == tagged.Name && e.Version == tagged.Version {
			if err := matchRecord(*tagged, e.Verified.Release, pub); err != nil {
				return nil, fmt.Errorf("tag %s: %w", oc.Tag, err)
			}
		}
	}
	rep.Tag = tagged.Name + " " + tagged.Version
	return rep, nil
}
