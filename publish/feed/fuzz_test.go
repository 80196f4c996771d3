package feed

import (
	"testing"
)

// FuzzParseIndex: an index from a server or a directory is untrusted; it is
// an error or a consistent index, never a panic.
func FuzzParseIndex(f *testing.F) {
	r1, _ := testRelease("a", "1.0.0")
	r2, _ := testRelease("a", "1.1.0")
	seed, err := EncodeIndex(&Index{Type: IndexType, Schema: Schema, Version: 3, Expires: testNow, Key: r1.Key, Releases: []Release{r1, r2}}, testSigner())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"signed":{"_type":"` + IndexType + `","schema":"` + Schema + `","version":1,"expires":"2030-01-01T00:00:00Z","key":"k","releases":[]},"signatures":[]}`))
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
