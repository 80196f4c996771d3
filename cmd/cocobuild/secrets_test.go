package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestBuildChildrenGetNoSecrets builds a small recipe (an agent-only
// initramfs, an erofs rootfs, a raw and qcow2 disk) with wrappers named go,
// mkfs.erofs and qemu-img first on PATH: each writes the environment it was
// given to a file and then execs the real tool. None of them may see
// COSIGN_PASSWORD, COCOBUILD_SIGNING_KEY, the variable an env:// reference
// of the recipe names, the one a -var on the command line names, or a
// variable that holds a PEM private key; the go command still gets the rest
// of the environment (PATH, HOME, GOCACHE, the user's own variables).
func TestBuildChildrenGetNoSecrets(t *testing.T) {
	goBin := testenv.Tool(t, "go", "golang-go")
	testenv.Tool(t, "mkfs.erofs", "erofs-utils")
	testenv.Tool(t, "qemu-img", "qemu-utils")
	out, err := exec.Command(goBin, "env", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOCACHE: %v", err)
	}
	gocache := strings.TrimSpace(string(out))
	t.Setenv("GOCACHE", gocache) // shared with go test: the agent builds fast
	tools := []string{"go", "mkfs.erofs", "qemu-img"}
	runs := testenv.EnvSpy(t, tools...)
	// TEST_RECIPE_KEY: env:// in the recipe; TEST_CLI_KEY: in a -var.
	secrets := testenv.SetSecrets(t, "TEST_RECIPE_KEY", "TEST_CLI_KEY")
	t.Setenv("TEST_KEEP", "keep-marker-20e8")

	dir := t.TempDir()
	mod := filepath.Join(dir, "agent")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"go.mod":  "module example.com/agent\n\ngo 1.22\n",
		"main.go": "package main\n\nfunc main() { println(\"agent\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	recipeDir := filepath.Join(dir, "recipe")
	if err := os.MkdirAll(recipeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	recipe := `recipe {
  name  = "secrets"
  epoch = 0
}

variable "signing_key" {
  type    = string
  default = "env://TEST_RECIPE_KEY"
}

variable "feed_key" {
  type    = string
  default = ""
}

initramfs "agent" {
  go_module = "` + mod + `"
  agent {
    package = "."
    path    = "/init"
  }
}

rootfs "data" {
  file "/etc/motd" {
    content = "no secrets here\n"
  }
  filesystem = "erofs"
}

disk "vm" {
  format = ["qcow2", "raw"]
  partition "data" {
    content = rootfs.data
  }
}
`
	if err := os.WriteFile(filepath.Join(recipeDir, "recipe.hcl"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}

	code, _, stderr := runCLI(t, "build", "--cache-dir", filepath.Join(dir, "cache"), "-o", filepath.Join(dir, "out"),
		"-var", "feed_key=env://TEST_CLI_KEY", recipeDir)
	if code != 0 {
		t.Fatalf("build: exit code %d, want 0\n%s", code, stderr)
	}
	for _, tool := range tools {
		testenv.CheckNoSecrets(t, tool, runs(tool), secrets)
	}
	// mkfs.erofs and qemu-img run with a fixed environment; the go command
	// gets the caller's.
	testenv.CheckKept(t, "go", runs("go"), map[string]string{"TEST_KEEP": "keep-marker-20e8", "GOCACHE": gocache,
		"HOME": os.Getenv("HOME"), "PATH": os.Getenv("PATH"), "GOOS": "linux"})
}
