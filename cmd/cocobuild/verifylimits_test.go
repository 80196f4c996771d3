package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/termsafe"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/units"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/feed"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// sparseDoc makes path a sparse file of size bytes.
func sparseDoc(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// signedDocFeed publishes a signed release into a new directory feed and
// returns the feed and the verifier's copy of the key.
func signedDocFeed(t *testing.T, dir string) (feedDir, pub string) {
	t.Helper()
	s, err := sign.Generate(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	m := docsManifest(t, filepath.Join(dir, "build"))
	r, err := publish.NewRelease(m, publish.Options{TEEs: testTEEs, Name: "sample", Version: "1.0.0", Expires: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	docs, err := publish.Sign(t.Context(), r, s, publish.AllFormats, testTEEs)
	if err != nil {
		t.Fatal(err)
	}
	feedDir = filepath.Join(dir, "feed")
	if _, err := publish.PublishDocuments(t.Context(), "dir:"+feedDir, r, s, docs, publish.FeedOptions{}); err != nil {
		t.Fatal(err)
	}
	pub = filepath.Join(dir, "feed.pub")
	if err := os.WriteFile(pub, s.Public().PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return feedDir, pub
}

// docsManifest writes a build output (one kernel file) and its
// manifest.json into out, as a build would, and returns the manifest.
func docsManifest(t *testing.T, out string) *manifest.Manifest {
	t.Helper()
	kernel := []byte("a kernel")
	d := sha256.Sum256(kernel)
	h := func(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }
	m := &manifest.Manifest{
		Cocobuild: "0.1.0-test",
		Recipe:    manifest.Recipe{Name: "sample", SHA256: h("recipe")},
		Epoch:     1700000000,
		Artifacts: []manifest.Artifact{{Name: "kernel.guest", Kind: "kernel", Path: "kernel/guest/vmlinuz", SHA256: hex.EncodeToString(d[:]), Size: int64(len(kernel))}},
		Measurements: []manifest.Measurement{{TEE: "snp", Name: "snp/vcpus=1",
			Params: map[string]any{"vcpus": 1.0, "firmware_sha256": h("fw"), "kernel_sha256": hex.EncodeToString(d[:]),
				"covers": map[string]any{"firmware": true, "kernel": true, "initrd": true, "cmdline": true}},
			Values: map[string]any{"launch_measurement": strings.Repeat("ab", 48)}}},
	}
	p := filepath.Join(out, "kernel", "guest", "vmlinuz")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "manifest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestVerifyHugeDocumentsProcess: verify of a release whose rvps.json is a
// 1 GiB sparse file, of that rvps.json alone, and of a directory feed
// whose index is 258 MB fails (exit 1) in under 2 s and 100 MB, naming
// the document limit and --limit document=; it read 1 GiB and 258 MB
// whole before. The feed's failure writes no verify state.
func TestVerifyHugeDocumentsProcess(t *testing.T) {
	dir := t.TempDir()
	rel, pub := signedRelease(t, dir, "1.0.0")
	sparseDoc(t, filepath.Join(rel, publish.RVPSFile), units.GiB)
	feedDir, feedPub := signedDocFeed(t, filepath.Join(dir, "f"))
	sparseDoc(t, filepath.Join(feedDir, feed.IndexFile), 258_000_000)
	state := filepath.Join(dir, "state")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"a release with a 1 GiB rvps.json", []string{"verify", "--key", pub, rel}, "rvps.json: 1GiB is over the document limit of 64MiB"},
		{"a 1 GiB rvps.json", []string{"verify", "--key", pub, filepath.Join(rel, publish.RVPSFile)}, "rvps.json: 1GiB is over the document limit of 64MiB"},
		{"a feed with a 258 MB index", []string{"verify", "--state", state, "--key", feedPub, "dir:" + feedDir}, "index.json: 258000000 is over the document limit of 64MiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runMeasured(t, c.args...)
			code, out, wall, rss := r.code, r.stdout+r.stderr, r.wall, r.maxRSSMB()
			if code != exitFailure || !strings.Contains(out, c.want) || !strings.Contains(out, "--limit document=") {
				t.Errorf("exit %d, want 1 with %q and --limit document=\n%s", code, c.want, out)
			}
			if !r.fast(2 * time.Second) {
				t.Errorf("took %v (%v CPU), want under 2 s", wall, r.cpu)
			}
			if rss > 100 {
				t.Errorf("peak RSS %d MB, want under 100 MB", rss)
			}
		})
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("verify of a refused feed wrote its state %s (%v), want nothing written", state, err)
	}
}

// TestVerifyLimitFlag: --limit document= is the limit verify reads
// documents within: a release verifies with the default and fails under a
// limit smaller than its documents.
func TestVerifyLimitFlag(t *testing.T) {
	rel, pub := signedRelease(t, t.TempDir(), "1.0.0")
	if code, so, se := runCLI(t, "verify", "--key", pub, rel); code != 0 {
		t.Fatalf("verify within the default limit: exit %d\n%s%s", code, so, se)
	}
	code, so, se := runCLI(t, "verify", "--limit", "document=100", "--key", pub, rel)
	if code != exitFailure || !strings.Contains(se, "is over the document limit of 100") || !strings.Contains(se, "--limit document=") {
		t.Errorf("verify --limit document=100: exit %d, want 1 naming the limit and the flag\n%s%s", code, so, se)
	}
	if code, so, se := runCLI(t, "verify", "--limit", "document=1MiB", "--key", pub, rel); code != 0 {
		t.Errorf("verify --limit document=1MiB: exit %d, want 0\n%s%s", code, so, se)
	}
}

// runCLIDeadline runs the CLI in-process and fails the test if it does not
// return within 2 s (a named pipe opened for reading would block forever).
func runCLIDeadline(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	type result struct {
		code   int
		so, se string
	}
	done := make(chan result, 1)
	go func() {
		c, so, se := runCLI(t, args...)
		done <- result{c, so, se}
	}()
	select {
	case r := <-done:
		return r.code, r.so, r.se
	case <-time.After(2 * time.Second):
		t.Fatalf("%v: still running after 2 s (blocked on a pipe or device?)", args)
	}
	return 0, "", ""
}

// TestVerifyPipesAndDevices: a named pipe or a device where verify expects
// a document fails at once: inside a release (exit 1), beside a lone
// document (its statement linked to /dev/zero: exit 1), and given on the
// command line (exit 2).
func TestVerifyPipesAndDevices(t *testing.T) {
	dir := t.TempDir()
	rel, pub := signedRelease(t, dir, "1.0.0")

	fifoRel, _ := signedRelease(t, filepath.Join(dir, "fifo"), "1.0.0")
	rvps := filepath.Join(fifoRel, publish.RVPSFile)
	if err := os.Remove(rvps); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(rvps, 0o644); err != nil {
		t.Fatal(err)
	}
	zeroRel, _ := signedRelease(t, filepath.Join(dir, "zero"), "1.0.0")
	st := filepath.Join(zeroRel, publish.StatementFile)
	if err := os.Remove(st); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", st); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "doc.fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"rvps.json of a release is a named pipe", []string{"verify", "--key", pub, fifoRel}, exitFailure, "rvps.json: a document of the release is not a regular file (it is a named pipe)"},
		{"the statement of a release links to /dev/zero", []string{"verify", "--key", pub, zeroRel}, exitFailure, "statement.sigstore.json: a document of the release is not a regular file (it is a symbolic link)"},
		{"the statement beside rvps.json links to /dev/zero", []string{"verify", "--key", pub, filepath.Join(zeroRel, publish.RVPSFile)}, exitFailure, st + " is a device, not a regular file"},
		{"--statement /dev/zero", []string{"verify", "--key", pub, "--statement", "/dev/zero", filepath.Join(rel, publish.RVPSFile)}, exitUsage, "/dev/zero is a device, not a regular file"},
		{"--signature a named pipe", []string{"verify", "--key", pub, "--signature", fifo, filepath.Join(rel, publish.RVPSFile)}, exitUsage, fifo + " is a named pipe, not a regular file"},
		{"the target is a named pipe", []string{"verify", "--key", pub, fifo}, exitUsage, fifo + " is a named pipe, not a regular file"},
		{"the target is /dev/zero", []string{"verify", "--key", pub, "/dev/zero"}, exitUsage, "/dev/zero is a device, not a regular file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, so, se := runCLIDeadline(t, c.args...)
			if code != c.code || !strings.Contains(se, c.want) || strings.Contains(so, "verified") {
				t.Errorf("exit %d, want %d with %q\n%s%s", code, c.code, c.want, so, se)
			}
		})
	}
}

// escapingRelease signs a release whose entry name, coverage and assumption
// hold terminal escapes (ESC[2J clears the screen, ESC]0;…BEL sets the
// window title), as a hostile or careless signer could write them.
func escapingRelease(t *testing.T, dir string) (rel, pub string) {
	t.Helper()
	m := docsManifest(t, filepath.Join(dir, "build"))
	m.Measurements[0].Params["covers"] = map[string]any{"firmware": true, "kernel": false, "initrd": false, "cmdline": false}
	r, err := publish.NewRelease(m, publish.Options{TEEs: testTEEs, Name: "sample", Version: "1.0.0",
		Expires: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), AllowPartialCoverage: true})
	if err != nil {
		t.Fatal(err)
	}
	r.Entries[0].Name = "snp/\x1b[2Jvcpus=1"
	r.Entries[0].Params["assumptions"] = []any{"\x1b]0;pwned\x07 firmware measures nothing else"}
	return writeSignedRelease(t, dir, r, []string{publish.FormatInToto})
}

// TestVerifyEscapesDocumentStrings: what a release says (an entry name, an
// assumption) reaches verify's text output escaped, never as raw terminal
// control sequences; --json keeps it exact.
func TestVerifyEscapesDocumentStrings(t *testing.T) {
	rel, pub := escapingRelease(t, t.TempDir())
	code, so, se := runCLI(t, "verify", "--key", pub, rel)
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, so, se)
	}
	if strings.ContainsAny(so+se, "\x1b\x07") {
		t.Errorf("text output holds raw ESC or BEL:\n%q", so+se)
	}
	for _, want := range []string{`snp/\x1b[2Jvcpus=1: covers firmware only`, `assumption: snp/\x1b[2Jvcpus=1: \x1b]0;pwned\x07 firmware measures nothing else`} {
		if !strings.Contains(so, want) {
			t.Errorf("text output lacks %q:\n%s", want, so)
		}
	}
	code, so, se = runCLI(t, "--json", "verify", "--key", pub, rel)
	if code != 0 {
		t.Fatalf("verify --json: exit %d\n%s%s", code, so, se)
	}
	var got struct {
		Release struct {
			Coverage struct {
				Entries []struct {
					Name        string   `json:"name"`
					Assumptions []string `json:"assumptions"`
				} `json:"entries"`
			} `json:"coverage"`
		} `json:"release"`
	}
	if err := json.Unmarshal([]byte(so), &got); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, so)
	}
	if e := got.Release.Coverage.Entries; len(e) != 1 || e[0].Name != "snp/\x1b[2Jvcpus=1" || len(e[0].Assumptions) != 1 || e[0].Assumptions[0] != "\x1b]0;pwned\x07 firmware measures nothing else" {
		t.Errorf("verify --json entries %q, want the name and assumption exact", e)
	}
}

// TestVerifyEscapesFeedErrors: an error that quotes what a feed says (here
// an index that names its release "evil ESC[2J") reaches stderr escaped,
// and the --json result exact.
func TestVerifyEscapesFeedErrors(t *testing.T) {
	dir := t.TempDir()
	m := docsManifest(t, filepath.Join(dir, "build"))
	r, err := publish.NewRelease(m, publish.Options{TEEs: testTEEs, Name: "sample", Version: "1.0.0", Expires: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.Generate(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := publish.Sign(t.Context(), r, s, publish.AllFormats, testTEEs)
	if err != nil {
		t.Fatal(err)
	}
	fr, blobs := publish.FeedRelease(r, s.Public(), docs)
	fr.Name = "evil\x1b[2J"
	feedDir := filepath.Join(dir, "feed")
	if _, _, err := (feed.Dir{Path: feedDir}).Append(t.Context(), fr, blobs, feed.Signing{Signer: s}); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "feed.pub")
	if err := os.WriteFile(pub, s.Public().PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "the index says evil\x1b[2J 1.0.0, the statement sample 1.0.0"
	code, so, se := runCLI(t, "verify", "--state", filepath.Join(dir, "state"), "--key", pub, "dir:"+feedDir)
	if code != exitFailure || strings.ContainsAny(so+se, "\x1b") || !strings.Contains(se, termsafe.Escape(want)) {
		t.Errorf("verify of the feed: exit %d, want 1 with %q escaped, no raw ESC\n%q", code, want, so+se)
	}
	code, so, se = runCLI(t, "--json", "verify", "--state", filepath.Join(dir, "state"), "--key", pub, "dir:"+feedDir)
	var got struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(so), &got); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, so)
	}
	if code != exitFailure || got.OK || !strings.Contains(got.Error, want) || strings.ContainsAny(se, "\x1b") || !strings.Contains(se, termsafe.Escape(want)) {
		t.Errorf("verify --json of the feed: exit %d, error %q; want 1, the error exact in JSON and escaped on stderr\n%q", code, got.Error, se)
	}
}

// TestPublishReadsWithinLimits: publish refuses a manifest that is a named
// pipe (exit 2) or over the document limit (exit 1) at once, and a feed
// whose index is over the limit (exit 1, the index left as it was).
func TestPublishReadsWithinLimits(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	out := filepath.Join(dir, "build")
	docsManifest(t, out)
	fifo := filepath.Join(dir, "manifest.fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big", "manifest.json")
	if err := os.MkdirAll(filepath.Dir(big), 0o755); err != nil {
		t.Fatal(err)
	}
	sparseDoc(t, big, units.GiB)
	feedDir, _ := signedDocFeed(t, filepath.Join(dir, "f"))
	index := filepath.Join(feedDir, feed.IndexFile)
	sparseDoc(t, index, 258_000_000)
	publishArgs := func(manifest string, more ...string) []string {
		return append([]string{"publish", manifest, "--version", "1.0.0", "--expires", "2099-01-01T00:00:00Z", "--key", "dev", "--cache-dir", cache,
			"-o", filepath.Join(dir, "docs")}, more...)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a manifest that is a named pipe", publishArgs(fifo), exitUsage, fifo + " is a named pipe, not a regular file"},
		{"a 1 GiB manifest", publishArgs(big), exitFailure, big + ": 1GiB is over the document limit of 64MiB"},
		{"a feed with a 258 MB index", publishArgs(filepath.Join(out, "manifest.json"), "--to", "dir:"+feedDir), exitFailure, index + ": 258000000 is over the document limit of 64MiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			code, so, se := runCLIDeadline(t, c.args...)
			if code != c.code || !strings.Contains(se, c.want) {
				t.Errorf("exit %d, want %d with %q\n%s%s", code, c.code, c.want, so, se)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v, want under 2 s", d)
			}
		})
	}
	if fi, err := os.Stat(index); err != nil || fi.Size() != 258_000_000 {
		t.Errorf("the refused feed's index changed: %v, %v", fi.Size(), err)
	}
}

// TestVerifyBuildReadsWithinLimits: verify-build refuses, before it
// builds anything, a published release whose statement is a 1 GiB sparse
// file (exit 1, under 2 s and 100 MB, naming the limit and the flag), and
// one that is a link to /dev/zero or a named pipe (exit 1, at once).
func TestVerifyBuildReadsWithinLimits(t *testing.T) {
	dir := t.TempDir()
	fw := testenv.VectorFile(t, "inputs/debian12_OVMF.fd")
	fwBytes, err := os.ReadFile(fw)
	if err != nil {
		t.Fatal(err)
	}
	recipe := filepath.Join(dir, "vb.hcl")
	src := fmt.Sprintf("input \"fw\" {\n  file   = %q\n  sha256 = %q\n}\n\nmeasure \"snp\" {\n  firmware = input.fw\n}\n", fw, hexSHA(fwBytes))
	if err := os.WriteFile(recipe, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, pub := signedRelease(t, dir, "1.0.0")
	big := filepath.Join(dir, "big.sigstore.json")
	sparseDoc(t, big, units.GiB)
	zero := filepath.Join(dir, "zero.sigstore.json")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	fifoRel, _ := signedRelease(t, filepath.Join(dir, "fifo"), "1.0.0")
	st := filepath.Join(fifoRel, publish.StatementFile)
	if err := os.Remove(st); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(st, 0o644); err != nil {
		t.Fatal(err)
	}
	sparseDoc(t, filepath.Join(rel, publish.RVPSFile), units.GiB)
	out := filepath.Join(dir, "rebuilt")
	for _, c := range []struct {
		name, against, want string
	}{
		{"a 1 GiB statement", big, big + ": 1GiB is over the document limit of 64MiB"},
		{"a release with a 1 GiB rvps.json", rel, "rvps.json: 1GiB is over the document limit of 64MiB"},
		{"a statement linked to /dev/zero", zero, zero + " is a device, not a regular file"},
		{"a release whose statement is a named pipe", fifoRel, "statement.sigstore.json: a document of the release is not a regular file (it is a named pipe)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runMeasured(t, "verify-build", "--cache-dir", filepath.Join(dir, "cache"), "-o", out, "--against", c.against, "--key", pub, recipe)
			code, so, wall, rss := r.code, r.stdout+r.stderr, r.wall, r.maxRSSMB()
			if code != exitFailure || !strings.Contains(so, c.want) {
				t.Errorf("exit %d, want 1 with %q\n%s", code, c.want, so)
			}
			if strings.Contains(c.want, "limit") && !strings.Contains(so, "--limit document=") {
				t.Errorf("the error does not name --limit document=:\n%s", so)
			}
			if !r.fast(2*time.Second) || rss > 100 {
				t.Errorf("took %v (%v CPU) and %d MB, want under 2 s and 100 MB", wall, r.cpu, rss)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("verify-build of a refused release built into %s (%v), want nothing built", out, err)
			}
		})
	}
}
