package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// EnvSpy puts a wrapper for each named tool first on PATH (with t.Setenv):
// the wrapper writes the environment it was started with to a file and then
// execs the real tool, found on PATH now (a missing tool fails in CI and
// skips elsewhere, as Tool does). The returned function gives, for a tool,
// the environment of each of its runs so far, in no particular order.
func EnvSpy(t testing.TB, tools ...string) func(tool string) []map[string]string {
	t.Helper()
	envBin := Tool(t, "env", "coreutils")
	dir := t.TempDir()
	wrap, seen := filepath.Join(dir, "bin"), filepath.Join(dir, "seen")
	for _, d := range []string{wrap, seen} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range tools {
		real := Tool(t, name, name)
		// env -0: values may span lines (PEM keys); $$ keeps runs apart.
		script := fmt.Sprintf("#!/bin/sh\n%s -0 > %s/%s.$$\nexec %s \"$@\"\n", envBin, seen, name, real)
		if err := os.WriteFile(filepath.Join(wrap, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", wrap+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func(tool string) []map[string]string {
		t.Helper()
		files, err := filepath.Glob(filepath.Join(seen, tool+".*"))
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(files)
		var runs []map[string]string
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			env := map[string]string{}
			for _, kv := range strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00") {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			runs = append(runs, env)
		}
		return runs
	}
}

// KeyPEMs returns a fresh P-256 private key as a PEM block of type privType
// (e.g. "PRIVATE KEY", "EC PRIVATE KEY") and its public key as a PUBLIC KEY
// PEM.
func KeyPEMs(t testing.TB, privType string) (priv, pub string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: privType, Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
}

// SetSecrets sets (with t.Setenv) what no child process of cocobuild may
// see: COSIGN_PASSWORD, COCOBUILD_SIGNING_KEY and TESTENV_UNNAMED_KEY
// holding fresh PEM private keys (the last named by no env:// reference),
// and each of named, holding a marker that is no PEM (only its name gives
// it away). It returns them, name to value.
func SetSecrets(t testing.TB, named ...string) map[string]string {
	t.Helper()
	signing, _ := KeyPEMs(t, "PRIVATE KEY")
	unnamed, _ := KeyPEMs(t, "EC PRIVATE KEY")
	secrets := map[string]string{
		"COSIGN_PASSWORD":       "passphrase-marker-7f3a",
		"COCOBUILD_SIGNING_KEY": signing,
		"TESTENV_UNNAMED_KEY":   unnamed,
	}
	for _, n := range named {
		secrets[n] = "marker-of-" + n
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	return secrets
}

// CheckNoSecrets reports each secret (as SetSecrets set them) that any of
// the environments of a tool's runs holds, by name or by value, once.
func CheckNoSecrets(t testing.TB, tool string, envs []map[string]string, secrets map[string]string) {
	t.Helper()
	if len(envs) == 0 {
		t.Errorf("%s never ran, want at least one run (the check proves nothing without)", tool)
	}
	leaked := map[string]bool{}
	for _, env := range envs {
		for k, v := range env {
			for name, sv := range secrets {
				if (k == name || strings.Contains(v, strings.TrimSpace(sv))) && !leaked[name] {
					leaked[name] = true
					t.Errorf("%s got %s (as %s), want it left out", tool, name, k)
				}
			}
		}
	}
}

// CheckKept reports each variable of want that a run of a tool did not get
// with the wanted value.
func CheckKept(t testing.TB, tool string, envs []map[string]string, want map[string]string) {
	t.Helper()
	for i, env := range envs {
		for k, v := range want {
			if env[k] != v {
				t.Errorf("%s (run %d of %d) got %s=%q, want %q", tool, i+1, len(envs), k, env[k], v)
			}
		}
	}
}
