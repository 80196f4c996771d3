package publish

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cocobuild/cocobuild/publish/feed"
)

// TestClassifyTarget: what verify and check take a target for.
func TestClassifyTarget(t *testing.T) {
	dir := t.TempDir()
	rel, fd, file := filepath.Join(dir, "rel"), filepath.Join(dir, "feed"), filepath.Join(dir, "manifest.json")
	for _, d := range []string{rel, fd} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(fd, feed.IndexFile), file} {
		if err := os.WriteFile(f, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		target string
		want   TargetKind
		bad    bool
	}{
		{rel, TargetRelease, false},
		{fd, TargetFeed, false},
		{file, TargetFile, false},
		{"dir:" + filepath.Join(dir, "nothing"), TargetFeed, false},
		{"http://127.0.0.1:1/", TargetFeed, false},
		{feed.OCIPrefix + "127.0.0.1:1/x", TargetFeed, false},
		{filepath.Join(dir, "nothing"), 0, true},
	} {
		got, err := ClassifyTarget(c.target)
		if c.bad {
			if !errors.Is(err, ErrBadTarget) {
				t.Errorf("ClassifyTarget(%s): %v, %v; want ErrBadTarget", c.target, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ClassifyTarget(%s) = %v, %v; want %v", c.target, got, err, c.want)
		}
	}
	if _, err := VerifyTarget(t.Context(), rel, TargetFile, nil, VerifyOptions{}, FeedCheck{}); !errors.Is(err, ErrBadTarget) {
		t.Errorf("VerifyTarget of a file: %v, want ErrBadTarget", err)
	}
}
