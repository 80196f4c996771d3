package publish

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPostBuildSignsDeliverAppends: the publish block's PostBuild signs and
// touches no feed; Deliver appends the release it signed, once; Deliver
// without a PostBuild before it is an error.
func TestPostBuildSignsDeliverAppends(t *testing.T) {
	feed := filepath.Join(t.TempDir(), "feed")
	n, msgs := loadPublish(t, `
publish "guest" {
  version = "1.0.0"
  expires = "2030-01-01T00:00:00Z"
  key     = "dev"
  to      = ["dir:`+feed+`"]
}
`)
	if n == nil {
		t.Fatalf("diagnostics: %q", msgs)
	}
	ctx := context.Background()
	if _, err := n.Deliver(ctx); err == nil {
		t.Errorf("Deliver before PostBuild: no error")
	}
	if _, _, err := n.PostBuild(ctx, testManifest(), t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(feed); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("PostBuild wrote the feed: %v", err)
	}
	notes, err := n.Deliver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "published guest 1.0.0 to dir:") {
		t.Errorf("Deliver notes %q, want one saying it published guest 1.0.0", notes)
	}
	if _, err := os.Stat(filepath.Join(feed, "index.json")); err != nil {
		t.Errorf("Deliver did not write the feed: %v", err)
	}
	if _, err := n.Deliver(ctx); err == nil {
		t.Errorf("a second Deliver: no error, want one (it delivers what one PostBuild signed, once)")
	}
}
