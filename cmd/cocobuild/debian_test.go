package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/debroot"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/manifest"
)

// TestRunDebianSample builds the sample --locked (its root file system is
// bookworm's Essential:yes set, every package pinned in the committed
// cocobuild.lock.hcl) and boots it as its default measurement modelled
// it, to the agent's line with the PRETTY_NAME of /etc/os-release read
// from the verity root, and the lock pins the set dpkg's status lists.
func TestRunDebianSample(t *testing.T) {
	for _, tool := range debroot.Tools {
		testenv.Tool(t, tool[0], tool[1])
	}
	testenv.Tool(t, "apt-get", "apt")
	testenv.Tool(t, "qemu-system-x86_64", "qemu-system-x86")
	lock, diags := input.ReadLock(input.LockPath(sampleRecipe))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	set, ok := lock.Packages["rootfs.root"]
	if !ok || set.Suite != "bookworm" || len(set.Packages) < 20 {
		t.Fatalf("the sample's lock pins %+v for rootfs.root, want bookworm's Essential:yes set", set)
	}
	out := filepath.Join(t.TempDir(), "sample")
	start := time.Now()
	code, stdout, stderr := runCLI(t, "run", "--locked", "--expect", "os-release ", "--timeout", "600s", "--cache-dir", testenv.SharedCache(t),
		"-o", out, "-var", "acpi_qemu="+testenv.TDXQEMU(t), sampleRecipe)
	if code != 0 {
		t.Fatalf("run: exit %d\nstderr:\n%s\nconsole:\n%s", code, stderr, stdout)
	}
	t.Logf("build and boot: %v", time.Since(start).Round(time.Second))
	for _, want := range []string{"cocobuild-sample-agent: release cocobuild sample 0.2.0", "cocobuild-sample-agent: os-release Debian GNU/Linux 12 (bookworm)"} {
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
