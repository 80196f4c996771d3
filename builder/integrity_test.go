package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/sign"
	"github.com/cocobuild/cocobuild/recipes"
)

// signedRecipe writes a recipe whose kernel (a prebuilt image, copied into
// its step's cache entry) is measured for TDX and published with the
// development key to the feed dir:FEED (feed "" for none). The TDX memory
// size is a variable, so that the measure step can be made to run again
// while the kernel step stays cached. key replaces the development key.
func signedRecipe(t testing.TB, feed, key string, extra string) string {
	t.Helper()
	fw := testenv.ReadVector(t, "inputs/debian12_OVMF.fd")
	k := testenv.ReadVector(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64")
	dir := t.TempDir()
	for name, b := range map[string][]byte{"ovmf.fd": fw, "vmlinuz": k} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	to := ""
	if feed != "" {
		to = fmt.Sprintf("to = [%q]", "dir:"+feed)
	}
	if key == "" {
		key = "dev"
	}
	src := fmt.Sprintf(`
recipe {
  name = "tamper"
}

variable "memory" {
  default = "2G"
}

input "fw" {
  file   = "ovmf.fd"
  sha256 = %q
}

input "k" {
  file   = "vmlinuz"
  sha256 = %q
}

kernel "guest" {
  image   = input.k
  cmdline = ["console=ttyS0"]
}

measure "tdx" {
  firmware = input.fw
  kernel   = kernel.guest
  memory   = [var.memory]
  # Debian 12's OVMF does not measure into RTMRs.
  assume_rtmr_measurement = true
}

publish "t" {
  version = "1.0.0"
  expires = "2099-01-01T00:00:00Z"
  key     = %q
  %s
  allow_partial_coverage = true
}
%s`, testenv.SHA256Hex(fw), testenv.SHA256Hex(k), key, to, extra)
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stepFile is the cached file of a step, as a build's report names it.
func stepFile(t *testing.T, c *Cache, rep *Report, block, step, file string) string {
	t.Helper()
	for _, s := range rep.Steps {
		if s.Block == block && s.Step == step && s.Key != "" {
			return filepath.Join(c.stepDir(s.Key), "files", filepath.FromSlash(file))
		}
	}
	t.Fatalf("the report has no step %s:%s: %+v", block, step, rep.Steps)
	return ""
}

func loadVars(t *testing.T, dir, cache string, vars map[string]string, kinds ...recipes.Kind) *Loaded {
	t.Helper()
	return load(t, dir, cache, testOptions{LoadOptions: recipes.LoadOptions{Vars: vars}, ExtraKinds: kinds})
}

// verifyOut verifies the release a build signed into out against the
// files of out, with the development key.
func verifyOut(t *testing.T, out string) *publish.Verified {
	t.Helper()
	docs, err := publish.ReadDocuments(filepath.Join(out, "publish", "t"), testTEEs)
	if err != nil {
		t.Fatal(err)
	}
	v, err := publish.Verify(context.Background(), docs, sign.DevSigner().Public(), publish.VerifyOptions{TEEs: testTEEs, Artifacts: out, AllowDevKey: true})
	if err != nil {
		t.Fatalf("the release signed into %s does not verify against its files: %v", out, err)
	}
	return v
}

// TestTamperedCacheIsRebuilt flips a byte of a cached file and builds
// again: the build warns, naming the step and the file, rebuilds the step,
// and OUT and every signed document are those of a build from a fresh
// cache, whether the file is only copied (a no-op build), read by a step
// that runs (the measurement of another memory size) or read to finish a
// block (measurements.json).
func TestTamperedCacheIsRebuilt(t *testing.T) {
	dir := signedRecipe(t, "", "", "")
	for _, c := range []struct {
		name, block, step, file string
		memory                  string // of the second build
		tamper                  func([]byte) []byte
		// the end of the warning: the steps evicted with it, which were
		// built from it (their cached results may hold the damage)
		done string
	}{
		{"kernel copied into OUT", "kernel.guest", "image", "vmlinuz", "2G", flipByte,
			"and those of the steps built from it (measure.tdx:measure), and rebuilt them"},
		{"kernel read by a step that runs", "kernel.guest", "image", "vmlinuz", "4G", flipByte, "and rebuilt the step"},
		{"measurements.json", "measure.tdx", "measure", "measurements.json", "2G", flipDigest, "and rebuilt the step"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			cache := t.TempDir()
			first, err := loadVars(t, dir, cache, nil).Build(ctx, filepath.Join(t.TempDir(), "out"), 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			l := loadVars(t, dir, cache, map[string]string{"memory": c.memory})
			p := stepFile(t, l.Cache, first.Report, c.block, c.step, c.file)
			b := tamper(t, p, c.tamper)
			out := filepath.Join(t.TempDir(), "out")
			res, err := l.Build(ctx, out, 2, nil)
			if err != nil {
				t.Fatalf("build on the tampered cache: %v", err)
			}
			want := fmt.Sprintf("WARNING: step %s:%s: cached file %s is not what its cache record states", c.block, c.step, c.file)
			var warned []string
			for _, n := range res.Notes {
				if strings.HasPrefix(n, want) && strings.HasSuffix(n, c.done) && !strings.Contains(n, "\n") {
					warned = append(warned, n)
				}
			}
			if len(warned) != 1 {
				t.Errorf("notes %q: want one line %q…%q", res.Notes, want, c.done)
			}
			if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, b) {
				t.Errorf("the cache entry of %s:%s holds %d other bytes after the build (%v), want the rebuilt file", c.block, c.step, len(got), err)
			}
			// The reference: the same build from a fresh cache.
			ref := filepath.Join(t.TempDir(), "out")
			if _, err := loadVars(t, dir, t.TempDir(), map[string]string{"memory": c.memory}).Build(ctx, ref, 2, nil); err != nil {
				t.Fatal(err)
			}
			if diff := cmpTrees(t, ref, out); diff != "" {
				t.Errorf("OUT differs from a build from a fresh cache:\n%s", diff)
			}
			verifyOut(t, out)
		})
	}
}

// tamper rewrites the file at p with f of its bytes and returns the bytes
// it held.
func tamper(t *testing.T, p string, f func([]byte) []byte) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// flipByte changes one byte in the middle of a file.
func flipByte(b []byte) []byte {
	b = append([]byte(nil), b...)
	b[len(b)/2] ^= 0x01
	return b
}

// flipDigest changes the first hex digit of the mrtd in measurements.json,
// so that the file still parses.
func flipDigest(b []byte) []byte {
	s := string(b)
	i := strings.Index(s, `"mrtd": "`)
	if i < 0 {
		i = strings.Index(s, `"mrtd":"`)
	}
	j := strings.IndexByte(s[i+7:], '"') + i + 7 + 1
	d := byte('0')
	if s[j] == '0' {
		d = '1'
	}
	return []byte(s[:j] + string(d) + s[j+1:])
}

// cmpTrees says how the files of two trees differ ("" when they do not).
func cmpTrees(t *testing.T, a, b string) string {
	t.Helper()
	ta, tb := testenv.TreeDigest(t, a), testenv.TreeDigest(t, b)
	var diffs []string
	for p, d := range ta {
		if tb[p] != d {
			diffs = append(diffs, fmt.Sprintf("%s: %s, %s", p, d, tb[p]))
		}
	}
	for p := range tb {
		if _, ok := ta[p]; !ok {
			diffs = append(diffs, p+": only in "+b)
		}
	}
	return strings.Join(diffs, "\n")
}

// TestCacheEntryOf: a corrupt file is evicted by the key of the entry that
// holds it; EntryOf finds the key of a step's file and nothing for other
// paths (which no rebuild can mend).
func TestCacheEntryOf(t *testing.T) {
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, key string
		ok        bool
	}{
		{filepath.Join(c.Dir, "steps", "abc", "files", "vmlinuz"), "abc", true},
		{filepath.Join(c.Dir, "steps", "abc", "files", "measure", "x.json"), "abc", true},
		{filepath.Join(c.Dir, "steps"), "", false},
		{filepath.Join(c.Dir, "blobs", "sha256", "abc"), "", false},
		{"/etc/hostname", "", false},
	} {
		key, ok := c.EntryOf(tc.path)
		if key != tc.key || ok != tc.ok {
			t.Errorf("EntryOf(%s) = %q, %v; want %q, %v", tc.path, key, ok, tc.key, tc.ok)
		}
	}
}

// TestOutputFailureLeavesFeedsUntouched: the release is signed, but the
// output directory cannot be written (OUT is a file), or a later
// post-build step fails: the feed must not hold the release, as no OUT
// holds its documents.
func TestOutputFailureLeavesFeedsUntouched(t *testing.T) {
	ctx := context.Background()
	t.Run("OUT is a file", func(t *testing.T) {
		feed := filepath.Join(t.TempDir(), "feed")
		dir := signedRecipe(t, feed, "", "")
		out := filepath.Join(t.TempDir(), "out")
		if err := os.WriteFile(out, []byte("not a directory\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := loadVars(t, dir, t.TempDir(), nil).Build(ctx, out, 2, nil)
		if err == nil || !strings.Contains(err.Error(), "is not a directory") {
			t.Fatalf("build into a file: error %v, want one saying OUT is not a directory", err)
		}
		if _, err := os.Stat(feed); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the feed was written although OUT was not: %v", err)
		}
		if b, err := os.ReadFile(out); err != nil || string(b) != "not a directory\n" {
			t.Errorf("the file at OUT was changed: %q, %v", b, err)
		}
	})
	t.Run("a later post-build step fails", func(t *testing.T) {
		feed := filepath.Join(t.TempDir(), "feed")
		dir := signedRecipe(t, feed, "", "\npost \"after\" {}\n")
		out := filepath.Join(t.TempDir(), "out")
		_, err := loadVars(t, dir, t.TempDir(), nil, postKind{fail: true}).Build(ctx, out, 2, nil)
		if err == nil || !strings.Contains(err.Error(), "post-build failed on purpose") {
			t.Fatalf("error %v, want the failure of post.after", err)
		}
		if _, err := os.Stat(feed); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the feed was written although the build failed: %v", err)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("OUT was written although the build failed: %v", err)
		}
	})
	t.Run("success delivers after OUT", func(t *testing.T) {
		feed := filepath.Join(t.TempDir(), "feed")
		dir := signedRecipe(t, feed, "", "")
		out := filepath.Join(t.TempDir(), "out")
		res, err := loadVars(t, dir, t.TempDir(), nil).Build(ctx, out, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(feed, "index.json")); err != nil {
			t.Errorf("the feed was not written: %v", err)
		}
		if !strings.Contains(strings.Join(res.Notes, "\n"), "publish.t: published t 1.0.0 to dir:"+feed) {
			t.Errorf("notes %q do not say the release was published to the feed", res.Notes)
		}
		verifyOut(t, out)
	})
}

// TestBuildWithoutPublishing: with SkipPostBuild a recipe whose key is an
// unset variable builds; nothing is signed or delivered, and the plan and
// the report list the publish step as skipped. Publishing, the same build
// fails for want of the key.
func TestBuildWithoutPublishing(t *testing.T) {
	ctx := context.Background()
	const env = "COCOBUILD_TEST_PHASE_UNSET_KEY"
	t.Setenv(env, "")
	os.Unsetenv(env)
	feed := filepath.Join(t.TempDir(), "feed")
	dir := signedRecipe(t, feed, "env://"+env, "")
	cache := t.TempDir()
	if _, err := loadVars(t, dir, cache, nil).Build(ctx, filepath.Join(t.TempDir(), "out"), 2, nil); err == nil || !strings.Contains(err.Error(), env) {
		t.Fatalf("publishing without the key: error %v, want one naming %s", err, env)
	}
	l := loadVars(t, dir, cache, nil)
	l.SkipPostBuild = true
	plan, err := l.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Skipped() != 1 || plan.Always() != 0 {
		t.Errorf("plan: %d skipped, %d always; want 1 and 0: %+v", plan.Skipped(), plan.Always(), plan.Steps)
	}
	out := filepath.Join(t.TempDir(), "out")
	res, err := l.Build(ctx, out, 2, nil)
	if err != nil {
		t.Fatalf("build without publishing: %v", err)
	}
	if res.Report.Skipped() != 1 {
		t.Errorf("report: %d post-build steps skipped, want 1: %+v", res.Report.Skipped(), res.Report.Steps)
	}
	for _, a := range res.Manifest.Artifacts {
		if strings.HasPrefix(a.Path, "publish/") {
			t.Errorf("manifest lists %s, but nothing was to be signed", a.Path)
		}
	}
	for _, p := range []string{filepath.Join(out, "publish"), feed} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a build without publishing: %v", p, err)
		}
	}
	if len(res.Manifest.Measurements) == 0 {
		t.Errorf("no measurements in the manifest")
	}
}

// TestResultBuiltFromTamperedFileIsEvicted: a cached result whose record
// agrees with its bytes, but that was built from a file since found
// corrupt (its key names the file's recorded digest, not the bytes it
// read), is evicted with that file's entry and built again.
func TestResultBuiltFromTamperedFileIsEvicted(t *testing.T) {
	ctx := context.Background()
	dir := signedRecipe(t, "", "", "")
	cache := t.TempDir()
	first, err := loadVars(t, dir, cache, nil).Build(ctx, filepath.Join(t.TempDir(), "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := loadVars(t, dir, cache, nil)
	kernel := stepFile(t, l.Cache, first.Report, "kernel.guest", "image", "vmlinuz")
	tamper(t, kernel, flipByte)
	// The measurements as a step that read the tampered kernel would have
	// recorded them: other values, and a record that states their digest.
	mj := stepFile(t, l.Cache, first.Report, "measure.tdx", "measure", "measurements.json")
	mb, err := os.ReadFile(mj)
	if err != nil {
		t.Fatal(err)
	}
	poisoned := flipDigest(mb)
	if err := os.WriteFile(mj, poisoned, 0o644); err != nil {
		t.Fatal(err)
	}
	rj := filepath.Join(filepath.Dir(filepath.Dir(mj)), "result.json")
	rb, err := os.ReadFile(rj)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rj, bytes.Replace(rb, []byte(testenv.SHA256Hex(mb)), []byte(testenv.SHA256Hex(poisoned)), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	res, err := l.Build(ctx, out, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), "steps built from it (measure.tdx:measure)") {
		t.Errorf("notes %q do not say measure.tdx:measure was evicted with the kernel", res.Notes)
	}
	ref := filepath.Join(t.TempDir(), "out")
	if _, err := loadVars(t, dir, t.TempDir(), nil).Build(ctx, ref, 2, nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmpTrees(t, ref, out); diff != "" {
		t.Errorf("OUT differs from a build from a fresh cache:\n%s", diff)
	}
}

// TestDeliveryFailureSaysRunAgain: when a feed fails after OUT is written,
// the error says to run the build again (nothing rebuilds, no release is
// appended twice), the result keeps the notes of the feeds delivered to,
// and the build run again succeeds.
func TestDeliveryFailureSaysRunAgain(t *testing.T) {
	ctx := context.Background()
	good := filepath.Join(t.TempDir(), "feed")
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := signedRecipe(t, good, "", "")
	p := filepath.Join(dir, "r.hcl")
	src, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	one := fmt.Sprintf("to = [%q]", "dir:"+good)
	two := fmt.Sprintf("to = [%q, %q]", "dir:"+good, "dir:"+bad)
	if !bytes.Contains(src, []byte(one)) {
		t.Fatalf("recipe has no %s", one)
	}
	if err := os.WriteFile(p, bytes.Replace(src, []byte(one), []byte(two), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	cache, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
	res, err := loadVars(t, dir, cache, nil).Build(ctx, out, 2, nil)
	if err == nil || !strings.Contains(err.Error(), "Run the build again: nothing rebuilds") {
		t.Fatalf("build with a failing feed: error %v, want one saying to run the build again", err)
	}
	if res == nil || !strings.Contains(strings.Join(res.Notes, "\n"), "published t 1.0.0 to dir:"+good) {
		t.Errorf("result %+v: want the notes of the feed delivered to (dir:%s)", res, good)
	}
	verifyOut(t, out)
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	res, err = loadVars(t, dir, cache, nil).Build(ctx, out, 2, nil)
	if err != nil {
		t.Fatalf("running the build again: %v", err)
	}
	if got := res.Report.Ran(); got != 0 {
		t.Errorf("running the build again ran %d step(s), want 0 (nothing rebuilds)", got)
	}
}

// TestPlanOnCorruptCacheSaysBuild: plan only looks, so a corrupt cached
// file it meets is an error that says to run cocobuild build (which evicts
// and rebuilds).
func TestPlanOnCorruptCacheSaysBuild(t *testing.T) {
	ctx := context.Background()
	dir := signedRecipe(t, "", "", "")
	cache := t.TempDir()
	first, err := loadVars(t, dir, cache, nil).Build(ctx, filepath.Join(t.TempDir(), "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := loadVars(t, dir, cache, nil)
	p := stepFile(t, l.Cache, first.Report, "measure.tdx", "measure", "measurements.json")
	tamper(t, p, flipDigest)
	_, err = l.Plan(ctx)
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "Run cocobuild build: it evicts") {
		t.Fatalf("plan on a corrupt cache: error %v, want a *CorruptError saying to run cocobuild build", err)
	}
}

// BenchmarkNoOpBuild is a rebuild in which every step is cached: what it
// costs is checking the cached files while they are copied into OUT, and
// signing the release again. Compare with
// `go test ./builder -bench NoOpBuild` at a revision before the checks.
func BenchmarkNoOpBuild(b *testing.B) {
	ctx := context.Background()
	dir := signedRecipe(b, "", "", "")
	cache := b.TempDir()
	out := filepath.Join(b.TempDir(), "out")
	if _, err := load(b, dir, cache, testOptions{}).Build(ctx, out, 2, nil); err != nil {
		b.Fatal(err)
	}
	var size int64
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	b.SetBytes(size)
	for b.Loop() {
		res, err := load(b, dir, cache, testOptions{}).Build(ctx, out, 2, nil)
		if err != nil {
			b.Fatal(err)
		}
		if res.Report.Ran() != 0 {
			b.Fatalf("%d steps ran: the rebuild is not a no-op", res.Report.Ran())
		}
	}
}
