package feed

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/publish/sign"
)

// testNow is the time the feed tests sign indexes at.
var testNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// testSigner is the publisher key of the feed tests: a fixed Ed25519 key.
func testSigner() *sign.Signer {
	s, err := sign.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))
	if err != nil {
		panic(err)
	}
	return s
}

// testSigning re-signs indexes with testSigner at testNow.
func testSigning() Signing { return Signing{Signer: testSigner(), Now: testNow} }

// testRelease makes a release of two documents whose bytes depend on the
// version, so that releases differ.
func testRelease(name, version string) (Release, map[string][]byte) {
	blobs := map[string][]byte{}
	rel := Release{Name: name, Version: version, Issued: time.Unix(0, 0).UTC(), Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Recipe: strings.Repeat("a", 64), Key: testSigner().Public().ID()}
	for _, n := range []string{"rvps.json", "statement.sigstore.json"} {
		b := []byte(fmt.Sprintf(`{"doc":%q,"version":%q}`, n, version))
		d := Digest(b)
		blobs[d] = b
		rel.Documents = append(rel.Documents, Document{Name: n, Format: "test", MediaType: "application/json", Digest: d, Size: int64(len(b))})
	}
	return rel, blobs
}

func TestDirAppend(t *testing.T) {
	ctx := context.Background()
	d := Dir{Path: filepath.Join(t.TempDir(), "feed")}
	r1, b1 := testRelease("sample", "1.0.0")
	r2, b2 := testRelease("sample", "1.1.0")
	other, ob := testRelease("other", "0.1.0")
	steps := []struct {
		name    string
		rel     Release
		blobs   map[string][]byte
		added   bool
		err     error
		release int   // releases in the index afterwards
		version int64 // the index's version afterwards: each append re-signs it
	}{
		{"first", r1, b1, true, nil, 1, 1},
		{"same again", r1, b1, false, nil, 1, 2},
		{"newer", r2, b2, true, nil, 2, 3},
		{"rollback", r1, b1, false, nil, 2, 4}, // identical to the published 1.0.0: a no-op, not a rollback
		{"older, new content", func() Release { r, _ := testRelease("sample", "1.0.5"); return r }(), func() map[string][]byte { _, b := testRelease("sample", "1.0.5"); return b }(), false, ErrRollback, 2, 4},
		{"same version, other content", func() Release { r := r2; r.Documents = r1.Documents; return r }(), b1, false, ErrImmutable, 2, 4},
		{"another name", other, ob, true, nil, 3, 5},
	}
	for _, s := range steps {
		added, _, err := d.Append(ctx, s.rel, s.blobs, testSigning())
		if s.err != nil {
			if !errors.Is(err, s.err) {
				t.Errorf("%s: error %v, want %v", s.name, err, s.err)
			}
		} else if err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
		if added != s.added {
			t.Errorf("%s: added = %v, want %v", s.name, added, s.added)
		}
		ix, err := d.Index(ctx)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if len(ix.Releases) != s.release || ix.Version != s.version {
			t.Errorf("%s: %d releases, index version %d, want %d, %d", s.name, len(ix.Releases), ix.Version, s.release, s.version)
		}
	}
	ix, _ := d.Index(ctx)
	if diff := cmp.Diff([]Release{r1, r2, other}, ix.Releases); diff != "" {
		t.Errorf("index (-want +got):\n%s", diff)
	}
	for _, doc := range r2.Documents {
		b, err := d.Blob(ctx, doc.Digest)
		if err != nil || string(b) != string(b2[doc.Digest]) {
			t.Errorf("blob %s: %q, %v", doc.Name, b, err)
		}
	}
	// A missing blob byte slice is refused before anything is written.
	r3, _ := testRelease("sample", "2.0.0")
	if _, _, err := d.Append(ctx, r3, map[string][]byte{}, testSigning()); err == nil {
		t.Error("append without the documents' bytes succeeded")
	}
	// A corrupted blob is detected on read.
	h, _ := checkDigest(r1.Documents[0].Digest)
	if err := os.WriteFile(d.blobPath(h), []byte("evil"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Blob(ctx, r1.Documents[0].Digest); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupted blob: %v", err)
	}
}

func TestDirAppendConcurrent(t *testing.T) {
	ctx := context.Background()
	d := Dir{Path: t.TempDir()}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, b := testRelease("n", fmt.Sprintf("1.%d.0", i))
			d.Append(ctx, r, b, testSigning()) // some fail as rollbacks: the order is a race
		}()
	}
	wg.Wait()
	ix, err := d.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Releases) == 0 {
		t.Fatal("no release appended")
	}
	if err := ix.Check(); err != nil {
		t.Errorf("index after concurrent appends: %v", err)
	}
	if ix.Version != int64(len(ix.Releases)) {
		t.Errorf("index version %d with %d releases: want one version per append (a refused append re-signs nothing)", ix.Version, len(ix.Releases))
	}
	for _, r := range ix.Releases {
		for _, doc := range r.Documents {
			if _, err := d.Blob(ctx, doc.Digest); err != nil {
				t.Errorf("release %s lists %s, which is missing: %v", r.Version, doc.Name, err)
			}
		}
	}
}

// rawIndex encodes an index as index.json with a signature that verifies
// nothing, skipping the checks EncodeIndex makes: what an attacker or a
// broken publisher could write.
func rawIndex(t *testing.T, ix Index) []byte {
	t.Helper()
	signed, err := json.Marshal(ix)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(SignedIndex{Signed: signed, Signatures: []Signature{{KeyID: ix.Key, Sig: "AAAA"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseIndexRejects(t *testing.T) {
	r1, _ := testRelease("a", "1.0.0")
	r2, _ := testRelease("a", "2.0.0")
	bad := r1
	bad.Documents = []Document{{Name: "../x", Digest: r1.Documents[0].Digest}}
	ok := func(rs ...Release) Index {
		return Index{Type: IndexType, Schema: Schema, Version: 1, Expires: testNow.Add(time.Hour), Key: testSigner().Public().ID(), Releases: rs}
	}
	cases := []struct {
		name string
		b    []byte
		text string
	}{
		{"rollback", rawIndex(t, ok(r2, r1)), "not newer"},
		{"same version twice", rawIndex(t, ok(r1, r1)), "not newer"},
		{"path in a name", rawIndex(t, ok(bad)), "document named"},
		{"schema", rawIndex(t, func() Index { ix := ok(r1); ix.Schema = "x"; return ix }()), "schema"},
		{"no version", rawIndex(t, func() Index { ix := ok(r1); ix.Version = 0; return ix }()), "version from 1"},
		{"no expiry", rawIndex(t, func() Index { ix := ok(r1); ix.Expires = time.Time{}; return ix }()), "an expiry"},
		{"unsigned, the earlier format", []byte(`{"schema":"` + LegacySchema + `","releases":[]}`), "re-publish"},
		{"no signed part", []byte(`{"releases":[]}`), "no signed part"},
	}
	for _, c := range cases {
		if _, err := ParseIndex(c.b); err == nil || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: error %v, want one mentioning %q", c.name, err, c.text)
		}
	}
}

func TestHandler(t *testing.T) {
	ctx := context.Background()
	d := Dir{Path: t.TempDir()}
	srv := httptest.NewServer(Handler(d))
	defer srv.Close()
	get := func(method, path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	// An empty feed has no index yet: nothing signed it.
	if resp, body := get("GET", "/index.json", nil); resp.StatusCode != 404 {
		t.Errorf("empty feed index: %s %q, want 404", resp.Status, body)
	}
	r, blobs := testRelease("sample", "1.0.0")
	// Signed at the wall clock: /healthz checks the index's expiry against it.
	if _, _, err := d.Append(ctx, r, blobs, Signing{Signer: testSigner()}); err != nil {
		t.Fatal(err)
	}
	resp, body := get("GET", "/index.json", nil)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || etag != `"`+Digest([]byte(body))+`"` {
		t.Errorf("index: %s, ETag %s, want the body's digest", resp.Status, etag)
	}
	doc := r.Documents[0]
	h, _ := checkDigest(doc.Digest)
	cases := []struct {
		method, path string
		hdr          map[string]string
		status       int
		body         string
	}{
		{"GET", "/healthz", nil, 200, "ok\n"},
		{"GET", "/", nil, 200, body},
		{"GET", "/index.json", map[string]string{"If-None-Match": etag}, 304, ""},
		{"GET", "/blobs/sha256/" + h, nil, 200, string(blobs[doc.Digest])},
		{"GET", "/blobs/sha256/" + h, map[string]string{"If-None-Match": `"` + doc.Digest + `"`}, 304, ""},
		{"GET", "/blobs/sha256/" + h, map[string]string{"Range": "bytes=0-4"}, 206, string(blobs[doc.Digest][:5])},
		{"HEAD", "/blobs/sha256/" + h, nil, 200, ""},
		{"GET", "/blobs/sha256/" + strings.Repeat("0", 64), nil, 404, "404 page not found\n"},
		{"GET", "/blobs/sha256/../../../index.json", nil, 200, body}, // cleaned to /index.json: nothing outside the feed
		{"GET", "/blobs/sha256/%2e%2e%2findex.json", nil, 404, "404 page not found\n"},
		{"GET", "/.lock", nil, 404, "404 page not found\n"},
		{"PUT", "/index.json", nil, 405, "read-only feed\n"},
		{"DELETE", "/blobs/sha256/" + h, nil, 405, "read-only feed\n"},
	}
	for _, c := range cases {
		resp, got := get(c.method, c.path, c.hdr)
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, resp.StatusCode, c.status)
		}
		if c.body != "" && got != c.body {
			t.Errorf("%s %s: body %q, want %q", c.method, c.path, got, c.body)
		}
	}
	if resp, _ := get("GET", "/blobs/sha256/"+h, nil); resp.Header.Get("ETag") != `"`+doc.Digest+`"` || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("blob headers: %v", resp.Header)
	}
	// The HTTP reader reads the same feed as the directory.
	u, _ := url.Parse(srv.URL)
	hr := HTTP{Base: u}
	b, err := hr.IndexBytes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ix, _, err := VerifyIndex(b, testSigner().Public(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Release{r}, ix.Releases); diff != "" {
		t.Errorf("index over HTTP (-want +got):\n%s", diff)
	}
	if b, err := hr.Blob(ctx, doc.Digest); err != nil || string(b) != string(blobs[doc.Digest]) {
		t.Errorf("blob over HTTP: %q, %v", b, err)
	}
	if _, err := hr.Blob(ctx, "sha256:"+strings.Repeat("0", 64)); err == nil {
		t.Error("missing blob read over HTTP")
	}
}

func TestServeShutsDownWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	l, err := newLoopbackListener()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, Dir{Path: t.TempDir()}) }()
	resp, err := http.Get("http://" + l.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the context was cancelled")
	}
}

func TestOpen(t *testing.T) {
	cases := []struct {
		ref  string
		want Reader
		err  bool
	}{
		{"dir:out/feed", Dir{Path: "out/feed"}, false},
		{"out/feed", Dir{Path: "out/feed"}, false},
		{"http://127.0.0.1:8080/feed", HTTP{Base: &url.URL{Scheme: "http", Host: "127.0.0.1:8080", Path: "/feed"}}, false},
		{"oci://r/x:1", nil, true},
	}
	for _, c := range cases {
		got, err := Open(c.ref, nil)
		if (err != nil) != c.err {
			t.Errorf("Open(%q): error %v", c.ref, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("Open(%q) (-want +got):\n%s", c.ref, diff)
		}
	}
}
