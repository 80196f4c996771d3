package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestKillMidStepThenRebuild kills a build with SIGKILL while a step is
// half-way through a download, then rebuilds: the result must be complete
// and identical to a clean build, and the killed work must leave nothing
// that a later build takes as a result.
func TestKillMidStepThenRebuild(t *testing.T) {
	payload := make([]byte, 8<<20)
	for i := range payload {
		payload[i] = byte(i*31 + i>>11)
	}
	var requests atomic.Int32
	halfway := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		w.Header().Set("Content-Length", fmt.Sprint(len(payload)))
		w.Write(payload[:len(payload)/2])
		w.(http.Flusher).Flush()
		if n == 1 {
			close(halfway)
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Write(payload[len(payload)/2:])
	}))
	defer srv.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	dir := t.TempDir()
	kernel := testenv.FakeBzImage("6.1.0-kill", 128*1024)
	if err := os.WriteFile(filepath.Join(dir, "vmlinuz"), kernel, 0o644); err != nil {
		t.Fatal(err)
	}
	recipe := fmt.Sprintf(`
recipe {
  name = "kill"
}

input "k" {
  file   = "vmlinuz"
  sha256 = %q
}

input "fw" {
  url    = %q
  sha256 = %q
}

kernel "guest" {
  image   = input.k
  cmdline = ["console=ttyS0"]
}
`, hexSHA(kernel), srv.URL+"/OVMF.fd", hexSHA(payload))
	if err := os.WriteFile(filepath.Join(dir, "kill.hcl"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	cache, out := t.TempDir(), filepath.Join(t.TempDir(), "out")

	cmd := exec.Command(os.Args[0], "build", "--cache-dir", cache, "-o", out, dir)
	cmd.Env = append(os.Environ(), "COCOBUILD_TEST_MAIN=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-halfway:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the build never reached the middle of the download")
	}
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("killed build left an output directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "blobs", "sha256", hexSHA(payload))); !os.IsNotExist(err) {
		t.Error("killed build left the half download as a complete blob")
	}
	if tmps, _ := os.ReadDir(filepath.Join(cache, "tmp")); len(tmps) == 0 {
		t.Log("note: the killed build left no temporary work (it is cleaned on the next run anyway)")
	}

	close(release)
	if code, _, stderr := runCLI(t, "build", "--cache-dir", cache, "-o", out, dir); code != 0 {
		t.Fatalf("rebuild after the kill: exit %d\n%s", code, stderr)
	}
	if tmps, _ := os.ReadDir(filepath.Join(cache, "tmp")); len(tmps) != 0 {
		t.Errorf("cache tmp still holds %d entries of the killed build", len(tmps))
	}
	clean := filepath.Join(t.TempDir(), "clean")
	if code, _, stderr := runCLI(t, "build", "--cache-dir", t.TempDir(), "-o", clean, dir); code != 0 {
		t.Fatalf("clean build: exit %d\n%s", code, stderr)
	}
	if diff := cmp.Diff(testenv.TreeDigest(t, clean), testenv.TreeDigest(t, out)); diff != "" {
		t.Errorf("rebuild after the kill differs from a clean build (-clean +rebuilt):\n%s", diff)
	}
}
