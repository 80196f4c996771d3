package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestRemoteCacheAuthCLI: build and plan against a registry that requires
// authentication (Debian's docker-registry with htpasswd), with the
// credentials in a docker config.json. With them, a cold build pulls every
// step and prints no warning; with a wrong password, build and plan
// succeed, build builds locally, and each prints one warning, in text and
// in --json, saying authentication failed and how to log in. No form of
// either password is printed or written to the outputs or the caches.
func TestRemoteCacheAuthCLI(t *testing.T) {
	const user = "ci"
	password, wrong := "pw-"+rand.Text(), "pw-"+rand.Text()
	host := testenv.DockerRegistryAuth(t, user, password)
	ref := "oci://" + host + "/cocobuild/cache"
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, "")
	var printed strings.Builder // everything the commands print
	var dirs []string           // every output and cache directory
	run := func(args ...string) (int, string, string) {
		t.Helper()
		cache, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
		dirs = append(dirs, cache)
		full := append([]string{args[0], "--cache-dir", cache}, args[1:]...)
		if args[0] == "build" {
			full = append(full, "-o", out)
			dirs = append(dirs, out)
		}
		code, stdout, stderr := runCLI(t, append(full, dir)...)
		printed.WriteString(stdout + stderr)
		return code, stdout, stderr
	}

	testenv.DockerConfig(t, map[string]string{host: user + ":" + password})
	if code, stdout, stderr := run("build", "--cache-to", ref); code != 0 || strings.Contains(stdout+stderr, "WARNING") {
		t.Fatalf("build --cache-to with credentials: exit %d, want 0 and no warning\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr := run("build", "--json", "--cache-from", ref)
	var got buildJSON
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil {
		t.Fatalf("build --json --cache-from with credentials: exit %d, %v\n%s%s", code, err, stdout, stderr)
	}
	if got.Pulled != 2 || got.Ran != 0 || len(got.Notes) != 0 {
		t.Errorf("cold build with credentials: pulled %d, ran %d, notes %q; want 2, 0, none", got.Pulled, got.Ran, got.Notes)
	}

	testenv.DockerConfig(t, map[string]string{host: user + ":" + wrong})
	for _, args := range [][]string{
		{"build", "--cache-from", ref, "--cache-to", ref},
		{"build", "--json", "--cache-from", ref, "--cache-to", ref},
		{"plan", "--cache-from", ref},
		{"plan", "--json", "--cache-from", ref},
	} {
		code, stdout, stderr := run(args...)
		if code != 0 {
			t.Errorf("%q with a wrong password: exit %d, want 0\n%s%s", args, code, stdout, stderr)
			continue
		}
		out := stdout + stderr
		if n := strings.Count(out, "authentication failed"); n != 1 {
			t.Errorf("%q with a wrong password: %d warnings that authentication failed, want 1\n%s", args, n, out)
		}
		for _, want := range []string{ref, "oras login " + host, "docker login " + host} {
			if !strings.Contains(out, want) {
				t.Errorf("%q with a wrong password: the output does not say %q\n%s", args, want, out)
			}
		}
		if args[0] == "build" && args[1] == "--json" {
			var got buildJSON
			if err := json.Unmarshal([]byte(stdout), &got); err != nil || got.Ran != 2 || got.Pulled != 0 || len(got.Notes) != 1 {
				t.Errorf("build --json with a wrong password: ran %d, pulled %d, notes %q (%v); want 2, 0 and one note", got.Ran, got.Pulled, got.Notes, err)
			}
		}
	}

	var secrets []string
	for _, pw := range []string{password, wrong} {
		up := user + ":" + pw
		secrets = append(secrets, pw, up, base64.StdEncoding.EncodeToString([]byte(up)))
	}
	for _, s := range secrets {
		if strings.Contains(printed.String(), s) {
			t.Errorf("a credential (%.6s…) is printed", s)
		}
	}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(p)
			for _, s := range secrets {
				if err == nil && bytes.Contains(b, []byte(s)) {
					t.Errorf("a credential (%.6s…) is in %s", s, p)
				}
			}
			return err
		})
		if err != nil && !os.IsNotExist(err) {
			t.Error(err)
		}
	}
}
