package publish

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"oras.land/oras-go/v2"

	"github.com/cocobuild/cocobuild/publish/feed"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// publishVersions publishes releases of testManifest to target, one per
// version, signing the feed's index at verifyAt.Now.
func publishVersions(t *testing.T, s *sign.Signer, target string, versions ...string) {
	t.Helper()
	for _, v := range versions {
		cfg := testConfig(v, testExpires)
		cfg.Now = verifyAt.Now
		cfg.To = []string{target}
		if _, err := Publish(context.Background(), testManifest(), s, cfg); err != nil {
			t.Fatalf("publishing %s to %s: %v", v, target, err)
		}
	}
}

// serveFeed serves a directory feed as `cocobuild serve` does, on a real
// loopback listener, until the test ends.
func serveFeed(t *testing.T, dir string) feed.Reader {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- feed.Serve(ctx, l, feed.Dir{Path: dir}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return feed.HTTP{Base: &url.URL{Scheme: "http", Host: l.Addr().String(), Path: "/"}}
}

// TestVerifyFeedRejectsRollbackAndFreeze: a feed served over HTTP whose
// server replays an older signed index than one seen before, whose index
// lost a release and was re-signed (by another key, or by the publisher's
// with the series going back), whose index has expired, or whose index is
// the unsigned format, does not verify.
func TestVerifyFeedRejectsRollbackAndFreeze(t *testing.T) {
	ctx := context.Background()
	s, other := testSigner(t, sign.ECDSAP256), testSigner(t, sign.Ed25519)
	dir := filepath.Join(t.TempDir(), "feed")
	index := filepath.Join(dir, feed.IndexFile)
	publishVersions(t, s, "dir:"+dir, "1.0.0")
	v1, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	publishVersions(t, s, "dir:"+dir, "1.1.0")
	v2, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	rd := serveFeed(t, dir)
	state := &feed.State{Dir: t.TempDir()}
	remember := FeedCheck{State: state}
	rep, err := VerifyFeed(ctx, rd, s.Public(), verifyAt, remember)
	if err != nil {
		t.Fatalf("the served feed: got %v, want it verified", err)
	}
	if rep.IndexVersion != 2 || len(rep.Releases) != 2 {
		t.Fatalf("the served feed: index version %d, %d releases, want 2, 2", rep.IndexVersion, len(rep.Releases))
	}
	ix, err := feed.ParseIndex(v2)
	if err != nil {
		t.Fatal(err)
	}
	removed := *ix
	removed.Releases = ix.Releases[:1]
	removed.Version = 3
	write := func(t *testing.T, b []byte) {
		t.Helper()
		if err := os.WriteFile(index, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sealed := func(t *testing.T, ix *feed.Index, s *sign.Signer) []byte {
		t.Helper()
		b, err := feed.EncodeIndex(ix, s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name  string
		index []byte
		o     VerifyOptions
		err   error
		text  []string
	}{
		{"the older signed index", v1, verifyAt, feed.ErrRolledBack, []string{"index version 1", "version 2 seen before"}},
		{"a release removed, re-signed by another key", sealed(t, &removed, other), verifyAt, feed.ErrIndexSignature, []string{other.Public().ID()}},
		{"a release removed, re-signed by the key", sealed(t, &removed, s), verifyAt, feed.ErrRolledBack, []string{"1.0.0", "1.1.0 seen before"}},
		{"the current index, expired", v2, VerifyOptions{TEEs: testTEEs, Now: ix.Expires.Add(time.Second)}, feed.ErrIndexExpired, []string{"frozen or stale", ix.Expires.Format(time.RFC3339)}},
		{"the unsigned format", []byte(`{"schema":"` + feed.LegacySchema + `","releases":[]}`), verifyAt, feed.ErrUnsigned, []string{"re-publish"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			write(t, c.index)
			_, err := VerifyFeed(ctx, rd, s.Public(), c.o, remember)
			if !errors.Is(err, c.err) {
				t.Fatalf("got %v, want %v", err, c.err)
			}
			for _, w := range c.text {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// The current index still verifies, and so does the older one for a
	// verifier that has not seen the newer: only the memory catches it.
	write(t, v2)
	if _, err := VerifyFeed(ctx, rd, s.Public(), verifyAt, remember); err != nil {
		t.Errorf("the current index again: got %v, want it verified", err)
	}
	write(t, v1)
	if _, err := VerifyFeed(ctx, rd, s.Public(), verifyAt, FeedCheck{State: &feed.State{Dir: t.TempDir()}}); err != nil {
		t.Errorf("the older index, to a verifier that has not seen the newer: got %v, want it verified", err)
	}
	// Publishing to the unsigned format is refused, saying how to go on.
	write(t, []byte(`{"schema":"`+feed.LegacySchema+`","releases":[]}`))
	cfg := testConfig("1.2.0", testExpires)
	cfg.To = []string{"dir:" + dir}
	if _, err := Publish(ctx, testManifest(), s, cfg); !errors.Is(err, feed.ErrUnsigned) || !strings.Contains(err.Error(), "re-publish") {
		t.Errorf("publishing to an unsigned feed: got %v, want feed.ErrUnsigned saying how to re-publish", err)
	}
}

// TestPublishRenewsTheIndex: each publish re-signs the index with the next
// version and a new expiry, also when the release is already there (how a
// publisher keeps a feed fresh), and IndexTTL sets the expiry.
func TestPublishRenewsTheIndex(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t, sign.ECDSAP256)
	dir := t.TempDir()
	steps := []struct {
		version string
		now     time.Time
		ttl     time.Duration
		want    int64
		expires time.Time
	}{
		{"1.0.0", verifyAt.Now, 0, 1, verifyAt.Now.Add(feed.DefaultIndexTTL)},
		{"1.0.0", verifyAt.Now.Add(24 * time.Hour), time.Hour, 2, verifyAt.Now.Add(25 * time.Hour)},
		{"1.1.0", verifyAt.Now.Add(48 * time.Hour), 0, 3, verifyAt.Now.Add(48*time.Hour + feed.DefaultIndexTTL)},
	}
	for _, st := range steps {
		cfg := testConfig(st.version, testExpires)
		cfg.Now, cfg.IndexTTL, cfg.To = st.now, st.ttl, []string{"dir:" + dir}
		if _, err := Publish(ctx, testManifest(), s, cfg); err != nil {
			t.Fatal(err)
		}
		ix, err := feed.Dir{Path: dir}.Index(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ix.Version != st.want || !ix.Expires.Equal(st.expires) {
			t.Errorf("after publishing %s at %s: index version %d, expires %s; want %d, %s", st.version, st.now, ix.Version, ix.Expires, st.want, st.expires)
		}
	}
}

// TestVerifyOCIRejectsRollback: an OCI feed published with the default
// tags (one per version) has a signed index at tag "index"; moving that tag
// back to an older index, or verifying a tag that holds an older release
// than the index's latest, is a rollback.
func TestVerifyOCIRejectsRollback(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	repo := "oci://" + strings.TrimPrefix(srv.URL, "http://") + "/coco/sample"
	s := testSigner(t, sign.ECDSAP256)
	oc, err := feed.OpenOCI(repo)
	if err != nil {
		t.Fatal(err)
	}
	publishVersions(t, s, repo, "1.0.0")
	old, err := oc.Repo.Resolve(ctx, feed.IndexTag)
	if err != nil {
		t.Fatal(err)
	}
	publishVersions(t, s, repo, "1.1.0")
	remember := FeedCheck{State: &feed.State{Dir: t.TempDir()}, Name: "sample"}
	for _, ref := range []string{repo, repo + ":1.1.0"} {
		rep, err := VerifyOCI(ctx, ref, s.Public(), verifyAt, remember)
		if err != nil {
			t.Fatalf("%s: got %v, want it verified", ref, err)
		}
		if rep.IndexVersion != 2 || len(rep.Releases) != 2 {
			t.Errorf("%s: index version %d, %d releases, want 2, 2", ref, rep.IndexVersion, len(rep.Releases))
		}
	}
	// The version tag of an older release was not moved back: it is not
	// the latest, which the error says without alleging a rollback.
	if _, err := VerifyOCI(ctx, repo+":1.0.0", s.Public(), verifyAt, remember); !errors.Is(err, ErrNotLatest) || errors.Is(err, ErrRollback) ||
		!strings.Contains(err.Error(), "1.0.0 is not the latest (1.1.0): verify "+repo+" without a tag") || strings.Contains(err.Error(), "moved back") {
		t.Errorf("the version tag of an older release: got %v, want ErrNotLatest saying 1.0.0 is not the latest (1.1.0), to verify %s without a tag, and no rollback", err, repo)
	}
	// Another tag moved back from 1.1.0 to 1.0.0 is a rollback.
	d100, err := oc.Repo.Resolve(ctx, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := oc.Repo.Tag(ctx, d100, "stable"); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyOCI(ctx, repo+":stable", s.Public(), verifyAt, remember); !errors.Is(err, ErrRollback) || !strings.Contains(err.Error(), "tag stable holds sample 1.0.0, but the signed index lists 1.1.0 as the latest: the tag was moved back") {
		t.Errorf("the tag stable moved back to 1.0.0: got %v, want ErrRollback saying the tag was moved back", err)
	}
	// A release the index does not list (0.9.0, published to another
	// repository and copied here): the error says what to do.
	otherRepo := "oci://" + strings.TrimPrefix(srv.URL, "http://") + "/coco/other"
	publishVersions(t, s, otherRepo, "0.9.0")
	other, err := feed.OpenOCI(otherRepo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oras.Copy(ctx, other.Repo, "0.9.0", oc.Repo, "0.9.0", oras.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = VerifyOCI(ctx, repo+":0.9.0", s.Public(), verifyAt, remember)
	if !errors.Is(err, ErrNotListed) || !strings.Contains(err.Error(), "verify "+repo+" without a tag") || !strings.Contains(err.Error(), "publish sample 0.9.0 again") {
		t.Errorf("a tag holding a release the index does not list: got %v, want ErrNotListed saying to verify %s without a tag or publish again", err, repo)
	}
	if err := oc.Repo.Tag(ctx, old, feed.IndexTag); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{repo, repo + ":1.0.0"} {
		_, err := VerifyOCI(ctx, ref, s.Public(), verifyAt, remember)
		if !errors.Is(err, feed.ErrRolledBack) || !strings.Contains(err.Error(), "index version 1, older than version 2") {
			t.Errorf("%s with the index tag moved back: got %v, want feed.ErrRolledBack naming both versions", ref, err)
		}
	}
	// A verifier that saw nothing before still finds the tag of 1.1.0
	// newer than the index.
	fresh := FeedCheck{State: &feed.State{Dir: t.TempDir()}}
	if _, err := VerifyOCI(ctx, repo+":1.1.0", s.Public(), verifyAt, fresh); !errors.Is(err, ErrRollback) || !strings.Contains(err.Error(), "index was rolled back") {
		t.Errorf("the tag of 1.1.0 with the index of 1.0.0, to a fresh verifier: got %v, want ErrRollback saying the index was rolled back", err)
	}
}

// TestVerifyName: --name binds the release series: a feed holding another
// name, a release of another name, are rejected.
func TestVerifyName(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t, sign.ECDSAP256)
	dir := t.TempDir()
	publishVersions(t, s, "dir:"+dir, "1.0.0")
	rd := feed.Dir{Path: dir}
	if _, err := VerifyFeed(ctx, rd, s.Public(), verifyAt, FeedCheck{Name: "sample"}); err != nil {
		t.Errorf("the feed of sample, --name sample: got %v, want it verified", err)
	}
	if _, err := VerifyFeed(ctx, rd, s.Public(), verifyAt, FeedCheck{Name: "other"}); !errors.Is(err, ErrOtherName) || !strings.Contains(err.Error(), "sample") {
		t.Errorf("the feed of sample, --name other: got %v, want ErrOtherName naming sample", err)
	}
	// A feed that also holds another series.
	cfg := testConfig("0.1.0", testExpires)
	cfg.Name, cfg.Now, cfg.To = "intruder", verifyAt.Now, []string{"dir:" + dir}
	if _, err := Publish(ctx, testManifest(), s, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyFeed(ctx, rd, s.Public(), verifyAt, FeedCheck{Name: "sample"}); !errors.Is(err, ErrOtherName) || !strings.Contains(err.Error(), "intruder") {
		t.Errorf("a feed of sample and intruder, --name sample: got %v, want ErrOtherName naming intruder", err)
	}
	// A release, and its statement on its own.
	docs := signAll(t, testRelease(t, "1.0.0"), s)
	o := verifyAt
	o.Name = "other"
	if _, err := Verify(ctx, docs, s.Public(), o); !errors.Is(err, ErrOtherName) {
		t.Errorf("a release of sample, --name other: got %v, want ErrOtherName", err)
	}
	if _, err := VerifyOne(ctx, doc(docs, StatementFile).Data, nil, s.Public(), o); !errors.Is(err, ErrOtherName) {
		t.Errorf("a statement of sample, --name other: got %v, want ErrOtherName", err)
	}
	o.Name = "sample"
	if _, err := Verify(ctx, docs, s.Public(), o); err != nil {
		t.Errorf("a release of sample, --name sample: got %v, want it verified", err)
	}
}
