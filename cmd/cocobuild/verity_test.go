package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestVerityCLI formats a file with `cocobuild verity format` and with
// veritysetup (same salt and UUID) and requires the same root hash and
// hash file; verify accepts it and refuses a flipped byte.
func TestVerityCLI(t *testing.T) {
	vs := testenv.Tool(t, "veritysetup", "cryptsetup-bin")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i * 7 / 3)
	}
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(dir, "ours")
	code, stdout, stderr := runCLI(t, "verity", "format", "--json", data, ours)
	if code != 0 {
		t.Fatalf("verity format: exit %d\n%s", code, stderr)
	}
	var r struct {
		RootHash string `json:"root_hash"`
		Salt     string `json:"salt"`
		UUID     string `json:"uuid"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	theirs := filepath.Join(dir, "theirs")
	out, err := exec.Command(vs, "format", data, theirs, "--salt", r.Salt, "--uuid", r.UUID).CombinedOutput()
	if err != nil {
		t.Fatalf("veritysetup format: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Root hash:\s+([0-9a-f]+)`).FindStringSubmatch(string(out))
	if m == nil || m[1] != r.RootHash {
		t.Errorf("root hash %s, veritysetup says:\n%s", r.RootHash, out)
	}
	x, _ := os.ReadFile(ours)
	y, _ := os.ReadFile(theirs)
	if string(x) != string(y) {
		t.Error("hash file differs from veritysetup's")
	}
	code, stdout, stderr = runCLI(t, "verity", "verify", data, ours, r.RootHash)
	if code != 0 || !strings.Contains(stdout, "verified") {
		t.Errorf("verity verify: exit %d\n%s%s", code, stdout, stderr)
	}
	b[12345] ^= 1
	os.WriteFile(data, b, 0o644)
	if code, _, stderr = runCLI(t, "verity", "verify", data, ours, r.RootHash); code != 1 {
		t.Errorf("verity verify of changed data: exit %d, want 1\n%s", code, stderr)
	}
	for _, args := range [][]string{
		{"verity", "format", "--hash", "md5", data, ours},
		{"verity", "format", "--salt", "xyz", data, ours},
		{"verity", "format"},
	} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// TestVerityVerifyRefusesSpecialFiles: a pipe or a device as DATA or HASH
// is refused at once (exit 2), before a byte is read.
func TestVerityVerifyRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	root := strings.Repeat("0", 64)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"fifo data", []string{fifo, plain, root}, "DATA: " + fifo + " is a named pipe"},
		{"fifo hash", []string{plain, fifo, root}, "HASH: " + fifo + " is a named pipe"},
		{"device hash", []string{plain, "/dev/zero", root}, "HASH: /dev/zero is a device"},
	} {
		start := time.Now()
		code, _, stderr := runCLI(t, append([]string{"verity", "verify"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.name, code, stderr, exitUsage, tc.want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %v; want a refusal at once", tc.name, d)
		}
	}
}
