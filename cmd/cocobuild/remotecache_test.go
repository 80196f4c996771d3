package main

import (
	"encoding/json"
	"io"
	"log"
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
