package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestBuildChildrenGetNoSecrets builds a small recipe (an agent-only
// initramfs, an erofs rootfs under dm-verity, a raw and qcow2 disk) with
// wrappers named go, mkfs.erofs and qemu-img first on PATH: each writes the
// environment it was given to a file and then execs the real tool. None of
// them may see COSIGN_PASSWORD, COCOBUILD_SIGNING_KEY, the variable an
// env:// reference of the recipe names, the one a -var on the command line
// names, or a variable that holds a PEM private key; the go command still
// gets the rest of the environment (PATH, HOME, GOCACHE, the user's own
// variables).
func TestBuildChildrenGetNoSecrets(t *testing.T) {
	goBin := testenv.Tool(t, "go", "golang-go")
	testenv.Tool(t, "mkfs.erofs", "erofs-utils")
	testenv.Tool(t, "qemu-img", "qemu-utils")
	gocache, err := exec.Command(goBin, "env", "GOCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOCACHE: %v", err)
	}
	t.Setenv("GOCACHE", strings.TrimSpace(string(gocache))) // shared with go test: the agent builds fast
	tools := []string{"go", "mkfs.erofs", "qemu-img"}
	runs := testenv.EnvSpy(t, tools...)

	keyPEM := func() string {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	secrets := map[string]string{
		"COSIGN_PASSWORD":       "passphrase-marker-7f3a",
		"COCOBUILD_SIGNING_KEY": keyPEM(),
		"TEST_RECIPE_KEY":       "recipe-key-marker-51c2", // env:// in the recipe; not a PEM: only its name gives it away
		"TEST_CLI_KEY":          "cli-key-marker-9d04",    // env:// in a -var of the command line
		"TEST_UNNAMED_KEY":      keyPEM(),                 // named nowhere: caught as a PEM private key
	}
	for name, v := range secrets {
		t.Setenv(name, v)
	}
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

rootfs "root" {
  file "/etc/release" {
    content = "secrets\n"
  }
  filesystem = "erofs"
  verity {
    data_device = "/dev/vda1"
    hash_device = "/dev/vda2"
  }
}

disk "guest" {
  format = ["raw", "qcow2"]
  partition "root" {
    content = rootfs.root
  }
  partition "verity" {
    content = rootfs.root.verity
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
		envs := runs(tool)
		if len(envs) == 0 {
			t.Errorf("%s: the build never ran it, want at least one run (the test proves nothing without)", tool)
			continue
		}
		leaked := map[string]bool{} // one message per tool and variable, however many runs
		for _, env := range envs {
			for k, v := range env {
				for secret, sv := range secrets {
					if (k == secret || strings.Contains(v, strings.TrimSpace(sv))) && !leaked[secret] {
						leaked[secret] = true
						t.Errorf("%s got %s (as %s), want it left out", tool, secret, k)
					}
				}
			}
		}
		if tool != "go" {
			continue // mkfs.erofs and qemu-img run with a fixed environment
		}
		for _, env := range envs {
			for k, want := range map[string]string{"TEST_KEEP": "keep-marker-20e8", "GOCACHE": strings.TrimSpace(string(gocache)), "HOME": os.Getenv("HOME"), "GOOS": "linux"} {
				if env[k] != want {
					t.Errorf("go got %s=%q, want %q", k, env[k], want)
				}
			}
			if !strings.HasPrefix(env["PATH"], os.Getenv("PATH")) {
				t.Errorf("go got PATH=%q, want the caller's %q", env["PATH"], os.Getenv("PATH"))
			}
		}
	}
}
