package publish

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/publish/feed"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// TestVerifyChecksEveryDocument: a release whose document list holds a
// document twice, a name cocobuild does not publish, a name with another
// format, a detached signature without its message or another key's
// cosign.pub does not verify, even when the last entry of each name is
// sound.
func TestVerifyChecksEveryDocument(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t, sign.ECDSAP256)
	docs := signAll(t, testRelease(t, "1.0.0"), s)
	other := signAll(t, testRelease(t, "1.0.0"), testSigner(t, sign.ECDSAP256))
	tampered := tamper(t, doc(docs, RVPSFile), `"payload": "`, `"payload": "A`)
	without := func(name string) []Document {
		var out []Document
		for _, d := range docs {
			if d.Name != name {
				out = append(out, d)
			}
		}
		return out
	}
	cases := []struct {
		name string
		docs []Document
		text string
	}{
		{"tampered rvps.json listed before the sound one", append([]Document{tampered}, docs...), "rvps.json twice"},
		{"sound rvps.json listed twice", append(append([]Document{}, docs...), doc(docs, RVPSFile)), "rvps.json twice"},
		{"unknown name", append(append([]Document{}, docs...), Document{Name: "notes.txt", Data: []byte("trust me")}), `"notes.txt"`},
		{"name of another format", replaceDoc(docs, Document{Name: RVPSFile, Format: FormatCoRIM, MediaType: MediaTypeCoRIM, Data: doc(docs, RVPSFile).Data}), `format "corim"`},
		{"signature without its message", without(RVPSFile), "rvps.json.sig has no rvps.json"},
		{"cosign.pub of another key", replaceDoc(docs, doc(other, PublicKeyFile)), "cosign.pub beside the release is key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Verify(ctx, c.docs, s.Public(), verifyAt)
			if err == nil {
				t.Fatalf("verified, want an error mentioning %q", c.text)
			}
			if !strings.Contains(err.Error(), c.text) {
				t.Errorf("got error %q, want one mentioning %q", err, c.text)
			}
		})
	}
	if _, err := Verify(ctx, docs, s.Public(), verifyAt); err != nil {
		t.Errorf("the sound release: got %v, want it verified", err)
	}
}

// TestVerifyFeedChecksEveryEntry: a feed index that lists a second
// rvps.json (a tampered blob, first) for a release does not verify, even
// signed with the publisher's key (an index altered without it does not
// verify at all).
func TestVerifyFeedChecksEveryEntry(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t, sign.ECDSAP256)
	r := testRelease(t, "1.0.0")
	docs := signAll(t, r, s)
	dir := filepath.Join(t.TempDir(), "feed")
	d := feed.Dir{Path: dir}
	if _, err := PublishDocuments(ctx, "dir:"+dir, r, s, docs, FeedOptions{Now: verifyAt.Now}); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyFeed(ctx, d, s.Public(), verifyAt, FeedCheck{}); err != nil {
		t.Fatalf("the published feed: got %v, want it verified", err)
	}
	// Add a tampered rvps.json before the sound one, as an attacker who
	// controls the feed's storage would.
	bad := tamper(t, doc(docs, RVPSFile), `"payload": "`, `"payload": "A`)
	dg := feed.Digest(bad.Data)
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(dg, "sha256:")), bad.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	ix, err := d.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rel := &ix.Releases[0]
	rel.Documents = append([]feed.Document{{Name: RVPSFile, Format: FormatRVPS, MediaType: MediaTypeRVPS, Digest: dg, Size: int64(len(bad.Data))}}, rel.Documents...)
	writeIndex(t, dir, ix, nil)
	if _, err := VerifyFeed(ctx, d, s.Public(), verifyAt, FeedCheck{}); !errors.Is(err, feed.ErrIndexSignature) {
		t.Errorf("feed with an entry added to its index: got %v, want feed.ErrIndexSignature", err)
	}
	writeIndex(t, dir, ix, s)
	_, err = VerifyFeed(ctx, d, s.Public(), verifyAt, FeedCheck{})
	if err == nil || !strings.Contains(err.Error(), "rvps.json twice") {
		t.Errorf("feed with two rvps.json entries: got %v, want an error naming rvps.json twice", err)
	}
}

// writeIndex writes a feed's index.json: signed by s as the feed package
// signs it, or with the signature of the index it replaces (nil s), as an
// attacker without the key would.
func writeIndex(t *testing.T, dir string, ix *feed.Index, s *sign.Signer) {
	t.Helper()
	p := filepath.Join(dir, feed.IndexFile)
	if s == nil {
		old, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var env feed.SignedIndex
		if err := json.Unmarshal(old, &env); err != nil {
			t.Fatal(err)
		}
		if env.Signed, err = json.Marshal(ix); err != nil {
			t.Fatal(err)
		}
		b, err := json.MarshalIndent(env, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := feed.EncodeIndex(ix, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
