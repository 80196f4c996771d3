package testenv

import (
	"bytes"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// ToolsBinEnv names the directory holding the Go-built clients the tests
// run (cosign, oras): `make tools` installs them there with `go install`
// at the versions GoTools pins. Without it the tests look in
// $XDG_CACHE_HOME/cocobuild/tools/go-bin (~/.cache/...), where `make tools`
// installs by default, and then on $PATH.
const ToolsBinEnv = "COCOBUILD_TOOLS_BIN"

// GoTools are the clients built from the Go module proxy, by name: the
// package `go install` builds and the module version pinned. The Makefile's
// tools target installs the same (a test checks they agree).
var GoTools = map[string]struct{ Module, Package, Version string }{
	"cosign": {"github.com/sigstore/cosign/v3", "github.com/sigstore/cosign/v3/cmd/cosign", "v3.1.3"},
	"oras":   {"oras.land/oras", "oras.land/oras/cmd/oras", "v1.3.6"},
}

// ToolsBin is the directory `make tools` installs the Go-built clients
// into: $COCOBUILD_TOOLS_BIN, or go-bin in the cocobuild tools cache.
func ToolsBin() string {
	if d := os.Getenv(ToolsBinEnv); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "cocobuild", "tools", "go-bin")
}

// GoTool returns the path of a client of GoTools (cosign, oras) at its
// pinned version, from ToolsBin or else $PATH; it fails in CI (skips
// elsewhere) when there is none, or when the one found is another version.
func GoTool(t testing.TB, name string) string {
	t.Helper()
	want, ok := GoTools[name]
	if !ok {
		t.Fatalf("testenv.GoTool: %s is not one of the pinned Go tools", name)
	}
	p := filepath.Join(ToolsBin(), name)
	if _, err := os.Stat(p); err != nil {
		if p, err = exec.LookPath(name); err != nil {
			missing(t, "%s %s not found in %s or $PATH: run `make tools` (go install %s@%s into %s)", name, want.Version, ToolsBin(), want.Package, want.Version, ToolsBin())
			return ""
		}
	}
	// The build information (`go version -m`) names the module version
	// the binary was built from.
	bi, err := buildinfo.ReadFile(p)
	if err != nil || bi.Main.Path != want.Module || bi.Main.Version != want.Version {
		got := "unknown"
		if bi != nil {
			got = bi.Main.Path + "@" + bi.Main.Version
		}
		missing(t, "%s is %s, not %s@%s (%v): run `make tools`", p, got, want.Module, want.Version, err)
	}
	return p
}

// DockerRegistry starts Debian's docker-registry (distribution 2.8, no
// referrers API: clients fall back to the referrers tag schema) on a
// loopback port with its storage in a temporary directory, and returns
// its host:port. It is stopped when the test ends.
func DockerRegistry(t testing.TB) string {
	t.Helper()
	return DockerRegistryIn(t, t.TempDir())
}

// DockerRegistryIn is DockerRegistry with its storage below dir (blobs in
// dir/data/docker/registry/v2/blobs), for tests that damage it.
func DockerRegistryIn(t testing.TB, dir string) string {
	t.Helper()
	return dockerRegistry(t, dir, "", "")
}

// DockerRegistryAuth starts Debian's docker-registry as DockerRegistry
// does, requiring HTTP Basic authentication (its htpasswd backend, the
// way a team's private registry is commonly guarded): every request
// without user's password is answered 401 with a
// `WWW-Authenticate: Basic` challenge. The htpasswd file holds a bcrypt
// hash of password, the only form distribution accepts. Without TLS:
// distribution serves htpasswd over plain HTTP, and clients speak plain
// HTTP to loopback registries.
func DockerRegistryAuth(t testing.TB, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dockerRegistry(t, dir, fmt.Sprintf("auth:\n  htpasswd:\n    realm: cocobuild-test\n    path: %s\n", htpasswd), user+":"+password)
}

// dockerRegistry starts docker-registry with its storage below dir and
// extra configuration; userPassword (user:password, or "") is what the
// readiness probe authenticates with.
func dockerRegistry(t testing.TB, dir, extra, userPassword string) string {
	t.Helper()
	bin := Tool(t, "docker-registry", "docker-registry")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n%s",
		filepath.Join(dir, "data"), addr, extra)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("docker-registry log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if u, p, ok := strings.Cut(userPassword, ":"); ok {
			req.SetBasicAuth(u, p)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DockerConfig writes a docker config.json into a new directory, as
// `docker login` and `oras login` leave it without a credential helper
// (auths: host:port to the base64 of user:password), points
// $DOCKER_CONFIG at the directory for the rest of the test, and returns
// the file's path.
func DockerConfig(t testing.TB, auths map[string]string) string {
	t.Helper()
	type entry struct {
		Auth string `json:"auth"`
	}
	cfg := struct {
		Auths map[string]entry `json:"auths"`
	}{Auths: map[string]entry{}}
	for host, userPassword := range auths {
		cfg.Auths[host] = entry{Auth: base64.StdEncoding.EncodeToString([]byte(userPassword))}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	return p
}
