package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/feed"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// runTool runs a client and returns its exit status and output.
func runTool(t *testing.T, dir, bin string, args ...string) (bool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	// No transparency log or TUF root is fetched: everything is offline.
	cmd.Env = append(os.Environ(), "HOME="+dir, "TUF_ROOT="+filepath.Join(dir, ".sigstore"))
	out, err := cmd.CombinedOutput()
	return err == nil, string(out)
}

// flipped copies a file with one byte changed (at offset i from the end
// when i < 0) into dir and returns the copy's path.
func flipped(t *testing.T, src, dir string, i int) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 1
	p := filepath.Join(dir, "flipped-"+filepath.Base(src))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCosignOrasVerifyPublished publishes, with the CLI, a release of a
// build whose publish block already made one, to Debian's docker-registry
// with the disk image (pushed with oras) as subject, and checks it with the
// real clients: every cosign command publish prints passes as printed,
// cosign verify-attestation finds the statement on the disk's reference,
// oras discovers and pulls it; a flipped byte in rvps.json, in a bundle, in
// the statement or in the registry's copy, and another key, are rejected by
// the same commands.
//
// Both key types cocobuild makes are checked: cosign takes either.
func TestCosignOrasVerifyPublished(t *testing.T) {
	for _, alg := range []sign.Algorithm{sign.ECDSAP256, sign.Ed25519} {
		t.Run(string(alg), func(t *testing.T) { checkCosignOras(t, alg) })
	}
}

func checkCosignOras(t *testing.T, alg sign.Algorithm) {
	cosign, oras := testenv.GoTool(t, "cosign"), testenv.GoTool(t, "oras")
	addr := testenv.DockerRegistry(t)
	dir, cache := t.TempDir(), t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "test passphrase")
	if code, stdout, stderr := runCLI(t, "keygen", "--dir", dir, "--algorithm", string(alg)); code != 0 {
		t.Fatalf("keygen: exit %d\n%s%s", code, stdout, stderr)
	}
	other := filepath.Join(dir, "other")
	if code, stdout, stderr := runCLI(t, "keygen", "--dir", other); code != 0 {
		t.Fatalf("keygen: exit %d\n%s%s", code, stdout, stderr)
	}
	priv, err := os.ReadFile(filepath.Join(dir, "cosign.key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_SIGNING_KEY", string(priv))
	pub, otherPub := filepath.Join(dir, "cosign.pub"), filepath.Join(other, "cosign.pub")

	// A build whose publish block signed a release into OUT/publish/pub:
	// its manifest lists those documents.
	out := filepath.Join(dir, "out")
	recipe := publishRecipe(t, dir, filepath.Join(dir, "feed"), "1.0.0", true)
	if code, stdout, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", out, recipe); code != 0 {
		t.Fatalf("build: exit %d\n%s%s", code, stdout, stderr)
	}
	// The disk image, pushed with oras.
	if err := os.WriteFile(filepath.Join(dir, "disk.qcow2"), []byte("not really a qcow2"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := addr + "/coco/pub"
	if ok, o := runTool(t, dir, oras, "push", "--plain-http", repo+":disk", "disk.qcow2:application/vnd.cocobuild.disk.v1"); !ok {
		t.Fatalf("oras push: %s", o)
	}
	ok, diskDigest := runTool(t, dir, oras, "resolve", "--plain-http", repo+":disk")
	diskDigest = strings.TrimSpace(diskDigest)
	if !ok || !strings.HasPrefix(diskDigest, "sha256:") {
		t.Fatalf("oras resolve: %s", diskDigest)
	}
	diskRef := repo + "@" + diskDigest

	rel := filepath.Join(dir, "rel")
	code, stdout, stderr := runCLI(t, "--json", "publish", filepath.Join(out, "manifest.json"), "--version", "2.0.0",
		"--expires", "2099-01-01T00:00:00Z", "--key", "env://TEST_SIGNING_KEY", "--to", "oci://"+repo+":2.0.0",
		"--subject", "disk", "--allow-partial-coverage", "-o", rel)
	if code != 0 {
		t.Fatalf("publish: exit %d\n%s%s", code, stdout, stderr)
	}
	var res struct{ Verify []string }
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("publish --json: %v\n%s", err, stdout)
	}

	// The statement names the build's artifacts and the disk's manifest,
	// not the documents of the earlier release.
	key, err := sign.LoadPublicKey(pub, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.ReadFile(filepath.Join(rel, publish.StatementFile))
	if err != nil {
		t.Fatal(err)
	}
	r, err := publish.VerifyStatement(context.Background(), st, key)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range r.Subjects {
		names = append(names, s.Name)
		if strings.HasPrefix(s.Name, "publish/") || s.Kind == publish.ArtifactKindReferenceValues {
			t.Errorf("the statement names %s (%s), a document of the earlier release", s.Name, s.Kind)
		}
	}
	if !slices.Contains(names, diskRef) {
		t.Errorf("the statement's subjects %q do not name the disk's manifest %s", names, diskRef)
	}

	// cosign finds the statement on the disk's reference, as an attestation
	// of the disk's manifest digest.
	if ok, o := runTool(t, dir, cosign, "verify-attestation", "--key", pub, "--type", publish.PredicateType, "--insecure-ignore-tlog", diskRef); !ok {
		t.Errorf("cosign verify-attestation --type %s %s: rejected\n%s", publish.PredicateType, diskRef, o)
	}

	// Every cosign command publish prints passes, as printed.
	var cosignCmds [][]string
	for _, v := range res.Verify {
		f := strings.Fields(v)
		if f[0] != "cosign" {
			continue
		}
		for i := range f {
			if f[i] == "PUB" {
				f[i] = pub
			}
		}
		if slices.Contains(f, "--signature") {
			t.Errorf("%q uses --signature, deprecated in cosign v3: want --bundle", v)
		}
		if (f[1] == "verify-attestation" || f[1] == "verify-blob-attestation") && !strings.Contains(v, "--type "+publish.PredicateType) {
			t.Errorf("%q does not name --type %s", v, publish.PredicateType)
		}
		cosignCmds = append(cosignCmds, f[1:])
	}
	var subcommands []string
	for _, c := range cosignCmds {
		subcommands = append(subcommands, c[0])
		if ok, o := runTool(t, dir, cosign, c...); !ok {
			t.Errorf("cosign %s: rejected\n%s", strings.Join(c, " "), o)
		}
	}
	if want := []string{"verify-blob", "verify-blob-attestation", "verify-attestation"}; !slices.Equal(subcommands, want) {
		t.Fatalf("publish prints cosign %q, want %q", subcommands, want)
	}
	blob, blobAtt, att := cosignCmds[0], cosignCmds[1], cosignCmds[2]
	// Older clients still take the detached signature (deprecated in v3).
	rvps := filepath.Join(rel, publish.RVPSFile)
	if ok, o := runTool(t, dir, cosign, "verify-blob", "--key", pub, "--signature", filepath.Join(rel, publish.RVPSSigFile), "--insecure-ignore-tlog", rvps); !ok {
		t.Errorf("cosign verify-blob --signature rvps.json.sig: rejected\n%s", o)
	}
	// cocobuild verify takes the release from the feed and the documents,
	// whose statement names the disk's manifest, with --artifacts too.
	if code, stdout, stderr := runCLI(t, "verify", "--key", pub, "oci://"+repo+":2.0.0"); code != 0 {
		t.Errorf("cocobuild verify oci://%s:2.0.0: exit %d\n%s%s", repo, code, stdout, stderr)
	}
	if code, stdout, stderr := runCLI(t, "verify", "--key", pub, "--artifacts", out, rel); code != 0 {
		t.Errorf("cocobuild verify --artifacts %s %s: exit %d\n%s%s", out, rel, code, stdout, stderr)
	}
	// verify-build, with no private key, rebuilds and compares the
	// unsigned statement, whose disk subject a rebuild cannot know: it is
	// taken as published, and said so.
	t.Setenv("TEST_SIGNING_KEY", "")
	code, stdout, stderr = runCLI(t, "verify-build", "--cache-dir", cache, "--against", rel, "--key", pub, "-o", filepath.Join(dir, "rebuilt"), recipe)
	if code != 0 {
		t.Errorf("verify-build --against %s: exit %d\n%s%s", rel, code, stdout, stderr)
	} else if !strings.Contains(stdout, "the statement payload equals the rebuild's") || !strings.Contains(stdout, diskRef+": the pushed disk's OCI manifest, taken as published") {
		t.Errorf("verify-build does not say it compared the statement with the disk subject taken as published:\n%s", stdout)
	}
	// cosign finds the statement only with --type.
	if ok, o := runTool(t, dir, cosign, "verify-attestation", "--key", pub, "--insecure-ignore-tlog", diskRef); ok {
		t.Errorf("cosign verify-attestation without --type passed: the hints need not name it?\n%s", o)
	}

	// Tampering: the same commands with one thing changed.
	replace := func(c []string, old, new string) []string {
		c = slices.Clone(c)
		i := slices.Index(c, old)
		if i < 0 {
			t.Fatalf("%q has no %s", c, old)
		}
		c[i] = new
		return c
	}
	tdir := t.TempDir()
	artifact := blobAtt[len(blobAtt)-1]
	stBundle := filepath.Join(rel, publish.StatementFile)
	rvpsBundle := filepath.Join(rel, publish.RVPSBundleFile)
	tampered := []struct {
		name string
		args []string
	}{
		{"rvps.json with a flipped byte", replace(blob, rvps, flipped(t, rvps, tdir, -3))},
		{"rvps.json's bundle with a flipped signature byte", replace(blob, rvpsBundle, flipBundleSignature(t, rvpsBundle, tdir, "messageSignature"))},
		{"rvps.json with another key", replace(blob, pub, otherPub)},
		{"the statement's bundle with a flipped signature byte", replace(blobAtt, stBundle, flipBundleSignature(t, stBundle, tdir, "dsseEnvelope"))},
		{"the statement's artifact with a flipped byte", replace(blobAtt, artifact, flipped(t, artifact, tdir, 0))},
		{"the statement with another key", replace(blobAtt, pub, otherPub)},
		{"the disk's attestation with another key", replace(att, pub, otherPub)},
	}
	// A registry's copy of the disk whose attestation has a flipped byte:
	// the same disk manifest (oras cp) in another repository, referred to
	// by the statement bundle with a signature byte flipped.
	bad := addr + "/coco/tampered"
	if ok, o := runTool(t, dir, oras, "cp", "--from-plain-http", "--to-plain-http", repo+":disk", bad+":disk"); !ok {
		t.Fatalf("oras cp: %s", o)
	}
	badOCI, err := feed.OpenOCI("oci://" + bad)
	if err != nil {
		t.Fatal(err)
	}
	badBundle, err := os.ReadFile(flipBundleSignature(t, stBundle, t.TempDir(), "dsseEnvelope"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := badOCI.PushAttestation(context.Background(), "disk", publish.StatementFile, badBundle, publish.PredicateType, r.Issued); err != nil {
		t.Fatal(err)
	}
	tampered = append(tampered, struct {
		name string
		args []string
	}{"the disk's attestation with a flipped signature byte in the registry", replace(att, diskRef, bad+"@"+diskDigest)})
	for _, c := range tampered {
		if ok, o := runTool(t, dir, cosign, c.args...); ok {
			t.Errorf("%s: cosign %s passed\n%s", c.name, strings.Join(c.args, " "), o)
		}
	}

	// oras discovers the attestation beside the release and pulls it.
	ok, o := runTool(t, dir, oras, "discover", "--plain-http", "--format", "json", repo+":disk")
	if !ok {
		t.Fatalf("oras discover: %s", o)
	}
	var disc struct {
		Referrers []struct {
			Digest       string            `json:"digest"`
			ArtifactType string            `json:"artifactType"`
			Annotations  map[string]string `json:"annotations"`
		} `json:"referrers"`
	}
	if err := json.Unmarshal([]byte(o), &disc); err != nil {
		t.Fatalf("oras discover output: %v\n%s", err, o)
	}
	var types []string
	attDigest := ""
	for _, rf := range disc.Referrers {
		types = append(types, rf.ArtifactType)
		if rf.ArtifactType == feed.SigstoreBundleMediaType {
			attDigest = rf.Digest
			if got := rf.Annotations[feed.AnnotationBundlePredicateType]; got != publish.PredicateType {
				t.Errorf("the attestation's %s is %q, want %q", feed.AnnotationBundlePredicateType, got, publish.PredicateType)
			}
		}
	}
	slices.Sort(types)
	if want := []string{publish.ArtifactType, feed.SigstoreBundleMediaType}; !slices.Equal(types, want) {
		t.Errorf("oras discover lists referrers of types %q, want %q", types, want)
	}
	if attDigest == "" {
		t.Fatalf("oras discover finds no attestation of the disk:\n%s", o)
	}
	pulled := t.TempDir()
	if ok, o := runTool(t, dir, oras, "pull", "--plain-http", "-o", pulled, repo+"@"+attDigest); !ok {
		t.Fatalf("oras pull: %s", o)
	}
	got, err := os.ReadFile(filepath.Join(pulled, publish.StatementFile))
	if err != nil || !bytes.Equal(got, st) {
		t.Errorf("oras pull of the attestation: %v; the bundle is the statement published: %v", err, bytes.Equal(got, st))
	}
}

// flipBundleSignature copies a sigstore bundle into dir with one bit of its
// signature flipped (content: messageSignature or dsseEnvelope).
func flipBundleSignature(t *testing.T, src, dir, content string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	c, ok := m[content].(map[string]any)
	if !ok {
		t.Fatalf("%s has no %s", src, content)
	}
	sig := &c
	var field string
	if content == "dsseEnvelope" {
		s := c["signatures"].([]any)[0].(map[string]any)
		sig, field = &s, "sig"
	} else {
		field = "signature"
	}
	// Flip a bit in the middle of the base64 text: another valid base64
	// character, another signature.
	v := []byte((*sig)[field].(string))
	i := len(v) / 2
	if v[i] == 'A' {
		v[i] = 'B'
	} else {
		v[i] = 'A'
	}
	(*sig)[field] = string(v)
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, content+"-"+filepath.Base(src))
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPublishDoesNotSignEarlierRelease publishes, with the CLI, the manifest
// of a build whose publish block already made a release: the documents of
// that release (kind reference-values, below publish/) are not subjects of
// the new statement, and the cosign commands printed use --bundle and
// --type.
func TestPublishDoesNotSignEarlierRelease(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	out := filepath.Join(dir, "out")
	recipe := publishRecipe(t, dir, filepath.Join(dir, "feed"), "1.0.0", true)
	if code, stdout, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", out, recipe); code != 0 {
		t.Fatalf("build: exit %d\n%s%s", code, stdout, stderr)
	}
	mb, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mb), `"publish/pub/rvps.json"`) {
		t.Fatalf("the manifest lists no document of the publish block's release:\n%s", mb)
	}
	rel := filepath.Join(dir, "rel")
	code, stdout, stderr := runCLI(t, "--json", "publish", filepath.Join(out, "manifest.json"), "--version", "2.0.0", "--cache-dir", cache,
		"--expires", "2099-01-01T00:00:00Z", "--key", "dev", "--allow-partial-coverage", "-o", rel)
	if code != 0 {
		t.Fatalf("publish: exit %d\n%s%s", code, stdout, stderr)
	}
	var res struct{ Verify []string }
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("publish --json: %v\n%s", err, stdout)
	}
	st, err := os.ReadFile(filepath.Join(rel, publish.StatementFile))
	if err != nil {
		t.Fatal(err)
	}
	r, err := publish.VerifyStatement(context.Background(), st, sign.DevSigner().Public())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range r.Subjects {
		names = append(names, s.Name)
	}
	if len(names) == 0 || slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "publish/") }) {
		t.Errorf("the statement's subjects %q: want the build's artifacts, none of publish/", names)
	}
	var cosignCmds []string
	for _, v := range res.Verify {
		if strings.HasPrefix(v, "cosign ") {
			cosignCmds = append(cosignCmds, v)
		}
	}
	want := []string{
		"cosign verify-blob --key " + filepath.Join(publish.DevKeyDir(cache), "cosign.pub") + " --bundle " + filepath.Join(rel, publish.RVPSBundleFile) + " --insecure-ignore-tlog " + filepath.Join(rel, publish.RVPSFile),
		"cosign verify-blob-attestation --key " + filepath.Join(publish.DevKeyDir(cache), "cosign.pub") + " --type " + publish.PredicateType + " --bundle " + filepath.Join(rel, publish.StatementFile) + " --insecure-ignore-tlog " + filepath.Join(out, filepath.FromSlash(r.Subjects[0].Name)),
	}
	if !slices.Equal(cosignCmds, want) {
		t.Errorf("publish prints\n%q\nwant\n%q", cosignCmds, want)
	}
}

// cosignCommands returns the cosign commands a hint names ("cosign
// verify-..." up to ";" or " (") as argument lists, with the placeholders
// replaced.
func cosignCommands(hint string, repl *strings.Replacer) [][]string {
	var out [][]string
	for _, m := range regexp.MustCompile(`cosign (verify-[a-z-]+[^;(]*)`).FindAllStringSubmatch(hint, -1) {
		out = append(out, strings.Fields(repl.Replace(m[1])))
	}
	return out
}

// TestSampleReleaseCosign builds the sample (from the shared cache) and
// runs the cosign commands its build hint prints on its release, as printed
// with the placeholders filled in; then publishes the sample's release to
// Debian's docker-registry with its qcow2 disk (pushed with oras) as
// subject, and checks the disk's attestation with cosign verify-attestation.
// A flipped byte in rvps.json and another key are rejected.
func TestSampleReleaseCosign(t *testing.T) {
	cosign, oras := testenv.GoTool(t, "cosign"), testenv.GoTool(t, "oras")
	testenv.Tool(t, "apt-get", "apt")
	qemu := testenv.TDXQEMU(t)
	cache := testenv.SharedCache(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runCLI(t, "build", "--json", "--cache-dir", cache, "-o", out, "-var", "acpi_qemu="+qemu, sampleRecipe)
	if code != 0 {
		t.Fatalf("build: exit %d\n%s", code, stderr)
	}
	var res struct{ Notes []string }
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	hint := ""
	for _, n := range res.Notes {
		if strings.Contains(n, "verify: ") {
			hint = n
		}
	}
	if code, _, stderr := runCLI(t, "keygen", "--dev", "--cache-dir", cache); code != 0 {
		t.Fatalf("keygen --dev: %s", stderr)
	}
	devPub := filepath.Join(publish.DevKeyDir(cache), "cosign.pub")
	disk := filepath.Join(out, "disk", "guest", "disk.qcow2")
	// cosign reads blobs of at most 128 MiB unless told otherwise: the
	// hint for a larger disk sets COSIGN_MAX_ATTACHMENT_SIZE, as a user
	// runs it.
	if fi, err := os.Stat(disk); err != nil {
		t.Fatal(err)
	} else if fi.Size() > 128<<20 {
		m := regexp.MustCompile(`COSIGN_MAX_ATTACHMENT_SIZE=(\S+) cosign verify-blob-attestation`).FindStringSubmatch(hint)
		if m == nil {
			t.Fatalf("the disk is %d bytes, over cosign's 128 MiB, and the hint does not raise COSIGN_MAX_ATTACHMENT_SIZE:\n%s", fi.Size(), hint)
		}
		t.Setenv("COSIGN_MAX_ATTACHMENT_SIZE", m[1])
	}
	cmds := cosignCommands(hint, strings.NewReplacer("DEV_PUB", devPub, "OUT/", out+"/"))
	var subcommands []string
	for _, c := range cmds {
		subcommands = append(subcommands, c[0])
		if ok, o := runTool(t, dir, cosign, c...); !ok {
			t.Errorf("cosign %s (from the build's hint): rejected\n%s", strings.Join(c, " "), o)
		}
	}
	if want := []string{"verify-blob", "verify-blob-attestation"}; !slices.Equal(subcommands, want) {
		t.Fatalf("the build's hint names cosign %q, want %q:\n%s", subcommands, want, hint)
	}
	rel := filepath.Join(out, "publish", "sample")
	otherDir := filepath.Join(dir, "other")
	t.Setenv("COSIGN_PASSWORD", "test passphrase")
	if code, _, stderr := runCLI(t, "keygen", "--dir", otherDir); code != 0 {
		t.Fatalf("keygen: %s", stderr)
	}
	for _, c := range [][]string{
		{"verify-blob", "--key", devPub, "--bundle", filepath.Join(rel, publish.RVPSBundleFile), "--insecure-ignore-tlog", flipped(t, filepath.Join(rel, publish.RVPSFile), dir, -3)},
		{"verify-blob", "--key", filepath.Join(otherDir, "cosign.pub"), "--bundle", filepath.Join(rel, publish.RVPSBundleFile), "--insecure-ignore-tlog", filepath.Join(rel, publish.RVPSFile)},
		{"verify-blob-attestation", "--key", devPub, "--type", publish.PredicateType, "--bundle", filepath.Join(rel, publish.StatementFile), "--insecure-ignore-tlog", flipped(t, disk, dir, 0)},
	} {
		if ok, o := runTool(t, dir, cosign, c...); ok {
			t.Errorf("cosign %s passed\n%s", strings.Join(c, " "), o)
		}
	}

	// The sample's release on an OCI feed, referring to its disk image.
	repo := testenv.DockerRegistry(t) + "/coco/sample"
	if ok, o := runTool(t, filepath.Dir(disk), oras, "push", "--plain-http", repo+":disk", "disk.qcow2:application/vnd.cocobuild.disk.v1"); !ok {
		t.Fatalf("oras push: %s", o)
	}
	code, stdout, stderr = runCLI(t, "--json", "publish", filepath.Join(out, "manifest.json"), "--version", "0.2.0", "--cache-dir", cache,
		"--expires", "2099-01-01T00:00:00Z", "--key", "dev", "--to", "oci://"+repo, "--subject", "disk", "-o", filepath.Join(dir, "rel"))
	if code != 0 {
		t.Fatalf("publish: exit %d\n%s%s", code, stdout, stderr)
	}
	var pub struct{ Verify []string }
	if err := json.Unmarshal([]byte(stdout), &pub); err != nil {
		t.Fatal(err)
	}
	att := 0
	for _, v := range pub.Verify {
		f := strings.Fields(v)
		if len(f) < 2 || f[0] != "cosign" || f[1] != "verify-attestation" {
			continue
		}
		att++
		if ok, o := runTool(t, dir, cosign, f[1:]...); !ok {
			t.Errorf("%s: rejected\n%s", v, o)
		}
		other := slices.Clone(f[1:])
		other[slices.Index(other, "--key")+1] = filepath.Join(otherDir, "cosign.pub")
		if ok, o := runTool(t, dir, cosign, other...); ok {
			t.Errorf("cosign %s passed\n%s", strings.Join(other, " "), o)
		}
	}
	if att != 1 {
		t.Errorf("publish prints %d cosign verify-attestation commands, want 1: %q", att, pub.Verify)
	}
}
