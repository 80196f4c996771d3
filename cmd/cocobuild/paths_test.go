package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestRelativePaths builds, from a fresh working directory, a recipe whose
// initramfs holds the agent (built by the go command in the module, then
// read back from the cache) with every path relative: the recipe, -o,
// --cache-dir and -var-file, and go_module, which is relative to the
// recipe's directory (here one level below the working directory), as
// docs/recipes.md says. The output must equal the same build with absolute
// paths, and nothing may be written into the Go module.
func TestRelativePaths(t *testing.T) {
	testenv.Tool(t, "go", "golang-go")
	module, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "recipe"), 0o755); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(filepath.Join(work, "recipe"), module)
	if err != nil {
		t.Fatal(err)
	}
	recipe := `variable "greeting" {
  default = "hello"
}

initramfs "a" {
  go_module = "` + rel + `"
  agent {
    package = "./cmd/sample-agent"
    path    = "/usr/bin/agent"
  }
  file "/etc/motd" {
    content = var.greeting
  }
}
`
	if err := os.WriteFile(filepath.Join(work, "recipe", "r.hcl"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "vars.hcl"), []byte("greeting = \"hi\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(module)

	cmd := exec.Command(os.Args[0], "build", "--cache-dir", "cache", "-o", "out", "-var-file", "vars.hcl", "recipe")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "COCOBUILD_TEST_MAIN=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build with relative paths: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(work, "cache", "steps")); err != nil {
		t.Errorf("the cache is not where --cache-dir cache says: %v", err)
	}

	abs := filepath.Join(t.TempDir(), "out")
	if code, _, stderr := runCLI(t, "build", "--cache-dir", t.TempDir(), "-o", abs, "-var-file", filepath.Join(work, "vars.hcl"), filepath.Join(work, "recipe")); code != 0 {
		t.Fatalf("build with absolute paths: exit %d\n%s", code, stderr)
	}
	if diff := cmp.Diff(testenv.TreeDigest(t, abs), testenv.TreeDigest(t, filepath.Join(work, "out"))); diff != "" {
		t.Errorf("relative and absolute builds differ (-absolute +relative):\n%s", diff)
	}
	after, _ := os.ReadDir(module)
	if len(after) != len(before) {
		var names []string
		for _, e := range after {
			names = append(names, e.Name())
		}
		t.Errorf("the build wrote into the Go module %s: it now holds %v", module, names)
	}
}
