package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// signedRelease writes a release signed with a new key into DIR/release,
// and that key's public half (the verifier's copy) to DIR/publisher.pub.
func signedRelease(t *testing.T, dir, version string) (rel, pub string) {
	t.Helper()
	h := func(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }
	m := &manifest.Manifest{
		Cocobuild: "0.1.0-test",
		Recipe:    manifest.Recipe{Name: "sample", SHA256: h("recipe")},
		Epoch:     1700000000,
		Artifacts: []manifest.Artifact{{Name: "kernel.guest", Kind: "kernel", Path: "kernel/guest/vmlinuz", SHA256: h("kernel"), Size: 20}},
		Measurements: []manifest.Measurement{{TEE: "snp", Name: "snp/vcpus=1",
			Params: map[string]any{"vcpus": 1.0, "firmware_sha256": h("fw"), "kernel_sha256": h("kernel"),
				"covers": map[string]any{"firmware": true, "kernel": true, "initrd": true, "cmdline": true}},
			Values: map[string]any{"launch_measurement": strings.Repeat("ab", 48)}}},
	}
	r, err := publish.NewRelease(m, publish.Options{TEEs: testTEEs, Name: "sample", Version: version, Expires: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return writeSignedRelease(t, dir, r, publish.AllFormats)
}

// writeSignedRelease signs r's documents of formats with a new key into
// DIR/release, and writes that key's public half (the verifier's copy) to
// DIR/publisher.pub.
func writeSignedRelease(t *testing.T, dir string, r *publish.Release, formats []string) (rel, pub string) {
	t.Helper()
	s, err := sign.Generate(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := publish.Sign(t.Context(), r, s, formats, testTEEs)
	if err != nil {
		t.Fatal(err)
	}
	rel = filepath.Join(dir, "release")
	if err := os.MkdirAll(rel, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if err := os.WriteFile(filepath.Join(rel, d.Name), d.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pub = filepath.Join(dir, "publisher.pub")
	if err := os.WriteFile(pub, s.Public().PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return rel, pub
}

// TestVerifyReleaseRefusesLinkedDocuments: rvps.json and its signatures
// linked to a tampered copy signed by another key fail verify (exit 1);
// before, verify skipped them and said the release verified on its
// statement alone.
func TestVerifyReleaseRefusesLinkedDocuments(t *testing.T) {
	dir := t.TempDir()
	rel, pub := signedRelease(t, dir, "1.0.0")
	if code, so, se := runCLI(t, "verify", "--key", pub, rel); code != 0 || !strings.Contains(so, "rvps.json: signature") {
		t.Fatalf("verify of the release as signed: exit %d, want 0 with rvps.json checked\n%s%s", code, so, se)
	}
	tampered, _ := signedRelease(t, filepath.Join(dir, "tampered"), "1.0.0")
	for _, n := range []string{publish.RVPSFile, publish.RVPSSigFile, publish.RVPSBundleFile} {
		if err := os.Remove(filepath.Join(rel, n)); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(tampered, n), filepath.Join(rel, n)); err != nil {
			t.Fatal(err)
		}
	}
	code, so, se := runCLI(t, "verify", "--key", pub, rel)
	if code != exitFailure || strings.Contains(so, "verified") || !strings.Contains(se, "rvps.json") || !strings.Contains(se, "symbolic link") {
		t.Errorf("verify of a release whose rvps.json links to a tampered message: exit %d, want %d naming rvps.json, a symbolic link\n%s%s", code, exitFailure, so, se)
	}
}

// TestVerifyReleaseNeedsNoStateDir: a release directory or a document
// verifies with no state directory to be found (env -i: no $HOME); a feed,
// whose versions verify remembers, still needs one and says how to give it.
func TestVerifyReleaseNeedsNoStateDir(t *testing.T) {
	dir := t.TempDir()
	rel, pub := signedRelease(t, dir, "1.0.0")
	t.Setenv(stateEnv, "")
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "")
	for _, target := range []string{rel, filepath.Join(rel, publish.StatementFile), filepath.Join(rel, publish.RVPSFile)} {
		if code, so, se := runCLI(t, "verify", "--key", pub, target); code != 0 || !strings.Contains(so, "verified") {
			t.Errorf("verify %s without $HOME: exit %d, want 0\n%s%s", target, code, so, se)
		}
	}
	feedDir := filepath.Join(dir, "feed")
	if err := os.MkdirAll(feedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, so, se := runCLI(t, "verify", "--key", pub, "dir:"+feedDir); code != exitUsage || !strings.Contains(se, "--state") {
		t.Errorf("verify of a feed without $HOME or --state: exit %d, want %d naming --state\n%s%s", code, exitUsage, so, se)
	}
}

// TestHelpKeyOutOfBand: the help of the commands that take the publisher's
// key never shows the cosign.pub shipped with a release as the key, says to
// bring one's own copy, and serve's says its index expires unless
// re-published and what /healthz checks.
func TestHelpKeyOutOfBand(t *testing.T) {
	cases := []struct {
		cmd  string
		want []string
	}{
		{"verify", []string{"out of band", "sigstore bundle"}},
		{"verify-build", []string{"your copy of the publisher's public key", "out of band"}},
		{"serve", []string{"out of band", "--allow-dev-key", "expires", "publishes again", "/healthz answers 200", "has not expired"}},
	}
	for _, c := range cases {
		code, so, se := runCLI(t, c.cmd, "--help")
		if code != 0 {
			t.Fatalf("%s --help: exit %d\n%s", c.cmd, code, se)
		}
		if strings.Contains(so, "--key cosign.pub") {
			t.Errorf("%s --help: got an example with --key cosign.pub, want the publisher's key obtained out of band", c.cmd)
		}
		for _, w := range c.want {
			if !strings.Contains(so, w) {
				t.Errorf("%s --help: got no %q in\n%s", c.cmd, w, so)
			}
		}
	}
}
