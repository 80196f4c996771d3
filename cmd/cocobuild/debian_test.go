package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/debroot"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/manifest"
)

// debianSample is the sample recipe with a Debian userland as its root
// file system: bookworm's Essential:yes set, installed by mmdebstrap,
// under the sample's dm-verity (the agent is built from this module).
func debianSample(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(sampleRecipe, "sample.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	for _, r := range [][2]string{
		{"rootfs \"root\" {\n", "rootfs \"root\" {\n  packages {\n    suite          = \"bookworm\"\n    essential_only = true\n  }\n"},
		{"initramfs \"agent\" {\n", fmt.Sprintf("initramfs \"agent\" {\n  go_module = %q\n", testenv.ModuleRoot(t))},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("the sample recipe has no %q", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "debian.hcl"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRunDebianSample locks the Debian variant of the sample (every
// package pinned), builds it --locked and boots it as its default
// measurement modelled it, under TCG, to the agent's line with the
// PRETTY_NAME of /etc/os-release read from the verity root.
func TestRunDebianSample(t *testing.T) {
	for _, tool := range debroot.Tools {
		testenv.Tool(t, tool[0], tool[1])
	}
	testenv.Tool(t, "apt-get", "apt")
	testenv.Tool(t, "qemu-system-x86_64", "qemu-system-x86")
	dir := debianSample(t)
	cache := testenv.SharedCache(t)
	start := time.Now()
	code, stdout, stderr := runCLI(t, "lock", "--cache-dir", cache, dir)
	if code != 0 {
		t.Fatalf("lock: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("lock: %s (%v)", strings.TrimSpace(stdout), time.Since(start).Round(time.Second))
	out := filepath.Join(t.TempDir(), "debian")
	start = time.Now()
	code, stdout, stderr = runCLI(t, "run", "--locked", "--expect", "os-release ", "--timeout", "300s", "--cache-dir", cache, "-o", out, "-var", "acpi_qemu="+testenv.TDXQEMU(t), dir)
	if code != 0 {
		t.Fatalf("run: exit %d\nstderr:\n%s\nconsole:\n%s", code, stderr, stdout)
	}
	t.Logf("build and boot: %v", time.Since(start).Round(time.Second))
	for _, want := range []string{"cocobuild-sample-agent: release cocobuild sample 0.1.0", "cocobuild-sample-agent: os-release Debian GNU/Linux 12 (bookworm)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the console lacks %q:\n%s", want, stdout)
		} else {
			t.Logf("console: %s", want)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, a := range m.Artifacts {
		if a.Name == "rootfs.root" || a.Name == "disk.guest" {
			t.Logf("%s (%s): %d bytes", a.Name, a.Path, a.Size)
		}
	}
}
