package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

const sampleRecipe = "../../recipes/sample"

// TestSampleReproducible builds the sample recipe twice from cold caches in
// different directories, compares the trees, then checks that a rebuild
// runs no step and that plan says so.
func TestSampleReproducible(t *testing.T) {
	testenv.Tool(t, "apt-get", "apt")
	cacheA, cacheB := t.TempDir(), t.TempDir()
	outA, outB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "nested", "b")
	for _, c := range [][2]string{{cacheA, outA}, {cacheB, outB}} {
		if code, _, stderr := runCLI(t, "build", "--cache-dir", c[0], "-o", c[1], sampleRecipe); code != 0 {
			t.Fatalf("build: exit %d\n%s", code, stderr)
		}
	}
	if diff := cmp.Diff(tree(t, outA), tree(t, outB)); diff != "" {
		t.Errorf("two cold builds differ (-a +b):\n%s", diff)
	}
	code, stdout, stderr := runCLI(t, "plan", "--json", "--cache-dir", cacheA, sampleRecipe)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, stderr)
	}
	var plan struct {
		ToRun int `json:"to_run"`
		Steps []struct {
			Status string `json:"status"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatal(err)
	}
	if plan.ToRun != 0 || len(plan.Steps) == 0 {
		t.Errorf("plan after a build: %d of %d steps to run, want 0", plan.ToRun, len(plan.Steps))
	}
	code, stdout, stderr = runCLI(t, "build", "--json", "--cache-dir", cacheA, "-o", outA, sampleRecipe)
	if code != 0 {
		t.Fatalf("rebuild: exit %d\n%s", code, stderr)
	}
	var res struct {
		Ran      int    `json:"ran"`
		Manifest string `json:"manifest"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.Ran != 0 {
		t.Errorf("rebuild ran %d steps, want 0", res.Ran)
	}
	if stderr != "" {
		t.Errorf("--json build printed to stderr: %q", stderr)
	}
	if _, err := os.Stat(res.Manifest); err != nil {
		t.Errorf("manifest %s: %v", res.Manifest, err)
	}
	if diff := cmp.Diff(tree(t, outB), tree(t, outA)); diff != "" {
		t.Errorf("rebuild changed the output (-before +after):\n%s", diff)
	}
}

// BenchmarkNoopRebuild times `cocobuild build` of the sample recipe when
// every step is cached: load, plan, copy into the output, manifest.
func BenchmarkNoopRebuild(b *testing.B) {
	testenv.Tool(b, "apt-get", "apt")
	cache, out := b.TempDir(), filepath.Join(b.TempDir(), "out")
	if code, _, stderr := runCLI(b, "build", "--cache-dir", cache, "-o", out, sampleRecipe); code != 0 {
		b.Fatalf("build: exit %d\n%s", code, stderr)
	}
	b.ResetTimer()
	for b.Loop() {
		if code, _, stderr := runCLI(b, "build", "--json", "--cache-dir", cache, "-o", out, sampleRecipe); code != 0 {
			b.Fatalf("rebuild: exit %d\n%s", code, stderr)
		}
	}
}

// TestSampleRepro runs `cocobuild repro` on the sample recipe.
func TestSampleRepro(t *testing.T) {
	testenv.Tool(t, "apt-get", "apt")
	code, stdout, stderr := runCLI(t, "repro", "--cache-dir", t.TempDir(), sampleRecipe)
	if code != 0 {
		t.Fatalf("repro of the sample: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "reproducible:") {
		t.Errorf("repro output lacks the verdict:\n%s", stdout)
	}
	t.Log(stdout)
}
