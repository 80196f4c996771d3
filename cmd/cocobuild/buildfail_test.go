package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBuildJSONFailure: `build --json` prints a JSON result on failure too,
// naming the step that failed, with exit code 1 and no progress lines.
func TestBuildJSONFailure(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	dir := t.TempDir()
	recipe := fmt.Sprintf(`recipe {
  name = "fails"
}

input "fw" {
  url    = %q
  sha256 = %q
}
`, srv.URL+"/OVMF.fd", strings.Repeat("ab", 32))
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "build", "--json", "--cache-dir", t.TempDir(), "-o", filepath.Join(dir, "out"), dir)
	if code != exitFailure {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitFailure, stderr)
	}
	var got struct {
		OK     bool     `json:"ok"`
		Error  string   `json:"error"`
		Failed []string `json:"failed"`
		Steps  []struct {
			Block, Step, Status, Reason string
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout)
	}
	if got.OK || !strings.Contains(got.Error, "404") {
		t.Errorf("ok=%v error=%q, want ok=false and the 404", got.OK, got.Error)
	}
	if d := cmp.Diff([]string{"input.fw:fetch"}, got.Failed); d != "" {
		t.Errorf("failed steps (-want +got):\n%s", d)
	}
	if len(got.Steps) != 1 || got.Steps[0].Status != "failed" || !strings.Contains(got.Steps[0].Reason, "404") {
		t.Errorf("steps = %+v, want input.fw:fetch failed with the 404", got.Steps)
	}
	if strings.Contains(stderr, "running ") || strings.Contains(stderr, "FAILED") {
		t.Errorf("--json printed progress on stderr:\n%s", stderr)
	}
}

// TestJSONErrorResult: in --json mode a command that fails before it has a
// result still prints one ({"ok": false, "error", "exit_code"}).
func TestJSONErrorResult(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nothing-here")
	for _, args := range [][]string{
		{"inspect", "--json", missing},
		{"diff", "--json", missing, missing},
	} {
		code, stdout, _ := runCLI(t, args...)
		var got struct {
			OK       bool   `json:"ok"`
			Error    string `json:"error"`
			ExitCode int    `json:"exit_code"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Errorf("%v: stdout is not JSON: %v\n%s", args, err, stdout)
			continue
		}
		if code == 0 || got.OK || got.ExitCode != code || !strings.Contains(got.Error, "nothing-here") {
			t.Errorf("%v: exit %d, result %+v; want a failure naming the file, with the same exit code", args, code, got)
		}
	}
}
