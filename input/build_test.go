package input_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
)

func TestPinMismatchWritesNothing(t *testing.T) {
	payload := []byte(strings.Repeat("firmware", 1000))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(payload) }))
	defer srv.Close()
	dir := t.TempDir()
	wrong := strings.Repeat("ab", 32)
	testenv.WriteKernelRecipe(t, dir, fmt.Sprintf(`
input "fw" {
  url    = %q
  sha256 = %q
}
`, srv.URL+"/OVMF.fd", wrong))
	cache, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
	_, err := testkinds.Load(t, dir, cache, input.Options{}).Build(context.Background(), out, 1, nil)
	if err == nil {
		t.Fatal("build with a wrong pin succeeded")
	}
	for _, want := range []string{`input "fw"`, "expected " + wrong, "got " + testenv.SHA256Hex(payload)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output directory exists after a failed build: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "blobs", "sha256", testenv.SHA256Hex(payload))); !os.IsNotExist(err) {
		t.Error("the mismatching download was kept in the cache")
	}
	tmps, _ := os.ReadDir(filepath.Join(cache, "tmp"))
	if len(tmps) != 0 {
		t.Errorf("cache tmp holds %d entries after the failure, want 0", len(tmps))
	}
}

func TestURLInputAndLock(t *testing.T) {
	payload := []byte(strings.Repeat("initrd", 5000))
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Write(payload)
	}))
	defer srv.Close()
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, fmt.Sprintf(`
input "initrd" {
  url = %q
}
`, srv.URL+"/initrd.img"))
	cache := t.TempDir()
	ctx := context.Background()

	if _, err := builder.Load(dir, testkinds.LoadOptions(cache, input.Options{})); err == nil || !strings.Contains(err.Error(), "not pinned") {
		t.Fatalf("loading an unpinned recipe: error %v, want 'not pinned'", err)
	}
	lock, err := updateLock(ctx, t, dir, cache, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := lock.Pins["initrd"], (input.Pin{Source: "url:" + srv.URL + "/initrd.img", SHA256: testenv.SHA256Hex(payload)}); got != want {
		t.Errorf("lock pin = %+v, want %+v", got, want)
	}
	res, err := testkinds.Load(t, dir, cache, input.Options{Locked: true}).Build(ctx, filepath.Join(dir, "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hits != 1 {
		t.Errorf("server hit %d times, want 1 (the lock's download is cached by digest)", hits)
	}
	var found bool
	for _, in := range res.Manifest.Inputs {
		if in.Name == "initrd" && in.SHA256 == testenv.SHA256Hex(payload) && in.Size == int64(len(payload)) {
			found = true
		}
	}
	if !found {
		t.Errorf("manifest inputs %+v lack initrd with its pin", res.Manifest.Inputs)
	}

	// Drift: the recipe now names another URL; --locked refuses it.
	testenv.WriteKernelRecipe(t, dir, fmt.Sprintf(`
input "initrd" {
  url = %q
}
`, srv.URL+"/other.img"))
	_, err = builder.Load(dir, testkinds.LoadOptions(cache, input.Options{Locked: true}))
	if err == nil || !strings.Contains(err.Error(), "Recipe and lock disagree") {
		t.Errorf("--locked with drift: error %v, want 'Recipe and lock disagree'", err)
	}
}

// TestTamperedDownloadIsFetchedAgain: a download kept in the cache whose
// bytes are no longer its pin's is not used when the input step runs
// again: it is removed and fetched again.
func TestTamperedDownloadIsFetchedAgain(t *testing.T) {
	payload := testenv.FakeBzImage("6.1.0-blob", 64*1024)
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Write(payload)
	}))
	defer srv.Close()
	dir := t.TempDir()
	src := fmt.Sprintf(`
recipe {
  name = "blob"
}

input "k" {
  url    = %q
  sha256 = %q
}

kernel "guest" {
  image   = input.k
  cmdline = ["console=ttyS0"]
}
`, srv.URL+"/vmlinuz", testenv.SHA256Hex(payload))
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cache := t.TempDir()
	l := testkinds.Load(t, dir, cache, input.Options{})
	first, err := l.Build(ctx, filepath.Join(t.TempDir(), "out"), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The download is tampered with, and the input step's entry is gone
	// (as after an eviction): the step runs again from the kept download.
	blob := l.Cache.BlobPath(testenv.SHA256Hex(payload))
	os.Chmod(blob, 0o644)
	if err := os.WriteFile(blob, flipByte(payload), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range first.Report.Steps {
		if s.Block == "input.k" {
			if _, err := l.Cache.Evict(ctx, s.Key); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := testkinds.Load(t, dir, cache, input.Options{}).Build(ctx, out, 1, nil); err != nil {
		t.Fatal(err)
	}
	if hits != 2 {
		t.Errorf("%d downloads, want 2: the tampered download was not fetched again", hits)
	}
	if got, err := os.ReadFile(filepath.Join(out, "kernel", "guest", "vmlinuz")); err != nil || testenv.SHA256Hex(got) != testenv.SHA256Hex(payload) {
		t.Errorf("OUT's kernel has sha256 %s (%v), want the pinned %s", testenv.SHA256Hex(got), err, testenv.SHA256Hex(payload))
	}
	if got, err := os.ReadFile(blob); err != nil || testenv.SHA256Hex(got) != testenv.SHA256Hex(payload) {
		t.Errorf("the kept download has sha256 %s (%v), want the pinned %s", testenv.SHA256Hex(got), err, testenv.SHA256Hex(payload))
	}
}
