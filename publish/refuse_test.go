package publish

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ita "github.com/in-toto/attestation/go/v1"

	"github.com/cocobuild/cocobuild/publish/feed"
	"github.com/cocobuild/cocobuild/publish/sign"
)

func testConfig(version string, expires time.Time) Config {
	return Config{Options: Options{TEEs: testTEEs, Name: "sample", Version: version, Expires: expires, Namespace: "example.org/coco"}}
}

// TestPublishRefusesPastExpiry: an expiry at or before the wall clock (not
// the recipe epoch) is refused before anything is signed or appended.
func TestPublishRefusesPastExpiry(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t, sign.ECDSAP256)
	feedDir := filepath.Join(t.TempDir(), "feed")
	cases := []struct {
		name    string
		expires time.Time
		now     time.Time
		refused bool
	}{
		// after the epoch (2023-11-14) but before the wall clock
		{"past by the wall clock", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}, true},
		{"at the instant", testExpires, testExpires, true},
		{"a second before", testExpires, testExpires.Add(-time.Second), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig("1.0.0", c.expires)
			cfg.Now = c.now
			cfg.To = []string{"dir:" + feedDir}
			_, err := Publish(ctx, testManifest(), s, cfg)
			if !c.refused {
				if err != nil {
					t.Fatalf("got %v, want it published", err)
				}
				return
			}
			if !errors.Is(err, ErrExpiresPast) || !strings.Contains(err.Error(), "wall clock") {
				t.Fatalf("got %v, want ErrExpiresPast saying verifiers use the wall clock", err)
			}
			if _, err := os.Stat(filepath.Join(feedDir, feed.IndexFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused release reached the feed (index.json: %v)", err)
			}
		})
	}
}

// TestPublishRefusesSubjectsOutside: subject paths that leave the build
// output are refused when the release is made, by the verifier reading
// --artifacts, and, when the output is known, a subject that is a symbolic
// link out of it.
func TestPublishRefusesSubjectsOutside(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t, sign.ECDSAP256)
	for _, p := range []string{"../../etc/hostname", "/etc/hostname", "kernel/../../etc/hostname", "kernel/./vmlinuz", `kernel\vmlinuz`, ""} {
		m := testManifest()
		m.Artifacts[0].Path = p
		_, err := NewRelease(m, testConfig("1.0.0", testExpires).Options)
		if !errors.Is(err, ErrSubjectOutside) {
			t.Errorf("subject %q: got %v, want ErrSubjectOutside", p, err)
		}
	}

	// A build output whose kernel is a link to a file outside it.
	base := t.TempDir()
	out := filepath.Join(base, "out")
	secret := filepath.Join(base, "hostname")
	write := func(p, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(secret, "host\n")
	m := testManifest()
	for _, a := range m.Artifacts {
		write(filepath.Join(out, filepath.FromSlash(a.Path)), a.Name)
	}
	cfg := testConfig("1.0.0", testExpires)
	cfg.Now = verifyAt.Now
	cfg.Out = out
	if _, err := Publish(ctx, m, s, cfg); err != nil {
		t.Fatalf("subjects inside the output: got %v, want it published", err)
	}
	kernel := filepath.Join(out, filepath.FromSlash(m.Artifacts[0].Path))
	if err := os.Remove(kernel); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, kernel); err != nil {
		t.Fatal(err)
	}
	_, err := Publish(ctx, m, s, cfg)
	if !errors.Is(err, ErrSubjectOutside) || !strings.Contains(err.Error(), m.Artifacts[0].Path) {
		t.Errorf("subject linked out of the output: got %v, want ErrSubjectOutside naming it", err)
	}

	// A statement signed with a subject outside the output, checked against
	// --artifacts: refused, the file is not read.
	r := testRelease(t, "1.0.0")
	r.Subjects[0].Name = "../hostname"
	stm := statement{Type: ita.StatementTypeUri, PredicateType: PredicateType, Predicate: r}
	for _, sj := range r.Subjects {
		stm.Subject = append(stm.Subject, subject{Name: sj.Name, Digest: map[string]string{"sha256": sj.SHA256}})
	}
	st, err := json.Marshal(stm)
	if err != nil {
		t.Fatal(err)
	}
	b, err := SignBundle(ctx, PayloadType, st, s)
	if err != nil {
		t.Fatal(err)
	}
	_, err = VerifyOne(ctx, b, nil, s.Public(), VerifyOptions{TEEs: testTEEs, Now: verifyAt.Now, Artifacts: out})
	if !errors.Is(err, ErrSubjectOutside) {
		t.Errorf("verify --artifacts of a statement naming ../hostname: got %v, want ErrSubjectOutside", err)
	}
	// and a sound statement whose subject is a link out of --artifacts
	good := signAll(t, testRelease(t, "1.0.0"), s)
	_, err = VerifyOne(ctx, doc(good, StatementFile).Data, nil, s.Public(), VerifyOptions{TEEs: testTEEs, Now: verifyAt.Now, Artifacts: out})
	if !errors.Is(err, ErrSubjectOutside) {
		t.Errorf("verify --artifacts with a subject linked out: got %v, want ErrSubjectOutside", err)
	}
}

// TestPublishRefusesFeedOfAnotherKey: a release signed with another key
// than the feed's releases is not appended; the error names both keys.
func TestPublishRefusesFeedOfAnotherKey(t *testing.T) {
	ctx := context.Background()
	a, b := testSigner(t, sign.ECDSAP256), testSigner(t, sign.Ed25519)
	target := "dir:" + filepath.Join(t.TempDir(), "feed")
	cfg := testConfig("1.0.0", testExpires)
	cfg.Now = verifyAt.Now
	cfg.To = []string{target}
	if _, err := Publish(ctx, testManifest(), a, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Version = "1.1.0"
	_, err := Publish(ctx, testManifest(), b, cfg)
	if !errors.Is(err, feed.ErrOtherKey) {
		t.Fatalf("got %v, want feed.ErrOtherKey", err)
	}
	for _, id := range []string{a.Public().ID(), b.Public().ID()} {
		if !strings.Contains(err.Error(), id) {
			t.Errorf("error %q does not name key %s", err, id)
		}
	}
	rd, _ := feed.Open(target, nil)
	rep, err := VerifyFeed(ctx, rd, a.Public(), verifyAt, FeedCheck{})
	if err != nil || len(rep.Releases) != 1 {
		t.Errorf("the feed after the refusal: got %v, want its one release verified", err)
	}
	// The feed's own key appends.
	if _, err := Publish(ctx, testManifest(), a, cfg); err != nil {
		t.Errorf("the feed's key: got %v, want 1.1.0 appended", err)
	}
}

// TestVerifyOneStandaloneChecksExpiryAndVersion: --min-version and expiry
// apply to an RVPS message (version from its rvps:/// names, expiry from
// its release's statement) and to a CoRIM on their own.
func TestVerifyOneStandaloneChecksExpiryAndVersion(t *testing.T) {
	ctx := context.Background()
	s := testSigner(t, sign.ECDSAP256)
	docs := signAll(t, testRelease(t, "2.0.0"), s)
	other := testRelease(t, "2.0.0")
	other.Entries[0].Values["launch_measurement"] = digest384("other")
	otherDocs := signAll(t, other, s)
	msg, sig, st := doc(docs, RVPSFile).Data, doc(docs, RVPSSigFile).Data, doc(docs, StatementFile).Data
	corim := doc(docs, CoRIMFile("snp")).Data
	expired := VerifyOptions{TEEs: testTEEs, Now: testExpires}
	cases := []struct {
		name      string
		data, sig []byte
		o         VerifyOptions
		want      error // nil: verifies
		text      string
	}{
		{"RVPS with its statement", msg, sig, VerifyOptions{TEEs: testTEEs, Now: verifyAt.Now, Statement: st, MinVersion: "2.0.0"}, nil, ""},
		{"RVPS older than --min-version", msg, sig, VerifyOptions{TEEs: testTEEs, Now: verifyAt.Now, Statement: st, MinVersion: "2.0.1"}, ErrRollback, "older than 2.0.1"},
		{"RVPS without a statement", msg, sig, VerifyOptions{TEEs: testTEEs, Now: verifyAt.Now}, nil, "carries no expiry"},
		{"RVPS whose statement expired", msg, sig, VerifyOptions{TEEs: testTEEs, Now: expired.Now, Statement: st}, ErrExpired, "expired"},
		{"RVPS with another release's statement", msg, sig, VerifyOptions{TEEs: testTEEs, Now: verifyAt.Now, Statement: doc(otherDocs, StatementFile).Data}, ErrMismatch, "not the reference values"},
		{"CoRIM", corim, nil, VerifyOptions{TEEs: testTEEs, Now: verifyAt.Now, MinVersion: "2.0.0"}, nil, ""},
		{"CoRIM older than --min-version", corim, nil, VerifyOptions{TEEs: testTEEs, Now: verifyAt.Now, MinVersion: "2.0.1"}, ErrRollback, "older than 2.0.1"},
		{"CoRIM expired", corim, nil, expired, ErrExpired, "valid until"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := VerifyOne(ctx, c.data, c.sig, s.Public(), c.o)
			if c.text == "" {
				if err != nil {
					t.Fatalf("got %v, want it verified", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.text) || c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("got %v, want an error (%v) mentioning %q", err, c.want, c.text)
			}
		})
	}
}
