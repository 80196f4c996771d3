package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// vectorValue returns the expected value of a golden vector by id.
func vectorValue(t *testing.T, file, id string) any {
	t.Helper()
	var doc struct {
		Vectors []map[string]any `json:"vectors"`
	}
	if err := json.Unmarshal(testenv.ReadVector(t, file), &doc); err != nil {
		t.Fatal(err)
	}
	for _, v := range doc.Vectors {
		if v["id"] == id {
			return v["expected"]
		}
	}
	t.Fatalf("%s has no vector %s", file, id)
	return nil
}

// publishRecipe writes a recipe measuring Debian 12's OVMF for SNP and TDX
// without a kernel, and publishing the result with the development key to a
// directory feed. Those values vouch for the firmware alone, so the publish
// block refuses them unless allowPartial sets allow_partial_coverage.
func publishRecipe(t *testing.T, dir, feedDir, version string, allowPartial bool) string {
	t.Helper()
	ovmf, err := os.ReadFile(testenv.VectorFile(t, "inputs/debian12_OVMF.fd"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "OVMF.fd"), ovmf, 0o644); err != nil {
		t.Fatal(err)
	}
	recipe := fmt.Sprintf(`recipe {
  name  = "pub"
  epoch = 1700000000
}

input "ovmf" {
  file   = "OVMF.fd"
  sha256 = "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773"
}

measure "snp" {
  firmware = input.ovmf
  vcpus    = [1, 2]
}

measure "tdx" {
  firmware                = input.ovmf
  assume_rtmr_measurement = true # Debian 12's OVMF does not measure into RTMRs
}

publish "pub" {
  version   = %q
  expires   = "2099-01-01T00:00:00Z"
  key       = "dev"
  namespace = "example.org/coco"
  to        = ["dir:%s"]
%s}
`, version, feedDir, map[bool]string{true: "  allow_partial_coverage = true\n"}[allowPartial])
	p := filepath.Join(dir, "pub.hcl")
	if err := os.WriteFile(p, []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPublishBlockEndToEnd(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	out, feedDir := filepath.Join(dir, "out"), filepath.Join(dir, "feed")
	recipe := publishRecipe(t, dir, feedDir, "1.0.0", true)
	code, stdout, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", out, recipe)
	if code != 0 {
		t.Fatalf("build: exit %d\n%s%s", code, stdout, stderr)
	}
	rel := filepath.Join(out, "publish", "pub")
	for _, f := range []string{"rvps.json", "rvps.json.sig", "statement.sigstore.json", "corim-snp.cbor", "corim-tdx.cbor", "cosign.pub"} {
		if !strings.Contains(stdout, filepath.Join(rel, f)) {
			t.Errorf("build output does not list %s:\n%s", f, stdout)
		}
	}
	// The manifest lists the documents as the block's artifacts.
	mb, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mb), `"publish/pub/statement.sigstore.json"`) || !strings.Contains(string(mb), `"development_key": true`) {
		t.Errorf("manifest does not list the published documents:\n%s", mb)
	}
	// The RVPS payload holds what the golden vectors say Debian's OVMF
	// measures to, under Trustee's names.
	msg, err := os.ReadFile(filepath.Join(rel, "rvps.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := publish.DecodeRVPS(msg)
	if err != nil {
		t.Fatal(err)
	}
	snp := fmt.Sprint(p["snp_launch_measurement"])
	for _, id := range []string{"snp-qemu-debOVMF-epycv4-1vcpu-gf1", "snp-qemu-debOVMF-epycv4-2vcpu-gf1"} {
		if want := vectorValue(t, "snp.json", id).(string); !strings.Contains(snp, want) {
			t.Errorf("snp_launch_measurement %s lacks %s (vector %s)", snp, want, id)
		}
	}
	if want := vectorValue(t, "tdx.json", "mrtd-debian12-ovmf-single-pass").(map[string]any)["mrtd"].(string); fmt.Sprint(p["mr_td"]) != "["+want+"]" {
		t.Errorf("mr_td %v, want [%s]", p["mr_td"], want)
	}
	if _, ok := p["rvps:///example.org/coco/snp/launch_measurement:1.0.0"]; !ok {
		t.Errorf("no rvps:/// name in the payload: %v", keys(p))
	}

	// The build's hint verifies with the development key obtained out of
	// band (keygen --dev), with --allow-dev-key, never the cosign.pub
	// shipped inside the release.
	if !strings.Contains(stderr, "cocobuild verify --allow-dev-key --key DEV_PUB "+rel) || strings.Contains(stdout+stderr, "--key "+filepath.Join(rel, "cosign.pub")) {
		t.Errorf("the build's hint does not verify with the development key obtained out of band and --allow-dev-key:\n%s%s", stdout, stderr)
	}
	if code, _, _ := runCLI(t, "keygen", "--dev", "--cache-dir", cache); code != 0 {
		t.Fatal("keygen --dev failed")
	}
	pub := filepath.Join(publish.DevKeyDir(cache), "cosign.pub")
	// Without --allow-dev-key, nothing signed with the development key
	// verifies: the release, the feed, each document on its own.
	for _, target := range []string{rel, "dir:" + feedDir, filepath.Join(rel, "statement.sigstore.json"),
		filepath.Join(rel, "rvps.json"), filepath.Join(rel, "corim-snp.cbor"), filepath.Join(rel, "corim-tdx.cbor")} {
		code, stdout, stderr := runCLI(t, "verify", "--key", pub, target)
		if code != 1 || !strings.Contains(stderr, "--allow-dev-key") || !strings.Contains(stderr, "DEVELOPMENT") || strings.Contains(stdout, "verified") {
			t.Errorf("verify %s signed with the development key, without --allow-dev-key: exit %d, want 1 naming --allow-dev-key\n%s%s", target, code, stdout, stderr)
		}
	}
	verify := func(args ...string) (int, string) {
		code, stdout, stderr := runCLI(t, append([]string{"verify", "--allow-dev-key", "--key", pub}, args...)...)
		return code, stdout + stderr
	}
	// A release that says development_key=false but is signed with the
	// development key: the key decides, so it is refused without
	// --allow-dev-key and reported as a development-key release with it.
	m, err := manifest.Parse(mb)
	if err != nil {
		t.Fatal(err)
	}
	liar, err := publish.NewRelease(m, publish.Options{TEEs: testTEEs, Name: "pub", Version: "1.0.0", Expires: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
		DevelopmentKey: false, AllowPartialCoverage: true})
	if err != nil {
		t.Fatal(err)
	}
	liarDocs, err := publish.Sign(t.Context(), liar, sign.DevSigner(), publish.AllFormats, testTEEs)
	if err != nil {
		t.Fatal(err)
	}
	liarDir := filepath.Join(dir, "liar")
	if err := os.MkdirAll(liarDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range liarDocs {
		if err := os.WriteFile(filepath.Join(liarDir, d.Name), d.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := os.ReadFile(filepath.Join(liarDir, "statement.sigstore.json")); strings.Contains(string(st), "development_key") {
		t.Fatalf("the statement says development_key although it was made with false")
	}
	for _, target := range []string{liarDir, filepath.Join(liarDir, "statement.sigstore.json")} {
		if code, stdout, stderr := runCLI(t, "verify", "--key", pub, target); code != 1 || !strings.Contains(stderr, "--allow-dev-key") {
			t.Errorf("verify %s (development_key=false, signed with the development key): exit %d, want 1 naming --allow-dev-key\n%s%s", target, code, stdout, stderr)
		}
	}
	code, stdout, stderr = runCLI(t, "--json", "verify", "--allow-dev-key", "--key", pub, liarDir)
	var lj struct {
		Release struct {
			DevelopmentKey bool `json:"development_key"`
		} `json:"release"`
	}
	if err := json.Unmarshal([]byte(stdout), &lj); err != nil || code != 0 || !lj.Release.DevelopmentKey {
		t.Errorf("verify --json --allow-dev-key of development_key=false signed with the development key: exit %d, development_key %v (%v), want 0 and true\n%s%s", code, lj.Release.DevelopmentKey, err, stdout, stderr)
	}
	if code, outp := verify("--artifacts", out, rel); code != 0 || !strings.Contains(outp, "DEVELOPMENT") {
		t.Errorf("verify release: exit %d, want 0 and a development-key warning:\n%s", code, outp)
	} else if !regexp.MustCompile(`assumption: tdx/memory=2G[^:]*: firmware input.ovmf has no CC measurement driver \(TdTcg2Dxe.*assume_rtmr_measurement`).MatchString(outp) {
		t.Errorf("verify release does not show the TDX entry's assume_rtmr_measurement assumption:\n%s", outp)
	}
	if code, outp := verify("dir:" + feedDir); code != 0 || !strings.Contains(outp, "pub 1.0.0 (latest)") {
		t.Errorf("verify feed: exit %d\n%s", code, outp)
	}
	if code, outp := verify(filepath.Join(rel, "rvps.json")); code != 0 {
		t.Errorf("verify rvps.json: exit %d\n%s", code, outp)
	}
	if code, outp := verify(filepath.Join(rel, "corim-tdx.cbor")); code != 0 {
		t.Errorf("verify corim-tdx.cbor: exit %d\n%s", code, outp)
	}
	// --min-version and expiry apply to a standalone RVPS message (its
	// expiry from the statement beside it) and CoRIM.
	for _, doc := range []string{"rvps.json", "corim-tdx.cbor"} {
		if code, outp := verify("--min-version", "1.0.1", filepath.Join(rel, doc)); code != 1 || !strings.Contains(outp, "rollback") {
			t.Errorf("verify --min-version 1.0.1 %s: exit %d, want 1 and a rollback error:\n%s", doc, code, outp)
		}
		if code, outp := verify("--at", "2099-01-01T00:00:00Z", filepath.Join(rel, doc)); code != 1 || !strings.Contains(outp, "expired") {
			t.Errorf("verify %s after expiry: exit %d, want 1 and an expiry error:\n%s", doc, code, outp)
		}
	}
	lone := filepath.Join(t.TempDir(), "rvps.json")
	if b, err := os.ReadFile(filepath.Join(rel, "rvps.json")); err != nil || os.WriteFile(lone, b, 0o644) != nil {
		t.Fatal("copying rvps.json failed")
	}
	if code, outp := verify("--signature", filepath.Join(rel, "rvps.json.sig"), lone); code != 1 || !strings.Contains(outp, "no expiry") {
		t.Errorf("verify of rvps.json without its statement: exit %d, want 1 saying it carries no expiry:\n%s", code, outp)
	}
	if code, outp := verify("--signature", filepath.Join(rel, "rvps.json.sig"), "--statement", filepath.Join(rel, "statement.sigstore.json"), lone); code != 0 {
		t.Errorf("verify of rvps.json with --statement: exit %d, want 0:\n%s", code, outp)
	}
	if code, outp := verify("--min-version", "1.0.1", rel); code != 1 || !strings.Contains(outp, "rollback") {
		t.Errorf("verify with a newer minimum version: exit %d, want 1 and a rollback error:\n%s", code, outp)
	}
	if code, outp := verify("--at", "2099-01-01T00:00:00Z", rel); code != 1 || !strings.Contains(outp, "expired") {
		t.Errorf("verify after expiry: exit %d, want 1:\n%s", code, outp)
	}

	// A second build changes nothing: same documents, the feed keeps one release.
	first, _ := os.ReadFile(filepath.Join(rel, "statement.sigstore.json"))
	if code, stdout, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", out, recipe); code != 0 {
		t.Fatalf("second build: exit %d\n%s%s", code, stdout, stderr)
	}
	second, _ := os.ReadFile(filepath.Join(rel, "statement.sigstore.json"))
	if string(first) != string(second) {
		t.Error("the statement differs between two builds of the same recipe")
	}
	// A cold cache elsewhere signs the same bytes: the development key is
	// the same everywhere, and signatures are deterministic.
	out2 := filepath.Join(dir, "out2")
	if code, stdout, stderr := runCLI(t, "build", "--cache-dir", t.TempDir(), "-o", out2, recipe); code != 0 {
		t.Fatalf("cold build: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, f := range []string{"rvps.json", "rvps.json.sig", "statement.sigstore.json", "corim-snp.cbor", "corim-tdx.cbor", "cosign.pub"} {
		a, _ := os.ReadFile(filepath.Join(rel, f))
		b, err := os.ReadFile(filepath.Join(out2, "publish", "pub", f))
		if err != nil || string(a) != string(b) {
			t.Errorf("%s differs after a build with a cold cache (%v)", f, err)
		}
	}

	// Publishing an older version to the feed is a rollback.
	code, stdout, stderr = runCLI(t, "publish", filepath.Join(out, "manifest.json"), "--version", "0.9.0", "--allow-partial-coverage",
		"--expires", "2099-01-01T00:00:00Z", "--key", "dev", "--cache-dir", cache, "--to", "dir:"+feedDir, "-o", filepath.Join(dir, "old"))
	if code != 1 || !strings.Contains(stderr, "not newer") {
		t.Errorf("publishing 0.9.0 after 1.0.0: exit %d, want 1 and a rollback error\n%s%s", code, stdout, stderr)
	}
	// A newer version is appended, and the feed verifies with both.
	code, stdout, stderr = runCLI(t, "publish", filepath.Join(out, "manifest.json"), "--version", "1.1.0", "--allow-partial-coverage",
		"--expires", "2099-01-01T00:00:00Z", "--key", "dev", "--cache-dir", cache, "--to", "dir:"+feedDir, "-o", filepath.Join(dir, "new"))
	if code != 0 {
		t.Fatalf("publish 1.1.0: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, outp := verify("--min-version", "1.1.0", "dir:"+feedDir); code != 0 || !strings.Contains(outp, "2 release(s) verified") {
		t.Errorf("verify feed after 1.1.0: exit %d\n%s", code, outp)
	}
	// A tampered document in the feed is caught.
	ix, _ := os.ReadFile(filepath.Join(feedDir, "index.json"))
	var index struct {
		Signed struct {
			Releases []struct {
				Documents []struct{ Name, Digest string }
			}
		}
	}
	if err := json.Unmarshal(ix, &index); err != nil {
		t.Fatal(err)
	}
	for _, d := range index.Signed.Releases[1].Documents {
		if d.Name == "rvps.json" {
			p := filepath.Join(feedDir, "blobs", "sha256", strings.TrimPrefix(d.Digest, "sha256:"))
			os.Chmod(p, 0o644)
			if err := os.WriteFile(p, []byte(strings.Replace(string(msg), "0.1.0", "0.1.1", 1)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if code, outp := verify("dir:" + feedDir); code != 1 || !strings.Contains(outp, "corrupt") {
		t.Errorf("verify a tampered feed: exit %d, want 1:\n%s", code, outp)
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestKeygenPublishOCIVerify(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "test passphrase")
	if code, stdout, stderr := runCLI(t, "keygen", "--dir", dir, "--algorithm", "ed25519"); code != 0 {
		t.Fatalf("keygen: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, _, stderr := runCLI(t, "keygen", "--dir", dir); code != 1 || !strings.Contains(stderr, "refusing to overwrite") {
		t.Errorf("second keygen: exit %d, want 1 (no overwrite)\n%s", code, stderr)
	}
	priv, err := os.ReadFile(filepath.Join(dir, "cosign.key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_SIGNING_KEY", string(priv))

	// A manifest built without a publish block.
	out, recipe := filepath.Join(dir, "out"), publishRecipe(t, dir, filepath.Join(dir, "unused"), "1.0.0", false)
	src, _ := os.ReadFile(recipe)
	noPublish := string(src[:strings.Index(string(src), "publish ")])
	if err := os.WriteFile(recipe, []byte(noPublish), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", out, recipe); code != 0 {
		t.Fatalf("build: exit %d\n%s%s", code, stdout, stderr)
	}
	srv := httptest.NewServer(ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := "oci://" + strings.TrimPrefix(srv.URL, "http://") + "/coco/pub:2.0.0"
	// The measurements cover Debian 12's OVMF alone: refused, nothing pushed.
	code, stdout, stderr := runCLI(t, "publish", filepath.Join(out, "manifest.json"), "--version", "2.0.0",
		"--expires", "2099-01-01T00:00:00Z", "--key", "env://TEST_SIGNING_KEY", "--to", ref)
	if code != 1 || !strings.Contains(stderr, "snp/vcpus=1,cpu=EPYC-v4,vmm=QEMU,gf=0x1") || !strings.Contains(stderr, "--allow-partial-coverage") {
		t.Fatalf("publish of firmware-only values: exit %d, want 1 naming the entries and --allow-partial-coverage\n%s%s", code, stdout, stderr)
	}
	if code, _, _ := runCLI(t, "verify", "--key", filepath.Join(dir, "cosign.pub"), ref); code == 0 {
		t.Fatal("a refused publish pushed a release")
	}
	code, stdout, stderr = runCLI(t, "publish", filepath.Join(out, "manifest.json"), "--version", "2.0.0",
		"--expires", "2099-01-01T00:00:00Z", "--key", "env://TEST_SIGNING_KEY", "--to", ref, "--allow-partial-coverage")
	if code != 0 {
		t.Fatalf("publish: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "cosign verify-blob --key") {
		t.Errorf("publish does not print the verify commands:\n%s", stdout)
	}
	pub := filepath.Join(dir, "cosign.pub")
	if code, stdout, stderr := runCLI(t, "verify", "--key", pub, ref); code != 0 {
		t.Errorf("verify %s: exit %d\n%s%s", ref, code, stdout, stderr)
	}
	if code, stdout, stderr := runCLI(t, "verify", "--key", pub, filepath.Join(out, "publish", "pub")); code != 0 {
		t.Errorf("verify documents: exit %d\n%s%s", code, stdout, stderr)
	}
	// The development key is another key: nothing verifies with it.
	if code, _, _ := runCLI(t, "keygen", "--dev", "--cache-dir", cache); code != 0 {
		t.Fatal("keygen --dev failed")
	}
	devPub := filepath.Join(publish.DevKeyDir(cache), "cosign.pub")
	if code, _, stderr := runCLI(t, "verify", "--key", devPub, ref); code != 1 || !strings.Contains(stderr, "signature") {
		t.Errorf("verify with the wrong key: exit %d, want 1\n%s", code, stderr)
	}
	// An expiry already past by the wall clock (after the recipe epoch,
	// 2023-11-14) is a usage error; nothing is written or pushed.
	ref2 := strings.TrimSuffix(ref, "2.0.0") + "2.0.1"
	code, stdout, stderr = runCLI(t, "publish", filepath.Join(out, "manifest.json"), "--version", "2.0.1",
		"--expires", "2024-01-01T00:00:00Z", "--key", "env://TEST_SIGNING_KEY", "--to", ref2, "--allow-partial-coverage", "-o", filepath.Join(dir, "expired"))
	if code != 2 || !strings.Contains(stderr, "wall clock") {
		t.Errorf("publish with a past expiry: exit %d, want 2 saying verifiers use the wall clock\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "expired")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("publish with a past expiry wrote documents (%v)", err)
	}
	// A feed of another key (the development key's documents in a dir feed
	// of this key) is refused, naming both keys.
	feedDir := filepath.Join(dir, "feed")
	if code, stdout, stderr := runCLI(t, "publish", filepath.Join(out, "manifest.json"), "--version", "2.0.0",
		"--expires", "2099-01-01T00:00:00Z", "--key", "env://TEST_SIGNING_KEY", "--to", "dir:"+feedDir, "--allow-partial-coverage"); code != 0 {
		t.Fatalf("publish to a dir feed: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "publish", filepath.Join(out, "manifest.json"), "--version", "2.0.1", "--cache-dir", cache,
		"--expires", "2099-01-01T00:00:00Z", "--key", "dev", "--to", "dir:"+feedDir, "--allow-partial-coverage", "-o", filepath.Join(dir, "dev"))
	pubKey, _ := sign.LoadPublicKey(pub, "")
	devKey, _ := sign.LoadPublicKey(devPub, "")
	if code != 1 || pubKey == nil || devKey == nil || !strings.Contains(stderr, pubKey.ID()) || !strings.Contains(stderr, devKey.ID()) {
		t.Errorf("publish to a feed of another key: exit %d, want 1 naming both keys\n%s%s", code, stdout, stderr)
	}
	// A subject that is a link out of the build output is refused.
	m := filepath.Join(out, "measure", "snp", "measurements.json")
	if _, err := os.Stat(m); err != nil {
		t.Fatalf("the build output has no %s to link: %v", m, err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(m); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, m); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "publish", filepath.Join(out, "manifest.json"), "--version", "2.0.2",
		"--expires", "2099-01-01T00:00:00Z", "--key", "env://TEST_SIGNING_KEY", "--allow-partial-coverage", "-o", filepath.Join(dir, "linked"))
	if code != 1 || !strings.Contains(stderr, "measure/snp/measurements.json") || !strings.Contains(stderr, "outside the build output") {
		t.Errorf("publish of a subject linked out of OUT: exit %d, want 1 naming it\n%s%s", code, stdout, stderr)
	}
	// Usage errors exit 2.
	for _, args := range [][]string{
		{"verify", ref},
		{"publish", filepath.Join(out, "manifest.json"), "--version", "2", "--expires", "2099-01-01T00:00:00Z", "--key", "dev"},
		{"publish", filepath.Join(out, "manifest.json"), "--version", "2.0.1", "--expires", "tomorrow", "--key", "dev"},
		{"publish", filepath.Join(out, "manifest.json"), "--version", "2.0.1", "--expires", "2099-01-01T00:00:00Z", "--key", "dev", "--to", "s3://x"},
		{"publish", filepath.Join(out, "manifest.json"), "--version", "2.0.1", "--expires", "2099-01-01T00:00:00Z", "--key", "dev", "--index-ttl", "-1h"},
		{"verify", "--key", pub, "--name", "pub", filepath.Join(out, "publish", "pub", "corim-tdx.cbor")}, // a CoRIM names no release
		{"serve", filepath.Join(dir, "nonexistent")},
		{"keygen", "--algorithm", "rsa"},
	} {
		if code, _, stderr := runCLI(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, stderr)
		}
	}
}

// TestServeProcess runs `cocobuild serve` as a process on a feed published by
// a build, verifies the feed over HTTP and stops the server with SIGTERM.
func TestServeProcess(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	out, feedDir := filepath.Join(dir, "out"), filepath.Join(dir, "feed")
	recipe := publishRecipe(t, dir, feedDir, "3.0.0", true)
	if code, stdout, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", out, recipe); code != 0 {
		t.Fatalf("build: exit %d\n%s%s", code, stdout, stderr)
	}
	cmd := exec.Command(os.Args[0], "serve", "dir:"+feedDir, "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "COCOBUILD_TEST_MAIN=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("serve printed nothing: %v\n%s", err, stderr.String())
	}
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("no URL in %q", line)
	}
	url := strings.Fields(line[i:])[0]
	resp, err := http.Get(url + "healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz: %s", resp.Status)
	}
	// The development key the build wrote into its cache, not the
	// cosign.pub of the release; accepted only with --allow-dev-key.
	pub := filepath.Join(publish.DevKeyDir(cache), "cosign.pub")
	if code, so, se := runCLI(t, "verify", "--key", pub, url); code != 1 || !strings.Contains(se, "--allow-dev-key") {
		t.Errorf("verify %s signed with the development key, without --allow-dev-key: exit %d, want 1 naming --allow-dev-key\n%s%s", url, code, so, se)
	}
	if code, so, se := runCLI(t, "verify", "--allow-dev-key", "--key", pub, url); code != 0 || !strings.Contains(so, "pub 3.0.0 (latest)") {
		t.Errorf("verify --allow-dev-key %s: exit %d\n%s%s", url, code, so, se)
	}
	// The served index is signed, versioned and expires: verify remembers
	// what it saw (--state), binds the series (--name), and rejects a
	// stale index and a server that goes back to an older one.
	state := t.TempDir()
	v1, err := os.ReadFile(filepath.Join(feedDir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	recipe = publishRecipe(t, dir, feedDir, "3.1.0", true)
	if code, stdout, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", filepath.Join(dir, "out2"), recipe); code != 0 {
		t.Fatalf("build 3.1.0: exit %d\n%s%s", code, stdout, stderr)
	}
	verify := func(args ...string) (int, string) {
		code, so, se := runCLI(t, append([]string{"verify", "--allow-dev-key", "--key", pub, "--state", state}, append(args, url)...)...)
		return code, so + se
	}
	if code, outp := verify("--name", "pub"); code != 0 || !strings.Contains(outp, "index version 2") || !strings.Contains(outp, "pub 3.1.0 (latest)") {
		t.Errorf("verify --name pub of the feed at index version 2: exit %d\n%s", code, outp)
	}
	if b, err := os.ReadFile(filepath.Join(state, "feeds.json")); err != nil || !strings.Contains(string(b), strings.TrimSuffix(url, "/")) || !strings.Contains(string(b), `"index_version": 2`) {
		t.Errorf("the state remembers no index version 2 of %s (%v):\n%s", url, err, b)
	}
	if code, outp := verify("--name", "other"); code != 1 || !strings.Contains(outp, "not only other") {
		t.Errorf("verify --name other of the feed of pub: exit %d, want 1\n%s", code, outp)
	}
	stale := time.Now().Add(8 * 24 * time.Hour).UTC().Format(time.RFC3339)
	if code, outp := verify("--at", stale); code != 1 || !strings.Contains(outp, "frozen or stale") {
		t.Errorf("verify --at %s, after the index expired: exit %d, want 1 saying the feed is frozen or stale\n%s", stale, code, outp)
	}
	if err := os.WriteFile(filepath.Join(feedDir, "index.json"), v1, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, outp := verify(); code != 1 || !strings.Contains(outp, "rollback") || !strings.Contains(outp, "index version 1, older than version 2") {
		t.Errorf("verify after the server went back to index version 1: exit %d, want 1 and a rollback naming both versions\n%s", code, outp)
	}
	// The re-executed test binary has no signal handling (the real main
	// turns SIGTERM into a graceful shutdown, which feed's
	// TestServeShutsDownWithContext covers): stop it and check it goes.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}

// TestPublishBlockRefusesPastExpiry: a publish block whose expires is after
// the recipe epoch but already past by the wall clock fails the build as a
// recipe error at its expires attribute, and appends nothing to the feed.
func TestPublishBlockRefusesPastExpiry(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	out, feedDir := filepath.Join(dir, "out"), filepath.Join(dir, "feed")
	recipe := publishRecipe(t, dir, feedDir, "1.0.0", true)
	src, err := os.ReadFile(recipe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(recipe, []byte(strings.Replace(string(src), "2099-01-01T00:00:00Z", "2024-01-01T00:00:00Z", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", out, recipe)
	if code != 2 || !strings.Contains(stderr, "pub.hcl:") || !strings.Contains(stderr, "expires") || !strings.Contains(stderr, "wall clock") {
		t.Errorf("build: exit %d, want 2 pointing at expires and saying verifiers use the wall clock\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(feedDir, "index.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the feed was written (%v)", err)
	}
}

// TestPublishWritesDocumentsBeforeFeeds: publish writes --out before it
// appends to any feed, so that a failing --out leaves the feeds as they
// were; a feed that fails after says the documents are written and that
// re-running is safe, and re-running publishes the same release.
func TestPublishWritesDocumentsBeforeFeeds(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	out, recipe := filepath.Join(dir, "out"), publishRecipe(t, dir, filepath.Join(dir, "unused"), "1.0.0", false)
	src, _ := os.ReadFile(recipe)
	if err := os.WriteFile(recipe, src[:strings.Index(string(src), "publish ")], 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", out, recipe); code != 0 {
		t.Fatalf("build: exit %d\n%s%s", code, stdout, stderr)
	}
	publishTo := func(docs, feed string) (int, string, string) {
		return runCLI(t, "publish", filepath.Join(out, "manifest.json"), "--version", "1.0.0", "--expires", "2099-01-01T00:00:00Z",
			"--key", "dev", "--cache-dir", cache, "--allow-partial-coverage", "-o", docs, "--to", "dir:"+feed)
	}
	feed := filepath.Join(dir, "feed")
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := publishTo(filepath.Join(notDir, "docs"), feed)
	if code != 1 || !strings.Contains(stderr, "no feed was touched") {
		t.Errorf("publish with an --out that cannot be written: exit %d, want 1 saying no feed was touched\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(feed); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the feed was written although --out failed: %v", err)
	}
	docs := filepath.Join(dir, "docs")
	code, stdout, stderr = publishTo(docs, notDir)
	if code != 1 || !strings.Contains(stderr, "documents are written into "+docs) || !strings.Contains(stderr, "re-running this publish is safe") {
		t.Errorf("publish to a feed that fails: exit %d, want 1 saying the documents are written and re-running is safe\n%s%s", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(docs, publish.StatementFile)); err != nil {
		t.Errorf("the documents were not written before the feed failed: %v", err)
	}
	for i := 0; i < 2; i++ {
		if code, stdout, stderr := publishTo(docs, feed); code != 0 {
			t.Fatalf("re-running publish (%d): exit %d\n%s%s", i, code, stdout, stderr)
		}
	}
}
