package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

func TestInspectCpio(t *testing.T) {
	cpioTool := testenv.Tool(t, "cpio", "cpio")
	plain := testenv.ReadVector(t, "inputs/tiny-initrd.cpio")
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	files := map[string][]byte{"plain.cpio": plain, "initrd.cpio.gz": gz.Bytes()}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// What GNU cpio extracts is what inspect must describe.
	extract := filepath.Join(dir, "x")
	os.Mkdir(extract, 0o755)
	cmd := exec.Command(cpioTool, "-i", "-d", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = extract, bytes.NewReader(plain)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}

	var reports []inspectReport
	for _, name := range []string{"plain.cpio", "initrd.cpio.gz"} {
		code, stdout, stderr := runCLI(t, "inspect", "--json", filepath.Join(dir, name))
		if code != 0 {
			t.Fatalf("inspect --json %s: exit %d: %s", name, code, stderr)
		}
		var rep inspectReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("inspect --json output: %v\n%s", err, stdout)
		}
		sum := sha256.Sum256(files[name])
		if rep.Type != "initramfs" || rep.SHA256 != hex.EncodeToString(sum[:]) || rep.Size != int64(len(files[name])) {
			t.Errorf("%s: type %q sha256 %s size %d, want initramfs %x %d", name, rep.Type, rep.SHA256, rep.Size, sum, len(files[name]))
		}
		reports = append(reports, rep)
	}
	if diff := cmp.Diff(reports[0].Cpio.Entries, reports[1].Cpio.Entries); diff != "" {
		t.Errorf("entries of the plain and gzip archives differ (-plain +gzip):\n%s", diff)
	}
	if got := reports[1].Cpio.Segments; !cmp.Equal(got, []string{"gzip"}) {
		t.Errorf("segments %v, want [gzip]", got)
	}
	files0 := 0
	for _, e := range reports[0].Cpio.Entries {
		if e.Type != "file" {
			continue
		}
		files0++
		b, err := os.ReadFile(filepath.Join(extract, e.Name))
		if err != nil {
			t.Fatalf("%s: listed by inspect, not extracted by cpio: %v", e.Name, err)
		}
		sum := sha256.Sum256(b)
		if e.SHA256 != hex.EncodeToString(sum[:]) || e.Size != uint64(len(b)) {
			t.Errorf("%s: inspect says sha256 %s size %d; cpio extracted %x, %d bytes", e.Name, e.SHA256, e.Size, sum, len(b))
		}
	}
	if files0 == 0 {
		t.Error("inspect found no regular file in the vector archive")
	}

	code, stdout, _ := runCLI(t, "inspect", filepath.Join(dir, "initrd.cpio.gz"))
	if code != 0 || !strings.Contains(stdout, "initramfs, ") || !strings.Contains(stdout, "archives: gzip") {
		t.Errorf("inspect text: exit %d:\n%s", code, stdout)
	}
	for _, e := range reports[0].Cpio.Entries {
		if e.SHA256 != "" && !strings.Contains(stdout, e.SHA256+" "+e.Name) {
			t.Errorf("inspect text lacks %q:\n%s", e.SHA256+" "+e.Name, stdout)
		}
	}
}

func TestInspectBzImage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(p, testenv.FakeBzImage("6.6.6-test", 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "inspect", "--json", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep inspectReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Type != "bzimage" || rep.Kernel == nil || rep.Kernel.Release != "6.6.6-test" || rep.Kernel.BootProtocol != "2.15" || !rep.Kernel.EFIStub {
		t.Errorf("inspect --json of a bzImage: %s", stdout)
	}
	code, stdout, _ = runCLI(t, "inspect", p)
	if code != 0 || !strings.Contains(stdout, "release        6.6.6-test") {
		t.Errorf("inspect text of a bzImage: exit %d:\n%s", code, stdout)
	}
}

func TestInspectErrors(t *testing.T) {
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("neither cpio nor kernel"), 0o644)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"inspect"}, 2, "one FILE"},
		{[]string{"inspect", "a", "b"}, 2, "one FILE"},
		{[]string{"inspect", filepath.Join(t.TempDir(), "missing")}, 1, "no such file"},
		{[]string{"inspect", junk}, 1, "neither an initramfs"},
	}
	for _, tc := range tests {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}
