package feed

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/publish/sign"
)

// TestVerifyIndex: an index verifies with its publisher's key while it has
// not expired; another key, an altered index or an expired one does not.
func TestVerifyIndex(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	r, blobs := testRelease("sample", "1.0.0")
	if _, _, err := d.Append(context.Background(), r, blobs, testSigning()); err != nil {
		t.Fatal(err)
	}
	good, err := d.IndexBytes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	other, err := sign.NewSigner(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	expires := testNow.Add(DefaultIndexTTL)
	cases := []struct {
		name string
		b    []byte
		pub  *sign.PublicKey
		now  time.Time
		err  error
		text string
	}{
		{"sound", good, testSigner().Public(), testNow, nil, ""},
		{"a second before expiry", good, testSigner().Public(), expires.Add(-time.Second), nil, ""},
		{"at expiry", good, testSigner().Public(), expires, ErrIndexExpired, expires.Format(time.RFC3339)},
		{"another key", good, other.Public(), testNow, ErrIndexSignature, other.Public().ID()},
		{"altered", []byte(strings.Replace(string(good), `"version": "1.0.0"`, `"version": "1.0.1"`, 1)), testSigner().Public(), testNow, ErrIndexSignature, "altered"},
		{"version raised", []byte(strings.Replace(string(good), `"version": 1,`, `"version": 9,`, 1)), testSigner().Public(), testNow, ErrIndexSignature, "altered"},
		{"unsigned", []byte(`{"schema":"` + LegacySchema + `","releases":[]}`), testSigner().Public(), testNow, ErrUnsigned, "re-publish"},
	}
	for _, c := range cases {
		ix, dg, err := VerifyIndex(c.b, c.pub, c.now)
		if c.err == nil {
			if err != nil || ix.Version != 1 || dg == "" {
				t.Errorf("%s: got %v, version %v, digest %q; want version 1 verified", c.name, err, ix, dg)
			}
			continue
		}
		if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: got %v, want %v saying %q", c.name, err, c.err, c.text)
		}
	}
	for _, old := range []string{`"version": 1,`, `"version": "1.0.0"`} {
		if !strings.Contains(string(good), old) {
			t.Errorf("the index holds no %s: the altered cases altered nothing", old)
		}
	}
}

// TestStateRemember: the state keeps the highest index and release
// versions per feed and key, refuses less, and an index version seen with
// other content.
func TestStateRemember(t *testing.T) {
	st := State{Dir: filepath.Join(t.TempDir(), "state")}
	r1, _ := testRelease("sample", "1.0.0")
	r2, _ := testRelease("sample", "1.1.0")
	o1, _ := testRelease("other", "0.1.0")
	ix := func(v int64, rs ...Release) *Index { return &Index{Version: v, Releases: rs} }
	steps := []struct {
		name      string
		loc, key  string
		ix        *Index
		digest    string
		wantError string
	}{
		{"first sight", "dir:/f", "k", ix(1, r1), "d1", ""},
		{"the same again", "dir:/f", "k", ix(1, r1), "d1", ""},
		{"newer", "dir:/f", "k", ix(3, r1, r2, o1), "d3", ""},
		{"an older index", "dir:/f", "k", ix(2, r1, r2), "d2", "index version 2, older than version 3"},
		{"version 3 with other content", "dir:/f", "k", ix(3, r1, r2, o1), "other", "other content"},
		{"a newer index, a release gone back", "dir:/f", "k", ix(4, r1, o1), "d4", "sample 1.0.0 as the latest, older than version 1.1.0"},
		{"a newer index, a series gone", "dir:/f", "k", ix(4, r1, r2), "d4", "no longer lists other"},
		{"another feed", "dir:/g", "k", ix(1, r1), "g1", ""},
		{"another key", "dir:/f", "k2", ix(1, r1), "k1", ""},
		{"still remembered", "dir:/f", "k", ix(2, r1, r2, o1), "d2", "older than version 3"},
	}
	for _, s := range steps {
		err := st.Remember(s.loc, s.key, s.ix, s.digest)
		switch {
		case s.wantError == "" && err != nil:
			t.Errorf("%s: got %v, want it remembered", s.name, err)
		case s.wantError != "" && (!errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), s.wantError)):
			t.Errorf("%s: got %v, want ErrRolledBack saying %q", s.name, err, s.wantError)
		}
	}
	b, err := os.ReadFile(filepath.Join(st.Dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(st.Dir, StateFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode: %v, %v; want 0600", fi.Mode(), err)
	}
	for _, w := range []string{`"feed": "dir:/g"`, `"index_version": 3`, `"sample": "1.1.0"`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("state file lacks %s:\n%s", w, b)
		}
	}
	// An unreadable state is an error that says how to start over.
	if err := os.WriteFile(filepath.Join(st.Dir, StateFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := st.Remember("dir:/f", "k", ix(9, r1), "x"); err == nil || !strings.Contains(err.Error(), "move it aside") {
		t.Errorf("unreadable state: got %v, want an error saying to move it aside", err)
	}
}
