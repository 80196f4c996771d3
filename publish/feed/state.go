package feed

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/mod/semver"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
	"github.com/cocobuild/cocobuild/internal/limits"
)

// StateFile is the name of a verifier's memory of feeds in its state
// directory.
const StateFile = "feeds.json"

// StateSchema identifies the format of StateFile.
const StateSchema = "https://github.com/cocobuild/cocobuild/verify-state/v1"

// State is a verifier's memory of the feeds it has verified, in
// Dir/feeds.json: per feed (its Location) and key, the highest index
// version seen, the digest of what that version signed, and per release
// name the highest version. A feed that later shows less is rolled back.
type State struct{ Dir string }

// Seen is what a verifier remembers of one feed and key.
type Seen struct {
	Feed         string            `json:"feed"`
	Key          string            `json:"key"`
	IndexVersion int64             `json:"index_version"`
	IndexDigest  string            `json:"index_digest"`
	Releases     map[string]string `json:"releases"` // name: highest version
}

type stateDoc struct {
	Schema string `json:"schema"`
	Feeds  []Seen `json:"feeds"`
}

func (s State) path() string { return filepath.Join(s.Dir, StateFile) }

func (s State) load() (*stateDoc, error) {
	// The verifier's own file, read like a document all the same: a pipe
	// or device put there is refused rather than waited on.
	b, err := (*limits.Values)(nil).ReadFile(s.path(), limits.Document)
	if errors.Is(err, os.ErrNotExist) {
		return &stateDoc{Schema: StateSchema}, nil
	}
	if err != nil {
		return nil, err
	}
	var doc stateDoc
	if err := json.Unmarshal(b, &doc); err != nil || doc.Schema != StateSchema {
		return nil, fmt.Errorf("verify state %s is not readable (%v, schema %q): move it aside to start over, which forgets the versions seen", s.path(), err, doc.Schema)
	}
	return &doc, nil
}

// ErrRolledBack is the error of a feed that shows an older index or
// release than the verifier has seen before.
var ErrRolledBack = errors.New("rollback")

// Remember compares a verified index (ix, whose signed bytes have the
// given digest) of the feed at loc, signed by key, with what was seen
// before, and records it when it is not older: the index version must not
// be lower (nor equal with other content), and no release name may fall
// back to a lower version or vanish. It holds a lock on the state while it
// reads and writes, and writes atomically.
func (s State) Remember(loc, key string, ix *Index, digest string) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("verify state: %w", err)
	}
	unlock, err := lockDir(s.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	doc, err := s.load()
	if err != nil {
		return err
	}
	latest := map[string]string{}
	for _, r := range ix.Releases {
		if l := ix.Latest(r.Name); l != nil {
			latest[r.Name] = l.Version
		}
	}
	i := slices.IndexFunc(doc.Feeds, func(f Seen) bool { return f.Feed == loc && f.Key == key })
	if i >= 0 {
		old := doc.Feeds[i]
		forget := fmt.Sprintf("if the feed was knowingly reset, remove its entry from %s", s.path())
		switch {
		case ix.Version < old.IndexVersion:
			return fmt.Errorf("%w: %s serves index version %d, older than version %d seen before: a server is hiding newer releases; %s", ErrRolledBack, loc, ix.Version, old.IndexVersion, forget)
		case ix.Version == old.IndexVersion && digest != old.IndexDigest:
			return fmt.Errorf("%w: %s serves index version %d with other content than the version %d seen before: two indexes signed with one version; %s", ErrRolledBack, loc, ix.Version, old.IndexVersion, forget)
		}
		names := make([]string, 0, len(old.Releases))
		for n := range old.Releases {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			v := old.Releases[n]
			switch now, ok := latest[n]; {
			case !ok:
				return fmt.Errorf("%w: %s no longer lists %s, seen before at version %s; %s", ErrRolledBack, loc, n, v, forget)
			case semver.Compare("v"+now, "v"+v) < 0:
				return fmt.Errorf("%w: %s lists %s %s as the latest, older than version %s seen before; %s", ErrRolledBack, loc, n, now, v, forget)
			}
		}
		doc.Feeds = slices.Delete(doc.Feeds, i, i+1)
	}
	doc.Feeds = append(doc.Feeds, Seen{Feed: loc, Key: key, IndexVersion: ix.Version, IndexDigest: digest, Releases: latest})
	slices.SortFunc(doc.Feeds, func(a, b Seen) int {
		if a.Feed != b.Feed {
			return cmp.Compare(a.Feed, b.Feed)
		}
		return cmp.Compare(a.Key, b.Key)
	})
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.path(), append(b, '\n'), 0o600)
}
