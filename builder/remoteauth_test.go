package builder

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	ggcr "github.com/google/go-containerregistry/pkg/registry"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// randomSecret is a password no file of the test holds by chance.
func randomSecret(t *testing.T) string {
	t.Helper()
	return "pw-" + rand.Text()
}

// secretsOf are the forms a credential user:password takes in requests
// and configuration: the password, user:password and its base64.
func secretsOf(user, password string) []string {
	up := user + ":" + password
	return []string{password, up, base64.StdEncoding.EncodeToString([]byte(up))}
}

// assertNoSecret fails when a secret appears in text or in a file below
// one of dirs (outputs, caches, logs).
func assertNoSecret(t *testing.T, secrets []string, text string, dirs ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("a credential (%.6s…) appears in the build's notes or output: %q", s, text)
		}
	}
	for _, d := range dirs {
		n := 0
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return err
			}
			n++
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, s := range secrets {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("a credential (%.6s…) appears in %s", s, p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("no file below %s to look for credentials in", d)
		}
	}
}

// requiresAuth checks that the registry answers a request without
// credentials 401 with a Basic challenge: what makes the tests below
// tests of authentication.
func requiresAuth(t *testing.T, host string) {
	t.Helper()
	resp, err := http.Get("http://" + host + "/v2/cocobuild/cache/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(got, "Basic ") {
		t.Fatalf("registry without credentials: %s, WWW-Authenticate %q; want 401 and a Basic challenge", resp.Status, got)
	}
}

// TestRemoteCacheAuthenticated: with a registry that requires HTTP Basic
// authentication (Debian's docker-registry, htpasswd) and the credentials
// in a docker config.json ($DOCKER_CONFIG), build A pushes every step and
// build B, on a cold local cache in another directory, pulls every step
// and writes the same bytes. Without credentials, with a wrong password or
// with another registry's credentials only, the build succeeds locally
// with one warning naming the registry, saying authentication failed and
// how to log in. No credential appears in the notes, the outputs or the
// caches.
func TestRemoteCacheAuthenticated(t *testing.T) {
	const user = "ci"
	password := randomSecret(t)
	host := testenv.DockerRegistryAuth(t, user, password)
	requiresAuth(t, host)
	ref := "oci://" + host + "/cocobuild/cache"
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, "")
	ctx := context.Background()
	secrets := secretsOf(user, password)

	testenv.DockerConfig(t, map[string]string{host: user + ":" + password})
	cacheA, cacheB := t.TempDir(), t.TempDir()
	outA, outB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a, err := useRemote(t, load(t, dir, cacheA, testOptions{}), nil, []string{ref}).Build(ctx, outA, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Notes) != 0 {
		t.Errorf("build A notes: %q, want none", a.Notes)
	}
	dirB := t.TempDir()
	testenv.WriteKernelRecipe(t, dirB, "")
	b, err := useRemote(t, load(t, dirB, cacheB, testOptions{}), []string{ref}, nil).Build(ctx, outB, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Report.Pulled(), 2; got != want {
		t.Errorf("build B pulled %d steps, want %d: %+v (notes %q)", got, want, b.Report.Steps, b.Notes)
	}
	if got := b.Report.Ran(); got != 0 {
		t.Errorf("build B ran %d steps, want 0", got)
	}
	if len(b.Notes) != 0 {
		t.Errorf("build B notes: %q, want none", b.Notes)
	}
	if diff := cmp.Diff(testenv.TreeDigest(t, outA), testenv.TreeDigest(t, outB)); diff != "" {
		t.Errorf("outputs of A and B differ (-A +B):\n%s", diff)
	}
	if diff := cmp.Diff(cacheEntries(t, cacheA), cacheEntries(t, cacheB)); diff != "" {
		t.Errorf("cache entries of A and B differ (-A +B):\n%s", diff)
	}
	assertNoSecret(t, secrets, strings.Join(append(a.Notes, b.Notes...), "\n"), outA, outB, cacheA, cacheB)

	wrong := randomSecret(t)
	for _, tc := range []struct {
		name  string
		auths map[string]string
		why   string
	}{
		{"no credentials", map[string]string{}, "none are configured"},
		{"wrong password", map[string]string{host: user + ":" + wrong}, "refused the credentials"},
		{"another registry's credentials", map[string]string{"127.0.0.1:1": user + ":" + password}, "none are configured"},
		{"unreadable config.json", nil, "the credential configuration could not be read"},
		{"credential helper missing", map[string]string{}, "reading the credentials configured for the registry failed: exec: \"docker-credential-cocobuild-test-missing\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testenv.DockerConfig(t, tc.auths)
			var raw []byte
			switch {
			case tc.auths == nil: // cut short: a config.json that is not JSON
				b, err := os.ReadFile(testenv.DockerConfig(t, map[string]string{host: user + ":" + password}))
				if err != nil {
					t.Fatal(err)
				}
				raw = b[:len(b)-3]
			case strings.Contains(tc.name, "helper"): // as docker leaves it on a desktop
				raw = []byte(`{"auths":{},"credHelpers":{"` + host + `":"cocobuild-test-missing"}}`)
			}
			if raw != nil {
				if err := os.WriteFile(cfg, raw, 0o600); err != nil {
					t.Fatal(err)
				}
				t.Setenv("DOCKER_CONFIG", filepath.Dir(cfg))
			}
			cache, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
			res, err := useRemote(t, load(t, dirB, cache, testOptions{}), []string{ref}, []string{ref}).Build(ctx, out, 2, nil)
			if err != nil {
				t.Fatalf("build with %s: %v", tc.name, err)
			}
			if got, want := res.Report.Ran(), 2; got != want {
				t.Errorf("ran %d steps, want %d", got, want)
			}
			if got := res.Report.Pulled(); got != 0 {
				t.Errorf("pulled %d steps, want 0", got)
			}
			if len(res.Notes) != 1 {
				t.Fatalf("notes = %q, want one warning", res.Notes)
			}
			t.Logf("warning: %s", res.Notes[0])
			for _, want := range []string{ref, "authentication failed", tc.why, "oras login " + host, "docker login " + host, "steps build locally"} {
				if !strings.Contains(res.Notes[0], want) {
					t.Errorf("warning %q does not say %q", res.Notes[0], want)
				}
			}
			if diff := cmp.Diff(testenv.TreeDigest(t, outA), testenv.TreeDigest(t, out)); diff != "" {
				t.Errorf("outputs of A and of the local build differ (-A +local):\n%s", diff)
			}
			assertNoSecret(t, append(secrets, secretsOf(user, wrong)...), strings.Join(res.Notes, "\n"), out, cache)
		})
	}
}

// TestRemoteCacheAuthOras: the oras CLI is the oracle of the credential
// configuration. It reads the config.json the tests write (it lists the
// tags build A pushed to a registry that requires authentication, and
// fails without it), and a build pulls every step with the config.json
// `oras login --registry-config` writes.
func TestRemoteCacheAuthOras(t *testing.T) {
	oras := testenv.GoTool(t, "oras")
	const user = "ci"
	password := randomSecret(t)
	host := testenv.DockerRegistryAuth(t, user, password)
	requiresAuth(t, host)
	ref := "oci://" + host + "/cocobuild/cache"
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, "")
	ctx := context.Background()

	cfg := testenv.DockerConfig(t, map[string]string{host: user + ":" + password})
	a, err := useRemote(t, load(t, dir, t.TempDir(), testOptions{}), nil, []string{ref}).Build(ctx, filepath.Join(t.TempDir(), "a"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Notes) != 0 {
		t.Fatalf("build A notes: %q, want none", a.Notes)
	}
	tags := func(cfg string) (string, error) {
		cmd := exec.Command(oras, "repo", "tags", "--plain-http", "--registry-config", cfg, host+"/cocobuild/cache")
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // nothing but cfg
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	out, err := tags(cfg)
	if err != nil {
		t.Fatalf("oras repo tags with the config.json the test wrote: %v\n%s", err, out)
	}
	for _, s := range a.Report.Steps {
		if !strings.Contains(out, s.Key) {
			t.Errorf("oras repo tags: %q lacks the key of step %s:%s (%s)", out, s.Block, s.Step, s.Key)
		}
	}
	empty := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(empty, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := tags(empty); err == nil {
		t.Errorf("oras repo tags without credentials succeeded: %s; want the registry to refuse", out)
	}

	// The file oras login writes, read by cocobuild.
	loginDir := t.TempDir()
	login := exec.Command(oras, "login", "--plain-http", "--registry-config", filepath.Join(loginDir, "config.json"), "-u", user, "--password-stdin", host)
	login.Env = append(os.Environ(), "HOME="+t.TempDir())
	login.Stdin = strings.NewReader(password)
	if b, err := login.CombinedOutput(); err != nil {
		t.Fatalf("oras login: %v\n%s", err, b)
	}
	t.Setenv("DOCKER_CONFIG", loginDir)
	b, err := useRemote(t, load(t, dir, t.TempDir(), testOptions{}), []string{ref}, nil).Build(ctx, filepath.Join(t.TempDir(), "b"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Report.Pulled(), 2; got != want {
		t.Errorf("build with the config.json of oras login pulled %d steps, want %d (notes %q)", got, want, b.Notes)
	}
}

// publicCache starts go-containerregistry's registry behind HTTP Basic
// authentication for writes only: anyone may pull, user:password may push
// (a request that writes without them, or with others, is answered 401
// with a `WWW-Authenticate: Basic` challenge). It models a public cache,
// or read-only credentials for everyone but CI, which Debian's
// docker-registry cannot (its htpasswd guards reads and writes alike).
func publicCache(t *testing.T, user, password string) string {
	t.Helper()
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="cocobuild-test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
				return
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestRemoteCachePushRefusedStillPulls: a push refused for want of
// credentials (none, or wrong ones) to a repository that anyone may pull
// from is one warning saying so and how to log in; the repository is
// still pulled from for the rest of the build.
func TestRemoteCachePushRefusedStillPulls(t *testing.T) {
	const user = "ci"
	password := randomSecret(t)
	host := publicCache(t, user, password)
	ref := "oci://" + host + "/cocobuild/cache"
	ctx := context.Background()

	testenv.DockerConfig(t, map[string]string{host: user + ":" + password})
	rm, err := OpenRemote(nil, []string{ref}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	shared := strings.Repeat("5a", 32)
	rm.Push(ctx, storeEntry(t, openCache(t), shared, map[string]string{"f": "shared"}), "")
	rm.Wait()
	if w := rm.Warnings(); len(w) != 0 {
		t.Fatalf("push with the right credentials: warnings %q", w)
	}

	wrong := randomSecret(t)
	for _, tc := range []struct {
		name  string
		auths map[string]string
		why   string
	}{
		{"no credentials", map[string]string{}, "none are configured"},
		{"wrong password", map[string]string{host: user + ":" + wrong}, "401 Unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testenv.DockerConfig(t, tc.auths)
			rm, err := OpenRemote([]string{ref}, []string{ref}, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c := openCache(t)
			for i := range 2 {
				rm.Push(ctx, storeEntry(t, openCache(t), strings.Repeat(fmt.Sprintf("6%d", i), 32), map[string]string{"f": "new " + tc.name}), "")
				rm.Wait()
			}
			w := rm.Warnings()
			if len(w) != 1 {
				t.Fatalf("warnings = %q, want one", w)
			}
			for _, want := range []string{ref, "authentication failed", tc.why, "pushing step", "oras login " + host, "not pushing to it"} {
				if !strings.Contains(w[0], want) {
					t.Errorf("warning %q does not say %q", w[0], want)
				}
			}
			if got := rm.Pull(ctx, c, shared); got != ref {
				t.Errorf("pull after a refused push: from %q, want %q (warnings %q)", got, ref, rm.Warnings())
			}
			if got := rm.Has(ctx, shared); got != ref {
				t.Errorf("plan after a refused push: %q holds the step, want %q", got, ref)
			}
			assertNoSecret(t, append(secretsOf(user, password), secretsOf(user, wrong)...), strings.Join(rm.Warnings(), "\n"), c.Dir)
		})
	}
}

// TestRemoteCacheRunsOnlyUnshareable: build A of a recipe that measures a
// kernel for TDX and publishes a signed release fills a remote cache;
// build B, on a cold local cache in another directory, pulls every step
// and runs only what cannot be shared: the publish block's signing, a
// post-build node that runs on every build that publishes. Its outputs,
// the signed release included, are byte-identical to A's, and the release
// verifies against them.
func TestRemoteCacheRunsOnlyUnshareable(t *testing.T) {
	host := testenv.DockerRegistry(t)
	ref := "oci://" + host + "/cocobuild/cache"
	dir := signedRecipe(t, "", "", "")
	ctx := context.Background()
	outA, outB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a, err := useRemote(t, load(t, dir, t.TempDir(), testOptions{}), nil, []string{ref}).Build(ctx, outA, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	dirB := t.TempDir()
	for _, f := range []string{"r.hcl", "ovmf.fd", "vmlinuz"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := useRemote(t, load(t, dirB, t.TempDir(), testOptions{}), []string{ref}, nil).Build(ctx, outB, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every step of A is pulled; what is left is the publish block's
	// signing, which runs on every build, as in A.
	status := func(rep *Report) map[string]string {
		out := map[string]string{}
		for _, s := range rep.Steps {
			out[s.Block+":"+s.Step] = string(s.Status) + " " + s.Remote
		}
		return out
	}
	want := map[string]string{"publish.t:post-build": string(StatusAlways) + " "}
	for _, s := range a.Report.Steps {
		if s.Key != "" {
			want[s.Block+":"+s.Step] = string(StatusCached) + " " + ref
		}
	}
	if len(want) < 5 {
		t.Fatalf("build A's steps: %+v, want the two inputs, the kernel, the measurement and the signing", a.Report.Steps)
	}
	if diff := cmp.Diff(want, status(b.Report)); diff != "" {
		t.Errorf("build B's steps (status and remote) differ (-want +got):\n%s", diff)
	}
	if got := status(a.Report)["publish.t:post-build"]; got != string(StatusAlways)+" " {
		t.Errorf("build A's publish.t:post-build: %q, want %q", got, StatusAlways)
	}
	// The registry holds the keyed steps and nothing of the signing.
	resp, err := http.Get("http://" + host + "/v2/cocobuild/cache/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tags struct{ Tags []string }
	if err := json.NewDecoder(resp.Body).Decode(&tags); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range a.Report.Steps {
		if s.Key != "" {
			keys = append(keys, s.Key)
		}
	}
	if diff := cmp.Diff(keys, tags.Tags, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("the registry's tags are not the keys of A's steps (-keys +tags):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(outB, "publish", "t")); err != nil {
		t.Errorf("build B did not publish: %v", err)
	}
	verifyOut(t, outB)
	if diff := cmp.Diff(testenv.TreeDigest(t, outA), testenv.TreeDigest(t, outB)); diff != "" {
		t.Errorf("outputs of A and B differ (-A +B):\n%s", diff)
	}
}
