package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/publish/feed"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// TargetKind is what a target of verify or check names.
type TargetKind int

// Target kinds.
const (
	// TargetFile is a file: one document (verify), or a build's
	// manifest.json (check).
	TargetFile TargetKind = iota
	// TargetRelease is a release directory (OUT/publish/NAME).
	TargetRelease
	// TargetFeed is a feed: oci://, http(s)://, dir:PATH, or a directory
	// holding index.json.
	TargetFeed
)

// ErrBadTarget marks (wrapped) a target that is wrong on the command line
// (missing, not a feed URL that opens, a directory that is no release), as
// opposed to reference values that do not verify.
var ErrBadTarget = errors.New("bad target")

// ClassifyTarget says what target names, from its form and, for a path,
// what lies there. A path that does not exist is ErrBadTarget.
func ClassifyTarget(target string) (TargetKind, error) {
	if strings.HasPrefix(target, feed.OCIPrefix) || isFeedURL(target) {
		return TargetFeed, nil
	}
	fi, err := os.Stat(target)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBadTarget, err)
	}
	if !fi.IsDir() {
		return TargetFile, nil
	}
	if _, err := os.Lstat(filepath.Join(target, feed.IndexFile)); err == nil {
		return TargetFeed, nil
	}
	return TargetRelease, nil
}

// VerifiedTarget are the verified reference values of a release directory
// or a feed.
type VerifiedTarget struct {
	Kind TargetKind
	// Release is the verified release of a release directory.
	Release *Verified
	// Feed is the verified feed.
	Feed *FeedReport
}

// Releases are the releases a verifier may take from the target: a
// release directory's, or every release of a feed that has not expired
// (the newest of each name never has: VerifyFeed refuses it).
func (t *VerifiedTarget) Releases() []FeedEntry {
	if t.Release != nil {
		r := t.Release.Release
		return []FeedEntry{{Name: r.Name, Version: r.Version, Latest: true, Verified: t.Release}}
	}
	var out []FeedEntry
	if t.Feed != nil {
		for _, e := range t.Feed.Releases {
			if !e.Expired {
				out = append(out, e)
			}
		}
	}
	return out
}

// VerifyTarget verifies a release directory or a feed (of kind, as
// ClassifyTarget says) with pub, as `cocobuild verify` and `cocobuild check`
// both do; fc applies to feeds. An error that wraps ErrBadTarget is the
// command line's; any other is reference values that do not verify.
func VerifyTarget(ctx context.Context, target string, kind TargetKind, pub *sign.PublicKey, o VerifyOptions, fc FeedCheck) (*VerifiedTarget, error) {
	switch kind {
	case TargetFeed:
		var rep *FeedReport
		var err error
		if strings.HasPrefix(target, feed.OCIPrefix) {
			rep, err = VerifyOCI(ctx, target, pub, o, fc)
		} else {
			var rd feed.Reader
			if isFeedURL(target) {
				if rd, err = feed.Open(target, o.Limits); err != nil {
					return nil, fmt.Errorf("%w: %w", ErrBadTarget, err)
				}
			} else {
				rd = feed.Dir{Path: target, Limits: o.Limits}
			}
			rep, err = VerifyFeed(ctx, rd, pub, o, fc)
		}
		if err != nil {
			return nil, err
		}
		return &VerifiedTarget{Kind: kind, Feed: rep}, nil
	case TargetRelease:
		docs, err := ReadDocumentsWithin(target, o.TEEs, o.Limits)
		if errors.Is(err, ErrNotRegular) || errors.Is(err, limits.ErrExceeded) {
			return nil, err // the release, not the command line, is wrong
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadTarget, err)
		}
		v, err := Verify(ctx, docs, pub, o)
		if err != nil {
			return nil, err
		}
		return &VerifiedTarget{Kind: kind, Release: v}, nil
	}
	return nil, fmt.Errorf("%w: %s: want a release directory or a feed", ErrBadTarget, target)
}

// isFeedURL says whether target is a feed feed.Open reads.
func isFeedURL(target string) bool {
	return strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "dir:")
}
