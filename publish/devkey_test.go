package publish

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/publish/feed"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// devKeyCase is one way of verifying a release's documents: the whole
// release, each standalone document and a dir feed holding it.
type devKeyCase struct {
	name   string
	verify func(t *testing.T, docs []Document, s *sign.Signer, o VerifyOptions) (devKey bool, err error)
}

func devKeyPaths() []devKeyCase {
	ctx := context.Background()
	return []devKeyCase{
		{"release", func(t *testing.T, docs []Document, s *sign.Signer, o VerifyOptions) (bool, error) {
			pub := s.Public()
			v, err := Verify(ctx, docs, pub, o)
			if err != nil {
				return false, err
			}
			return v.Release.DevelopmentKey, nil
		}},
		{"statement alone", func(t *testing.T, docs []Document, s *sign.Signer, o VerifyOptions) (bool, error) {
			pub := s.Public()
			_, err := VerifyOne(ctx, doc(docs, StatementFile).Data, nil, pub, o)
			return sign.IsDevKey(pub), err
		}},
		{"RVPS message with its statement", func(t *testing.T, docs []Document, s *sign.Signer, o VerifyOptions) (bool, error) {
			pub := s.Public()
			o.Statement = doc(docs, StatementFile).Data
			_, err := VerifyOne(ctx, doc(docs, RVPSFile).Data, doc(docs, RVPSSigFile).Data, pub, o)
			return sign.IsDevKey(pub), err
		}},
		{"RVPS message without expiry", func(t *testing.T, docs []Document, s *sign.Signer, o VerifyOptions) (bool, error) {
			pub := s.Public()
			o.SkipExpiry = true
			_, err := VerifyOne(ctx, doc(docs, RVPSFile).Data, doc(docs, RVPSSigFile).Data, pub, o)
			return sign.IsDevKey(pub), err
		}},
		{"CoRIM", func(t *testing.T, docs []Document, s *sign.Signer, o VerifyOptions) (bool, error) {
			pub := s.Public()
			_, err := VerifyOne(ctx, doc(docs, CoRIMFile("snp")).Data, nil, pub, o)
			return sign.IsDevKey(pub), err
		}},
		{"dir feed", func(t *testing.T, docs []Document, s *sign.Signer, o VerifyOptions) (bool, error) {
			pub := s.Public()
			dir := t.TempDir()
			r, err := VerifyStatement(ctx, doc(docs, StatementFile).Data, pub)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := PublishDocuments(ctx, "dir:"+dir, r, s, docs, FeedOptions{Now: o.Now}); err != nil {
				t.Fatal(err)
			}
			rep, err := VerifyFeed(ctx, feed.Dir{Path: dir}, pub, o, FeedCheck{})
			if err != nil {
				return false, err
			}
			if len(rep.Releases) != 1 {
				t.Fatalf("feed: %d releases, want 1", len(rep.Releases))
			}
			return rep.Releases[0].Verified.Release.DevelopmentKey, nil
		}},
	}
}

// TestVerifyRefusesTheDevelopmentKey: documents that verify with the
// development key are refused unless AllowDevKey, whatever the statement's
// development_key says; with AllowDevKey they verify and are reported as
// development-key documents, also when the statement said false.
func TestVerifyRefusesTheDevelopmentKey(t *testing.T) {
	dev := sign.DevSigner()
	for _, claim := range []bool{false, true} {
		r := testRelease(t, "1.0.0")
		r.DevelopmentKey = claim // what the signer says, not to be trusted
		docs := signAll(t, r, dev)
		for _, p := range devKeyPaths() {
			t.Run(p.name, func(t *testing.T) {
				_, err := p.verify(t, docs, dev, verifyAt)
				if !errors.Is(err, ErrDevKey) || !strings.Contains(err.Error(), "--allow-dev-key") {
					t.Errorf("development_key=%v, signed with the development key, no AllowDevKey: got %v, want ErrDevKey naming --allow-dev-key", claim, err)
				}
				o := verifyAt
				o.AllowDevKey = true
				got, err := p.verify(t, docs, dev, o)
				if err != nil {
					t.Fatalf("development_key=%v with AllowDevKey: got %v, want it verified", claim, err)
				}
				if !got {
					t.Errorf("development_key=%v with AllowDevKey: reported as development key %v, want true (from the key)", claim, got)
				}
			})
		}
	}
}

// TestVerifyChecksTheDevelopmentKeyClaim: a statement that says
// development_key=true but verifies with another key is refused as
// inconsistent (cocobuild sets the field from the signing key), with or
// without AllowDevKey; the same release saying false verifies. Documents
// without a statement (an RVPS message on its own, a CoRIM) carry no claim.
func TestVerifyChecksTheDevelopmentKeyClaim(t *testing.T) {
	s := testSigner(t, sign.ECDSAP256)
	for _, claim := range []bool{false, true} {
		r := testRelease(t, "1.0.0")
		r.DevelopmentKey = claim
		docs := signAll(t, r, s)
		for _, p := range devKeyPaths() {
			withClaim := p.name != "RVPS message without expiry" && p.name != "CoRIM"
			for _, allow := range []bool{false, true} {
				o := verifyAt
				o.AllowDevKey = allow
				got, err := p.verify(t, docs, s, o)
				switch {
				case claim && withClaim:
					if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "development key") || !strings.Contains(err.Error(), s.Public().ID()) {
						t.Errorf("%s, development_key=true signed by %s, AllowDevKey=%v: got %v, want ErrMismatch naming the key", p.name, s.Public().ID(), allow, err)
					}
				case err != nil:
					t.Errorf("%s, development_key=%v signed by another key, AllowDevKey=%v: got %v, want it verified", p.name, claim, allow, err)
				case got:
					t.Errorf("%s: reported as development key, want false (another key verified it)", p.name)
				}
			}
		}
	}
}
