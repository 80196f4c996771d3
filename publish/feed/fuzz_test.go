package feed

import (
	"testing"
)

// FuzzParseIndex: an index from a server or a directory is untrusted; it is
// an error or a consistent index, never a panic.
func FuzzParseIndex(f *testing.F) {
	r1, _ := testRelease("a", "1.0.0")
	r2, _ := testRelease("a", "1.1.0")
	seed, err := encodeIndex(&Index{Schema: Schema, Releases: []Release{r1, r2}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"schema":"` + Schema + `","releases":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ix, err := ParseIndex(b)
		if err != nil {
			return
		}
		// What parses is consistent: every name has a latest release and
		// the versions of each name grow.
		for _, r := range ix.Releases {
			if l := ix.Latest(r.Name); l == nil {
				t.Fatalf("no latest release for %s", r.Name)
			}
		}
		if err := ix.Check(); err != nil {
			t.Fatalf("ParseIndex accepted an index Check rejects: %v", err)
		}
	})
}
