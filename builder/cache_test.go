package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestStoreReturnsWhatLookupReads: the result Store returns for a step
// that just ran is the one Lookup reads from the cache later, metadata
// included: Go ints, int64s and structs come back as JSON numbers
// (float64) and objects, so a block's Finish sees one form either way.
func TestStoreReturnsWhatLookupReads(t *testing.T) {
	type part struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
	}
	cases := []struct {
		name     string
		meta     map[string]any
		wantMeta map[string]any
	}{
		{"no metadata", nil, nil},
		{"numbers", map[string]any{"entries": 3, "size": int64(1) << 40, "ratio": 0.5},
			map[string]any{"entries": 3.0, "size": float64(int64(1) << 40), "ratio": 0.5}},
		{"structs and slices", map[string]any{"partitions": []part{{"root", 4096}}, "sha": "ab"},
			map[string]any{"partitions": []any{map[string]any{"name": "root", "size": 4096.0}}, "sha": "ab"}},
	}
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			work, err := c.TempDir("step")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(work, "files"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(work, "files", "out"), []byte(tc.name), 0o644); err != nil {
				t.Fatal(err)
			}
			key := strings.Repeat(string(rune('a'+i)), 64)
			stored, err := c.Store(key, work, tc.meta)
			if err != nil {
				t.Fatal(err)
			}
			looked, ok := c.Lookup(key)
			if !ok {
				t.Fatalf("Lookup(%s) after Store: not found", key)
			}
			if diff := cmp.Diff(looked, stored); diff != "" {
				t.Errorf("Store's result differs from Lookup's (-lookup +store):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantMeta, stored.Meta); diff != "" {
				t.Errorf("Store's Meta (-want +got):\n%s", diff)
			}
			if got, want := stored.Dir, filepath.Join(c.Dir, "steps", key, "files"); got != want {
				t.Errorf("Dir = %s, want %s", got, want)
			}
		})
	}
}
