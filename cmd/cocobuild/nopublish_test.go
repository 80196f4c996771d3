package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// keyRecipe is repro's test recipe (a file input and a kernel, in a
// directory every user can read) that also publishes SNP values of its
// firmware with the key in the environment variable keyVar, to the feeds
// of the variable feeds (none by default).
func keyRecipe(t *testing.T, keyVar string) string {
	t.Helper()
	fw := testenv.VectorFile(t, "inputs/debian12_OVMF.fd")
	fwBytes, err := os.ReadFile(fw)
	if err != nil {
		t.Fatal(err)
	}
	return reproRecipe(t, fmt.Sprintf(`
variable "feeds" {
  type        = list(string)
  default     = []
  build_input = false # where to deliver does not decide the build
}

input "fw" {
  file   = %q
  sha256 = %q
}

# The firmware alone: SNP on Debian 12's OVMF vouches for nothing else.
measure "snp" {
  firmware = input.fw
}

publish "np" {
  version = "1.0.0"
  expires = "2099-01-01T00:00:00Z"
  key     = "env://%s"
  to      = var.feeds
  allow_partial_coverage = true
}
`, fw, hexSHA(fwBytes), keyVar))
}

// TestNoPrivateKeyToCheck: a release is built and signed with a key from
// the environment; then, with the key variable unset, build --no-publish,
// verify-build and repro all succeed, and none of them writes the feed the
// command line gives the recipe. A build that publishes fails without the
// key.
func TestNoPrivateKeyToCheck(t *testing.T) {
	const keyVar = "COCOBUILD_TEST_PHASE_KEY"
	s, err := sign.Generate(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := s.EncodePrivateKey([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(pub, s.Public().PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(keyVar, string(pem))
	t.Setenv("COSIGN_PASSWORD", "pw")
	dir := keyRecipe(t, keyVar)
	cache := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	if code, stdout, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", out, dir); code != 0 {
		t.Fatalf("build with the key: exit %d\n%s%s", code, stdout, stderr)
	}
	release := filepath.Join(t.TempDir(), "published")
	if err := os.Rename(filepath.Join(out, "publish", "np"), release); err != nil {
		t.Fatal(err)
	}

	os.Unsetenv(keyVar) // t.Setenv restores it afterwards
	os.Unsetenv("COSIGN_PASSWORD")
	feed := filepath.Join(t.TempDir(), "feed")
	feeds := fmt.Sprintf(`feeds=["dir:%s"]`, feed)
	noFeed := func(what string) {
		t.Helper()
		if _, err := os.Stat(feed); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s wrote the feed %s: %v", what, feed, err)
		}
	}

	code, stdout, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", filepath.Join(t.TempDir(), "out"), "-var", feeds, dir)
	if code != 1 || !strings.Contains(stdout+stderr, keyVar) {
		t.Errorf("build that publishes without the key: exit %d, want 1 and an error naming %s\n%s%s", code, keyVar, stdout, stderr)
	}
	noFeed("a build that failed for want of the key")

	code, stdout, stderr = runCLI(t, "plan", "--no-publish", "--cache-dir", cache, "-var", feeds, dir)
	if code != 0 || !strings.Contains(stdout, "skipped publish.np:post-build") || !strings.Contains(stdout, "1 post-build skipped (--no-publish)") {
		t.Errorf("plan --no-publish: exit %d, want 0 and the publish step listed as skipped\n%s%s", code, stdout, stderr)
	}

	out2 := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr = runCLI(t, "build", "--no-publish", "--json", "--cache-dir", cache, "-o", out2, "-var", feeds, dir)
	if code != 0 {
		t.Errorf("build --no-publish without the key: exit %d\n%s%s", code, stdout, stderr)
	}
	var res struct {
		Steps []struct{ Block, Step, Status string }
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Errorf("build --json: %v\n%s", err, stdout)
	}
	skipped := false
	for _, s := range res.Steps {
		skipped = skipped || s.Block == "publish.np" && s.Step == "post-build" && s.Status == "skipped"
	}
	if !skipped {
		t.Errorf("build --no-publish --json does not list publish.np:post-build as skipped: %+v", res.Steps)
	}
	if _, err := os.Stat(filepath.Join(out2, "publish")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("build --no-publish wrote publish/: %v", err)
	}
	noFeed("build --no-publish")

	code, stdout, stderr = runCLI(t, "verify-build", "--cache-dir", cache, "--against", release, "--key", pub, "-var", feeds, dir)
	if code != 0 {
		t.Errorf("verify-build without the private key: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"statement.sigstore.json: the statement payload equals the rebuild's, byte for byte",
		"rvps.json: the RVPS message equals the rebuild's, byte for byte",
		"corim-snp.cbor: the unsigned CoRIM (its CoMIDs) equals the rebuild's, byte for byte",
		"np 1.0.0 comes from this recipe",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verify-build output lacks %q:\n%s", want, stdout)
		}
	}
	noFeed("verify-build")

	work := t.TempDir()
	a := &app{stdout: new(strings.Builder), stderr: new(strings.Builder), childEnv: []string{"COCOBUILD_TEST_MAIN=1"}}
	code = runApp(t.Context(), a, []string{"repro", "--json", "--cache-dir", cache, "--work-dir", work, "--keep", "-var", feeds, dir})
	if code != 0 {
		t.Errorf("repro without the private key: exit %d\n%s\n%s", code, a.stdout, a.stderr)
	}
	for _, o := range []string{filepath.Join(work, "a", "out"), filepath.Join(work, "b", "elsewhere", "deeper", "out")} {
		if _, err := os.Stat(filepath.Join(o, "manifest.json")); err != nil {
			t.Errorf("repro's build %s: %v", o, err)
		}
		if _, err := os.Stat(filepath.Join(o, "publish")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("repro's build %s has publish/ files: %v", o, err)
		}
	}
	if strings.Contains(a.stdout.(*strings.Builder).String(), "publish/") {
		t.Errorf("repro's report names publish/ files:\n%s", a.stdout)
	}
	noFeed("repro")
}
