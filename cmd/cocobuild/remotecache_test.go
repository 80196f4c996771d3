package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcr "github.com/google/go-containerregistry/pkg/registry"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/internal/testenv"
)

// startRegistry starts go-containerregistry's registry on 127.0.0.1 and
// returns an oci:// reference to a repository in it.
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return "oci://" + strings.TrimPrefix(srv.URL, "http://") + "/cache"
}

type buildJSON struct {
	Ran    int                  `json:"ran"`
	Pulled int                  `json:"pulled"`
	Steps  []builder.StepReport `json:"steps"`
	Notes  []string             `json:"notes"`
}

func buildWith(t *testing.T, args ...string) buildJSON {
	t.Helper()
	code, stdout, stderr := runCLI(t, append([]string{"build", "--json", "--cache-dir", t.TempDir(), "-o", filepath.Join(t.TempDir(), "out")}, args...)...)
	if code != 0 {
		t.Fatalf("build %q: exit %d\n%s%s", args, code, stdout, stderr)
	}
	var got buildJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("build --json: %v\n%s", err, stdout)
	}
	return got
}

// TestRemoteCacheSettings: the remote caches come from --cache-from and
// --cache-to, else $COCOBUILD_CACHE_FROM/_TO, else the recipe's cache
// setting; none turns a direction off.
func TestRemoteCacheSettings(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, "")
	ref := startRegistry(t)
	// Nothing pushed yet: a build pulls nothing.
	if got := buildWith(t, "--cache-from", ref, dir); got.Pulled != 0 || got.Ran != 2 {
		t.Errorf("build from an empty remote cache: pulled %d, ran %d, want 0 and 2", got.Pulled, got.Ran)
	}
	buildWith(t, "--cache-to", ref, dir) // fills it

	for _, tc := range []struct {
		name       string
		env        string
		args       []string
		recipe     string
		wantPulled int
	}{
		{"flag", "", []string{"--cache-from", ref}, "", 2},
		{"env", ref, nil, "", 2},
		{"recipe", "", nil, ref, 2},
		{"flag none over env", ref, []string{"--cache-from", "none"}, "", 0},
		{"env over recipe", "oci://127.0.0.1:1/elsewhere", nil, ref, 0},
		{"flag over recipe", "", []string{"--cache-from", ref}, "oci://127.0.0.1:1/elsewhere", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(builder.EnvCacheFrom, tc.env)
			rd := t.TempDir()
			src, err := os.ReadFile(filepath.Join(dir, "r.hcl"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.recipe != "" {
				src = []byte(strings.Replace(string(src), `name = "t"`, `name = "t"
  cache = { from = ["`+tc.recipe+`"] }`, 1))
			}
			if err := os.WriteFile(filepath.Join(rd, "r.hcl"), src, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(dir, "vmlinuz"), filepath.Join(rd, "vmlinuz")); err != nil {
				t.Fatal(err)
			}
			got := buildWith(t, append(tc.args, rd)...)
			if got.Pulled != tc.wantPulled {
				t.Errorf("pulled %d steps, want %d: %+v (notes %q)", got.Pulled, tc.wantPulled, got.Steps, got.Notes)
			}
		})
	}
}

// TestRemoteCacheBadReference: a reference that is no oci://HOST/REPO is
// a usage error (exit 2), from the command line, the environment or the
// recipe (shown at its place).
func TestRemoteCacheBadReference(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, "")
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"scheme", []string{"--cache-from", "https://example.org/cache"}, "", "want oci://HOST[:PORT]/REPO"},
		{"tag", []string{"--cache-to", "oci://127.0.0.1:5000/cache:latest"}, "", "without a tag or digest"},
		{"env", nil, "oci://", "COCOBUILD_CACHE_FROM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(builder.EnvCacheFrom, tc.env)
			for _, cmd := range []string{"build", "plan", "repro"} {
				code, _, stderr := runCLI(t, append(append([]string{cmd, "--cache-dir", t.TempDir()}, tc.args...), dir)...)
				if code != 2 || !strings.Contains(stderr, tc.want) {
					t.Errorf("%s %q: exit %d, stderr %q; want exit 2 and %q", cmd, tc.args, code, stderr, tc.want)
				}
			}
		})
	}
	rd := t.TempDir()
	testenv.WriteKernelRecipe(t, rd, "")
	src, _ := os.ReadFile(filepath.Join(rd, "r.hcl"))
	src = []byte(strings.Replace(string(src), `name = "t"`, `name = "t"
  cache = { to = ["oci://127.0.0.1:5000/c@sha256:0000000000000000000000000000000000000000000000000000000000000000"] }`, 1))
	os.WriteFile(filepath.Join(rd, "r.hcl"), src, 0o644)
	code, _, stderr := runCLI(t, "build", "--cache-dir", t.TempDir(), rd)
	if code != 2 || !strings.Contains(stderr, "r.hcl:4:") || !strings.Contains(stderr, "Invalid cache reference") {
		t.Errorf("recipe with a digest as cache: exit %d, stderr %q; want exit 2 at r.hcl:4", code, stderr)
	}
}

// TestReproSecondBuildNeverPulls: repro's second build ignores the remote
// caches of the flags, the environment and the recipe, so a step that is
// not reproducible still shows: were it pulled from what the first build
// pushed, the two outputs would be identical.
func TestReproSecondBuildNeverPulls(t *testing.T) {
	t.Setenv("TZ", "UTC")
	ref := startRegistry(t)
	t.Setenv(builder.EnvCacheFrom, ref)
	t.Setenv(builder.EnvCacheTo, ref)
	code, got, out := runRepro(t, reproRecipe(t, "\nleaky \"x\" {}\n"), "--cache-from", ref, "--cache-to", ref)
	if code != 1 || got.Reproducible {
		t.Fatalf("repro of a leaky recipe with a remote cache: exit %d, reproducible %v, want 1 and false\n%s", code, got.Reproducible, out)
	}
}

// fillLeaky builds the leaky recipe dir with TZ=Asia/Tokyo on a cold
// local cache, pushing its steps to ref, and returns the output directory:
// the remote cache then holds a leak.cpio that no build under another TZ
// makes, so a build that has it pulled it.
func fillLeaky(t *testing.T, dir, ref string) string {
	t.Helper()
	t.Setenv("TZ", "Asia/Tokyo")
	out := filepath.Join(t.TempDir(), "out")
	if code, stdout, stderr := runCLI(t, "build", "--cache-dir", t.TempDir(), "-o", out, "--cache-from", "none", "--cache-to", ref, dir); code != 0 {
		t.Fatalf("build filling %s: exit %d\n%s%s", ref, code, stdout, stderr)
	}
	t.Setenv("TZ", "UTC")
	return out
}

// TestVerifyBuildRemoteCache: verify-build takes step results from the
// remote caches of --cache-from or $COCOBUILD_CACHE_FROM, and --cache-from
// none rebuilds everything. (The recipe's cache setting goes through the
// same flags code, tested with build by TestRemoteCacheSettings; here it
// would change the recipe digest, which the release states.) The remote cache holds a step
// built under another TZ than the verifier's (a step that is not
// reproducible): the release published from it matches a rebuild that
// pulls it, and not one that builds it here.
func TestVerifyBuildRemoteCache(t *testing.T) {
	ref := startRegistry(t)
	fw := testenv.VectorFile(t, "inputs/debian12_OVMF.fd")
	fwBytes, err := os.ReadFile(fw)
	if err != nil {
		t.Fatal(err)
	}
	dir := reproRecipe(t, fmt.Sprintf(`
leaky "x" {}

input "fw" {
  file   = %q
  sha256 = %q
}

measure "snp" {
  firmware = input.fw
}

publish "p" {
  version = "1.0.0"
  expires = "2099-01-01T00:00:00Z"
  key     = "dev"
  # SNP without a kernel vouches for the firmware only.
  allow_partial_coverage = true
}
`, fw, hexSHA(fwBytes)))
	out := fillLeaky(t, dir, ref)
	release, pub := filepath.Join(out, "publish", "p"), filepath.Join(out, "publish", "p", "cosign.pub")
	for _, tc := range []struct {
		name     string
		env      string
		args     []string
		wantCode int
		want     string
	}{
		{"flag", "", []string{"--cache-from", ref}, 0, "comes from this recipe"},
		{"env", ref, nil, 0, "comes from this recipe"},
		{"flag none over env", ref, []string{"--cache-from", "none"}, 1, "MISMATCH"},
		{"no remote cache", "", nil, 1, "MISMATCH"},
		{"bad reference", "", []string{"--cache-from", "https://example.org/cache"}, 2, "want oci://HOST[:PORT]/REPO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(builder.EnvCacheFrom, tc.env)
			args := append([]string{"verify-build", "--cache-dir", t.TempDir(), "--against", release, "--key", pub}, tc.args...)
			code, stdout, stderr := runCLI(t, append(args, dir)...)
			if code != tc.wantCode || !strings.Contains(stdout+stderr, tc.want) {
				t.Errorf("verify-build %q: exit %d, want %d and %q\n%s%s", tc.args, code, tc.wantCode, tc.want, stdout, stderr)
			}
			if tc.wantCode == 1 && !strings.Contains(stdout, "leak.cpio") {
				t.Errorf("verify-build %q: the mismatch does not name leak.cpio\n%s", tc.args, stdout)
			}
		})
	}
}

// TestReproFirstBuildUsesRemote: repro's first build pulls from the remote
// caches of --cache-from or $COCOBUILD_CACHE_FROM (its leak.cpio is the
// one the remote cache holds, built under another TZ) and pushes to those
// of --cache-to or $COCOBUILD_CACHE_TO.
func TestReproFirstBuildUsesRemote(t *testing.T) {
	ref := startRegistry(t)
	dir := reproRecipe(t, "\nleaky \"x\" {}\n")
	filled, err := os.ReadFile(filepath.Join(fillLeaky(t, dir, ref), "leaky", "x", "leak.cpio"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  bool
		args []string
	}{
		{"flags", false, []string{"--cache-from", ref, "--cache-to", "REF2"}},
		{"env", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref2 := startRegistry(t) // empty: what the first build pushes
			// Build b may run as another uid: it needs into the subtest's
			// temporary directories.
			os.Chmod(filepath.Dir(t.TempDir()), 0o755)
			args := []string{"--keep"}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "REF2", ref2))
			}
			if tc.env {
				t.Setenv(builder.EnvCacheFrom, ref)
				t.Setenv(builder.EnvCacheTo, ref2)
			}
			code, _, out := runRepro(t, dir, args...)
			var rep struct {
				Report struct {
					OutA string `json:"out_a"`
				} `json:"report"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Report.OutA == "" {
				t.Fatalf("repro %q: exit %d, %v\n%s", args, code, err, out)
			}
			got, err := os.ReadFile(filepath.Join(rep.Report.OutA, "leaky", "x", "leak.cpio"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, filled) {
				t.Errorf("repro's first build has not the remote cache's leak.cpio (%d bytes, want %d): it did not pull", len(got), len(filled))
			}
			if got, want := len(registryTags(t, ref2)), 3; got != want {
				t.Errorf("the first build pushed %d entries to the --cache-to registry, want %d (the input, the kernel and the leaky step)", got, want)
			}
		})
	}
}

// registryTags lists the tags of the repository of an oci:// reference,
// as the registry answers them.
func registryTags(t *testing.T, ref string) []string {
	t.Helper()
	host, repo, _ := strings.Cut(strings.TrimPrefix(ref, builder.RemotePrefix), "/")
	resp, err := http.Get("http://" + host + "/v2/" + repo + "/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tags struct{ Tags []string }
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&tags); err != nil {
			t.Fatal(err)
		}
	}
	return tags.Tags
}

// TestRemoteCacheRepeatable: --cache-to twice pushes to both; --cache-from
// twice (or $COCOBUILD_CACHE_FROM with two references, by comma or space)
// tries them in order: a registry that is down is a warning and the next
// one gives every step.
func TestRemoteCacheRepeatable(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, "")
	ref1, ref2 := startRegistry(t), startRegistry(t)
	buildWith(t, "--cache-to", ref1, "--cache-to", ref2, dir)
	for _, ref := range []string{ref1, ref2} {
		if got, want := len(registryTags(t, ref)), 2; got != want {
			t.Errorf("%s holds %d entries after --cache-to twice, want %d", ref, got, want)
		}
	}
	down := "oci://127.0.0.1:1/down"
	for _, tc := range []struct {
		name string
		env  string
		args []string
	}{
		{"flags", "", []string{"--cache-from", down, "--cache-from", ref2}},
		{"env, comma", down + "," + ref2, nil},
		{"env, space", down + " " + ref2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(builder.EnvCacheFrom, tc.env)
			got := buildWith(t, append(tc.args, dir)...)
			if got.Pulled != 2 || got.Ran != 0 {
				t.Errorf("pulled %d, ran %d, want 2 and 0: %+v", got.Pulled, got.Ran, got.Steps)
			}
			for _, s := range got.Steps {
				if s.Remote != ref2 {
					t.Errorf("step %s:%s pulled from %q, want %q", s.Block, s.Step, s.Remote, ref2)
				}
			}
			if len(got.Notes) != 1 || !strings.Contains(got.Notes[0], down) {
				t.Errorf("notes = %q, want one warning naming %s", got.Notes, down)
			}
		})
	}
}

// TestRemoteCacheToNone: --cache-to none pushes nowhere whatever
// $COCOBUILD_CACHE_TO and the recipe say; without it the environment's
// cache is pushed to.
func TestRemoteCacheToNone(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, "")
	envRef, recipeRef := startRegistry(t), startRegistry(t)
	src, err := os.ReadFile(filepath.Join(dir, "r.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(strings.Replace(string(src), `name = "t"`, `name = "t"
  cache = { to = ["`+recipeRef+`"] }`, 1))
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(builder.EnvCacheTo, envRef)
	buildWith(t, "--cache-to", "none", dir)
	if got := len(registryTags(t, envRef)) + len(registryTags(t, recipeRef)); got != 0 {
		t.Errorf("--cache-to none: %d entries pushed, want none", got)
	}
	buildWith(t, dir)
	if got, want := len(registryTags(t, envRef)), 2; got != want {
		t.Errorf("$%s: %d entries pushed, want %d", builder.EnvCacheTo, got, want)
	}
	if got := len(registryTags(t, recipeRef)); got != 0 {
		t.Errorf("the recipe's cache, under $%s: %d entries pushed, want none", builder.EnvCacheTo, got)
	}
}
