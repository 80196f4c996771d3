package builder

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/disk"
	"github.com/cocobuild/cocobuild/initramfs"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/kernel"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/rootfs"
	"github.com/cocobuild/cocobuild/tee"
)

// testOptions are the settings of a test's Load: the recipe's options,
// the input kind's and the kinds beyond testKinds'.
type testOptions struct {
	recipes.LoadOptions
	Resolving, Locked bool
	ExtraKinds        []recipes.Kind
}

// testKinds are the block kinds the tests' recipes use (the command line
// composes cocobuild's in internal/registry).
func testKinds(c *Cache, recipeDir string, o input.Options, extra ...recipes.Kind) ([]recipes.Kind, error) {
	in, err := input.New(c, c.Dir, recipeDir, o)
	if err != nil {
		return nil, err
	}
	return append([]recipes.Kind{in, kernel.Kind{}, initramfs.Kind{}, rootfs.Kind{}, disk.Kind{},
		tee.MeasureKind{TEEs: testTEEs, ReadVerified: ReadVerified}, publish.Kind{CacheDir: c.Dir, TEEs: testTEEs}}, extra...), nil
}

// testLoadOptions loads with the cache in cache and testKinds.
func testLoadOptions(cache string) LoadOptions {
	return LoadOptions{CacheDir: cache, Kinds: func(c *Cache, recipeDir string) ([]recipes.Kind, error) {
		return testKinds(c, recipeDir, input.Options{})
	}}
}

func load(t testing.TB, dir, cache string, opts testOptions) *Loaded {
	t.Helper()
	l, err := Load(dir, LoadOptions{LoadOptions: opts.LoadOptions, CacheDir: cache,
		Kinds: func(c *Cache, recipeDir string) ([]recipes.Kind, error) {
			return testKinds(c, recipeDir, input.Options{Resolving: opts.Resolving, Locked: opts.Locked}, opts.ExtraKinds...)
		}})
	if err != nil {
		var de *DiagError
		if errors.As(err, &de) {
			var sb strings.Builder
			recipes.WriteDiagnostics(&sb, de.Files, de.Diags)
			t.Fatalf("loading recipe:\n%s", sb.String())
		}
		t.Fatal(err)
	}
	return l
}

func TestBuildTwiceIdenticalAndCached(t *testing.T) {
	dir := t.TempDir()
	kernel := testenv.WriteKernelRecipe(t, dir, "")
	cacheA, cacheB := t.TempDir(), t.TempDir()
	outA, outB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	ctx := context.Background()

	first, err := load(t, dir, cacheA, testOptions{}).Build(ctx, outA, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := first.Report.Ran(); got != 2 {
		t.Errorf("cold build ran %d steps, want 2", got)
	}
	digestA := testenv.TreeDigest(t, outA)

	// Warm rebuild into the same directory: nothing runs, same tree.
	plan, err := load(t, dir, cacheA, testOptions{}).Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Ran(); got != 0 {
		t.Errorf("plan after a build: %d steps to run, want 0: %+v", got, plan.Steps)
	}
	second, err := load(t, dir, cacheA, testOptions{}).Build(ctx, outA, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := second.Report.Ran(); got != 0 {
		t.Errorf("warm rebuild ran %d steps, want 0", got)
	}
	if diff := cmp.Diff(digestA, testenv.TreeDigest(t, outA)); diff != "" {
		t.Errorf("warm rebuild changed the output (-first +second):\n%s", diff)
	}

	// Cold build elsewhere, other cache, other umask: same tree.
	old := setUmask(0o077)
	_, err = load(t, dir, cacheB, testOptions{}).Build(ctx, outB, 1, nil)
	setUmask(old)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(digestA, testenv.TreeDigest(t, outB)); diff != "" {
		t.Errorf("second cold build differs (-a +b):\n%s", diff)
	}

	m, err := manifest.Read(filepath.Join(outA, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []manifest.Artifact{{Name: "kernel.guest", Kind: "kernel", Path: "kernel/guest/vmlinuz", SHA256: testenv.SHA256Hex(kernel), Size: int64(len(kernel)),
		Extra: map[string]any{"cmdline": "console=ttyS0", "release": "6.1.0-test", "boot_protocol": "2.15"}}}
	if diff := cmp.Diff(want, m.Artifacts); diff != "" {
		t.Errorf("manifest artifacts (-want +got):\n%s", diff)
	}
	if got, want := m.Inputs, []manifest.Input{{Name: "k", Source: "file:vmlinuz", SHA256: testenv.SHA256Hex(kernel), Size: int64(len(kernel))}}; !cmp.Equal(got, want) {
		t.Errorf("manifest inputs = %+v, want %+v", got, want)
	}
}

func TestChangedFileIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, "")
	cache := t.TempDir()
	ctx := context.Background()
	if _, err := load(t, dir, cache, testOptions{}).Build(ctx, filepath.Join(dir, "out"), 2, nil); err != nil {
		t.Fatal(err)
	}
	// Same name, other bytes, pin unchanged: the probe must catch it.
	other := testenv.FakeBzImage("6.1.0-other", 256*1024)
	if err := os.WriteFile(filepath.Join(dir, "vmlinuz"), other, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := load(t, dir, cache, testOptions{}).Build(ctx, filepath.Join(dir, "out"), 2, nil)
	var pm *input.PinMismatchError
	if !errors.As(err, &pm) {
		t.Fatalf("build after the file changed: error %v, want a pin mismatch", err)
	}
	if pm.Input != "k" || pm.Got != testenv.SHA256Hex(other) {
		t.Errorf("mismatch error %+v: want input k, got %s", pm, testenv.SHA256Hex(other))
	}
}

func TestFailureCancelsAndKeepsNothing(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gone", http.StatusNotFound)
	}))
	defer srv.Close()
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, fmt.Sprintf(`
input "fw" {
  url    = %q
  sha256 = %q
}
`, srv.URL+"/x", strings.Repeat("00", 32)))
	cache := t.TempDir()
	_, err := load(t, dir, cache, testOptions{}).Build(context.Background(), filepath.Join(dir, "out"), 2, nil)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("error %v, want the HTTP 404", err)
	}
	if !strings.Contains(err.Error(), "input.fw") {
		t.Errorf("error %q does not name the block", err)
	}
}

func TestStepKeyCoversEverything(t *testing.T) {
	base := func() *recipes.Step {
		return &recipes.Step{Kind: "k", Version: "1", Params: map[string]string{"a": "b"}, Inputs: []recipes.Artifact{{SHA256: "aa"}}}
	}
	k0, _ := StepKey(base(), 0, nil, "")
	variants := map[string]func() (string, error){
		"kind":    func() (string, error) { s := base(); s.Kind = "x"; return StepKey(s, 0, nil, "") },
		"version": func() (string, error) { s := base(); s.Version = "2"; return StepKey(s, 0, nil, "") },
		"params": func() (string, error) {
			s := base()
			s.Params = map[string]string{"a": "c"}
			return StepKey(s, 0, nil, "")
		},
		"input": func() (string, error) { s := base(); s.Inputs[0].SHA256 = "bb"; return StepKey(s, 0, nil, "") },
		"epoch": func() (string, error) { return StepKey(base(), 1, nil, "") },
		"probe": func() (string, error) { return StepKey(base(), 0, nil, "p") },
		"after": func() (string, error) {
			return StepKey(base(), 0, map[string]*recipes.Result{"s": {Files: []recipes.FileDigest{{Path: "f", SHA256: "cc"}}}}, "")
		},
	}
	for name, f := range variants {
		k, err := f()
		if err != nil {
			t.Fatal(err)
		}
		if k == k0 {
			t.Errorf("changing %s does not change the step key", name)
		}
	}
	// Inputs at other paths with the same bytes give the same key.
	s := base()
	s.Inputs[0].Path = "/elsewhere"
	if k, _ := StepKey(s, 0, nil, ""); k != k0 {
		t.Error("the key depends on where an input lies")
	}
}
