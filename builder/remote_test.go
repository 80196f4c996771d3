package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/hashicorp/hcl/v2"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/recipes"
)

// remoteRegistries start the registries the remote cache is tested
// against, on 127.0.0.1: go-containerregistry's in-process registry and
// Debian's docker-registry (distribution).
var remoteRegistries = []struct {
	name  string
	start func(t *testing.T) string // host:port
}{
	{"ggcr", func(t *testing.T) string {
		srv := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}},
	{"docker-registry", func(t *testing.T) string { return testenv.DockerRegistry(t) }},
}

// useRemote opens from and to (oci:// references) for l, with a short
// timeout.
func useRemote(t *testing.T, l *Loaded, from, to []string) *Loaded {
	t.Helper()
	if err := l.UseRemote(from, to, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return l
}

// cacheEntries lists the step keys in a cache with their result.json.
func cacheEntries(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "steps"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, "steps", e.Name(), "result.json"))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// TestRemoteCacheSharesSteps: build A on a cold local cache fills the
// remote cache; build B, on another cold local cache in another
// directory, pulls every step, runs none (only the probes, which make the
// keys, run on every build), and writes the same bytes.
func TestRemoteCacheSharesSteps(t *testing.T) {
	for _, reg := range remoteRegistries {
		t.Run(reg.name, func(t *testing.T) {
			ref := "oci://" + reg.start(t) + "/cocobuild/cache"
			dir := t.TempDir()
			testenv.WriteKernelRecipe(t, dir, "")
			cacheA, cacheB := t.TempDir(), t.TempDir()
			outA, outB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
			ctx := context.Background()

			a, err := useRemote(t, load(t, dir, cacheA, testOptions{}), nil, []string{ref}).Build(ctx, outA, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := a.Report.Ran(), 2; got != want {
				t.Errorf("build A ran %d steps, want %d", got, want)
			}
			if len(a.Notes) != 0 {
				t.Errorf("build A notes: %q, want none", a.Notes)
			}

			// B: the same recipe copied to another directory.
			dirB := t.TempDir()
			for _, f := range []string{"r.hcl", "vmlinuz"} {
				b, err := os.ReadFile(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dirB, f), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			plan, err := useRemote(t, load(t, dirB, cacheB, testOptions{}), []string{ref}, nil).Plan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The input step is to pull; the kernel step waits for its result.
			if got, want := plan.ToPull(), 1; got != want {
				t.Errorf("plan of B: %d steps to pull, want %d: %+v", got, want, plan.Steps)
			}
			b, err := useRemote(t, load(t, dirB, cacheB, testOptions{}), []string{ref}, nil).Build(ctx, outB, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := b.Report.Ran(), 0; got != want {
				t.Errorf("build B ran %d steps, want %d: %+v", got, want, b.Report.Steps)
			}
			if got, want := b.Report.Pulled(), 2; got != want {
				t.Errorf("build B pulled %d steps, want %d: %+v", got, want, b.Report.Steps)
			}
			for _, s := range b.Report.Steps {
				if s.Remote != ref {
					t.Errorf("build B step %s:%s: remote %q, want %q", s.Block, s.Step, s.Remote, ref)
				}
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
		})
	}
}

// TestRemoteCacheCorruptBlobRebuilt: a blob damaged on the registry's
// disk is detected when pulled (a warning) and the step is built locally,
// with the bytes build A made.
func TestRemoteCacheCorruptBlobRebuilt(t *testing.T) {
	store := t.TempDir()
	ref := "oci://" + testenv.DockerRegistryIn(t, store) + "/cocobuild/cache"
	dir := t.TempDir()
	kernel := testenv.WriteKernelRecipe(t, dir, "")
	ctx := context.Background()
	outA, outB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	if _, err := useRemote(t, load(t, dir, t.TempDir(), testOptions{}), nil, []string{ref}).Build(ctx, outA, 2, nil); err != nil {
		t.Fatal(err)
	}
	// The kernel's bytes, as the registry keeps them: flip one.
	sum := testenv.SHA256Hex(kernel)
	damageFile(t, blobPath(filepath.Join(store, "data/docker/registry/v2/blobs/sha256"), sum))
	cacheB := t.TempDir()
	res, err := useRemote(t, load(t, dir, cacheB, testOptions{}), []string{ref}, nil).Build(ctx, outB, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Both steps' results hold the kernel's bytes: both are built here.
	if got, want := res.Report.Ran(), 2; got != want {
		t.Errorf("build B ran %d steps, want %d: %+v", got, want, res.Report.Steps)
	}
	if got := res.Report.Pulled(); got != 0 {
		t.Errorf("build B pulled %d steps, want 0", got)
	}
	if len(res.Notes) == 0 || !strings.Contains(strings.Join(res.Notes, "\n"), "is not what its record states") || !strings.Contains(strings.Join(res.Notes, "\n"), sum) {
		t.Errorf("build B notes = %q, want a warning naming the damaged blob sha256 %s", res.Notes, sum)
	}
	if diff := cmp.Diff(testenv.TreeDigest(t, outA), testenv.TreeDigest(t, outB)); diff != "" {
		t.Errorf("outputs of A and B differ (-A +B):\n%s", diff)
	}
}

// storeEntry makes a local cache entry of key with the given files.
func storeEntry(t *testing.T, c *Cache, key string, files map[string]string) *recipes.Result {
	t.Helper()
	work, err := c.TempDir("test")
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range files {
		f := filepath.Join(work, "files", filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.Store(key, work, map[string]any{"n": len(files)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func openCache(t *testing.T) *Cache {
	t.Helper()
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRemoteCacheConcurrentPushers: pushers of one key at once (of the
// same result, and of two different results, as a step that is not
// reproducible makes) leave one entry that pulls whole and checks out:
// one of the results, never a mix.
func TestRemoteCacheConcurrentPushers(t *testing.T) {
	for _, reg := range remoteRegistries {
		t.Run(reg.name, func(t *testing.T) {
			ref := "oci://" + reg.start(t) + "/cocobuild/cache"
			key := strings.Repeat("ab", 32)
			variants := []map[string]string{
				{"a/one": strings.Repeat("1", 100000), "two": "2"},
				{"a/one": strings.Repeat("3", 100000), "two": "4", "three": "x"},
			}
			var results []*recipes.Result
			var wg sync.WaitGroup
			for i := range 6 {
				rm, err := OpenRemote(nil, []string{ref}, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				res := storeEntry(t, openCache(t), key, variants[i%2])
				results = append(results, res)
				wg.Add(1)
				go func() {
					defer wg.Done()
					rm.Push(context.Background(), res, "")
					rm.Wait()
					if w := rm.Warnings(); len(w) != 0 {
						t.Errorf("pusher %d: warnings %q", i, w)
					}
				}()
			}
			wg.Wait()
			rm, err := OpenRemote([]string{ref}, nil, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c := openCache(t)
			if got := rm.Pull(context.Background(), c, key); got != ref {
				t.Fatalf("pull after concurrent pushes: from %q, want %q (warnings %q)", got, ref, rm.Warnings())
			}
			got, ok := c.Lookup(key)
			if !ok {
				t.Fatal("pulled entry is not in the local cache")
			}
			var match bool
			for _, want := range results[:2] {
				match = match || cmp.Equal(want.Files, got.Files)
			}
			if !match {
				t.Errorf("pulled files %+v are neither pushed result", got.Files)
			}
			for _, f := range got.Files {
				if err := verifyFile(filepath.Join(got.Dir, f.Path), f.SHA256); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestRemoteCachePartialPush: blobs pushed without their manifest (a
// pusher killed before it tagged) are no entry; a manifest whose record
// and layers disagree, or whose layer is missing, is refused with a
// warning. Nothing of them enters the local cache.
func TestRemoteCachePartialPush(t *testing.T) {
	for _, reg := range remoteRegistries {
		t.Run(reg.name, func(t *testing.T) {
			ref := "oci://" + reg.start(t) + "/cocobuild/cache"
			rm, err := OpenRemote([]string{ref}, []string{ref}, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			rr := rm.To[0]
			ctx := context.Background()

			// Blobs only.
			key := strings.Repeat("01", 32)
			res := storeEntry(t, openCache(t), key, map[string]string{"f": "partial"})
			for _, f := range res.Files {
				if err := rm.pushFile(ctx, rr, layerOf(f), filepath.Join(res.Dir, f.Path)); err != nil {
					t.Fatal(err)
				}
			}
			c := openCache(t)
			if got := rm.Pull(ctx, c, key); got != "" {
				t.Errorf("pulled a key whose manifest was never pushed, from %q", got)
			}
			if w := rm.Warnings(); len(w) != 0 {
				t.Errorf("warnings for a key not in the cache: %q", w)
			}

			// A manifest whose layer is another file than its record's.
			key2 := strings.Repeat("02", 32)
			res2 := storeEntry(t, openCache(t), key2, map[string]string{"f": "honest"})
			other := storeEntry(t, openCache(t), strings.Repeat("03", 32), map[string]string{"f": "swapped"})
			rm.Push(ctx, other, "")
			rm.Wait()
			rb, err := record(res2)
			if err != nil {
				t.Fatal(err)
			}
			mb, err := StepManifest(res2, rb)
			if err != nil {
				t.Fatal(err)
			}
			mb = bytes.ReplaceAll(mb, []byte(res2.Files[0].SHA256), []byte(other.Files[0].SHA256))
			pushManifest(t, rm, rr, key2, mb, rb)
			if got := rm.Pull(ctx, c, key2); got != "" {
				t.Errorf("pulled an entry whose layer is not its record's file, from %q", got)
			}
			if w := strings.Join(rm.Warnings(), "\n"); !strings.Contains(w, "is not the record's file") {
				t.Errorf("warnings = %q, want one saying the layer is not the record's file", w)
			}
			if _, ok := c.Lookup(key2); ok {
				t.Error("a refused entry is in the local cache")
			}
		})
	}
}

func layerOf(f recipes.FileDigest) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: StepFileMediaType, Digest: digest.Digest("sha256:" + f.SHA256), Size: f.Size}
}

// pushManifest pushes a record and a manifest as they are, tagged key.
func pushManifest(t *testing.T, rm *Remote, rr *RemoteRepo, key string, mb, rb []byte) {
	t.Helper()
	ctx := context.Background()
	if err := rm.pushBytes(ctx, rr, ocispec.Descriptor{MediaType: StepResultType, Digest: digest.FromBytes(rb), Size: int64(len(rb))}, rb); err != nil {
		t.Fatal(err)
	}
	md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
	if err := rr.repo.PushReference(ctx, md, bytes.NewReader(mb), key); err != nil {
		t.Fatal(err)
	}
}

// TestRemoteCacheDownOrSlow: a registry that refuses connections, reads a
// request and answers nothing, or accepts TCP connections and never reads
// them is a warning, within the timeout, and the build builds locally.
func TestRemoteCacheDownOrSlow(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	t.Cleanup(func() { close(hang); slow.Close() })
	// A listener that never accepts: the kernel completes the TCP
	// handshake (into the backlog) and nothing ever answers.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mute.Close() })
	for _, tc := range []struct{ name, host string }{
		{"down", closed},
		{"slow", strings.TrimPrefix(slow.URL, "http://")},
		{"accepts TCP, never answers", mute.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := "oci://" + tc.host + "/cocobuild/cache"
			dir := t.TempDir()
			testenv.WriteKernelRecipe(t, dir, "")
			ld := load(t, dir, t.TempDir(), testOptions{})
			if err := ld.UseRemote([]string{ref}, []string{ref}, time.Second); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			res, err := ld.Build(context.Background(), filepath.Join(t.TempDir(), "out"), 2, nil)
			if err != nil {
				t.Fatalf("build with the registry %s: %v", tc.name, err)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("build took %v with the registry %s, want the timeout to bound it", d, tc.name)
			}
			if got, want := res.Report.Ran(), 2; got != want {
				t.Errorf("ran %d steps, want %d", got, want)
			}
			// One warning: the registry is not asked again in this build.
			if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "not using it for the rest of this build") {
				t.Errorf("notes = %q, want one warning that the registry is not used", res.Notes)
			}
		})
	}
}

// TestRemoteCacheOrasReadsEntry: the oras CLI, a consumer of OCI
// artifacts we did not write, pulls a step's entry as pushed by a build
// from Debian's docker-registry and finds the result's files, byte for
// byte, under their paths, and the manifest's artifact type.
func TestRemoteCacheOrasReadsEntry(t *testing.T) {
	oras := testenv.GoTool(t, "oras")
	host := testenv.DockerRegistry(t)
	ref := "oci://" + host + "/cocobuild/cache"
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, "")
	cache := t.TempDir()
	res, err := useRemote(t, load(t, dir, cache, testOptions{}), nil, []string{ref}).Build(context.Background(), filepath.Join(t.TempDir(), "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenCache(cache)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Report.Steps {
		entry, ok := c.Lookup(s.Key)
		if !ok {
			t.Fatalf("step %s:%s has no local entry", s.Block, s.Step)
		}
		out := t.TempDir()
		cmd := exec.Command(oras, "pull", "--plain-http", "-o", out, host+"/cocobuild/cache:"+s.Key)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("oras pull of step %s:%s: %v\n%s", s.Block, s.Step, err, b)
		}
		for _, f := range entry.Files {
			got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(f.Path)))
			if err != nil {
				t.Errorf("oras pull of %s:%s: %v", s.Block, s.Step, err)
				continue
			}
			want, _ := os.ReadFile(filepath.Join(entry.Dir, filepath.FromSlash(f.Path)))
			if !bytes.Equal(got, want) {
				t.Errorf("oras pull of %s:%s: %s differs from the local entry", s.Block, s.Step, f.Path)
			}
		}
		b, err := exec.Command(oras, "manifest", "fetch", "--plain-http", host+"/cocobuild/cache:"+s.Key).Output()
		if err != nil {
			t.Fatalf("oras manifest fetch: %v", err)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.ArtifactType != StepArtifactType || m.Config.MediaType != StepResultType || len(m.Layers) != len(entry.Files) {
			t.Errorf("manifest of %s:%s: artifactType %q, config %q, %d layers; want %s, %s, %d", s.Block, s.Step,
				m.ArtifactType, m.Config.MediaType, len(m.Layers), StepArtifactType, StepResultType, len(entry.Files))
		}
	}
}

// TestRemoteCacheCorruptLocalNotPushed: a local file that is not its
// record's digest is not pushed: the upload fails before the registry
// takes it, nothing is tagged, and the registry stays in use.
func TestRemoteCacheCorruptLocalNotPushed(t *testing.T) {
	ref := "oci://" + remoteRegistries[0].start(t) + "/cocobuild/cache"
	rm, err := OpenRemote([]string{ref}, []string{ref}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	key, good := strings.Repeat("0a", 32), strings.Repeat("0b", 32)
	res := storeEntry(t, openCache(t), key, map[string]string{"f": "recorded bytes"})
	if err := os.WriteFile(filepath.Join(res.Dir, "f"), []byte("damaged bytes!"), 0o644); err != nil {
		t.Fatal(err)
	}
	rm.Push(context.Background(), res, "")
	rm.Push(context.Background(), storeEntry(t, openCache(t), good, map[string]string{"f": "fine"}), "")
	rm.Wait()
	if w := strings.Join(rm.Warnings(), "\n"); !strings.Contains(w, "not pushing step "+key[:12]) || strings.Contains(w, "not using it") {
		t.Errorf("warnings = %q, want one that step %.12s is not pushed, and the registry still used", w, key)
	}
	c := openCache(t)
	if got := rm.Pull(context.Background(), c, key); got != "" {
		t.Errorf("the corrupt entry was pushed: pulled from %q", got)
	}
	if got := rm.Pull(context.Background(), c, good); got != ref {
		t.Errorf("the good entry: pulled from %q, want %q (warnings %q)", got, ref, rm.Warnings())
	}
}

// TestRemoteCacheTrickle: a registry that sends a file a few bytes at a
// time, never pausing for a whole timeout, is as stalled as one that
// sends nothing: the pull gives up within a few timeouts (at 500 bytes/s
// the 200 kB file would take 400 s), with a warning, and nothing enters
// the local cache.
func TestRemoteCacheTrickle(t *testing.T) {
	const size = 200_000
	res := storeEntry(t, openCache(t), strings.Repeat("0c", 32), map[string]string{"big": strings.Repeat("x", size)})
	blob := "/blobs/sha256:" + res.Files[0].SHA256
	reg := ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, blob) {
			reg.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("x", 100))
		for range size / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(srv.Close)
	ref := "oci://" + strings.TrimPrefix(srv.URL, "http://") + "/cocobuild/cache"
	push, err := OpenRemote(nil, []string{ref}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	push.Push(context.Background(), res, "")
	push.Wait()
	if w := push.Warnings(); len(w) != 0 {
		t.Fatalf("push: %q", w)
	}
	rm, err := OpenRemote([]string{ref}, nil, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := openCache(t)
	start := time.Now()
	if got := rm.Pull(ctx, c, res.Key); got != "" {
		t.Errorf("pulled from a trickling registry, from %q", got)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the pull took %v from a registry sending 500 bytes/s, want a few timeouts of 1s", d)
	}
	if w := strings.Join(rm.Warnings(), "\n"); !strings.Contains(w, "stalled") || !strings.Contains(w, "not using it for the rest of this build") {
		t.Errorf("warnings = %q, want one that the registry stalled and is not used", w)
	}
	if _, ok := c.Lookup(res.Key); ok {
		t.Error("a partial pull is in the local cache")
	}
}

// probeKind is a test block whose one step has a probe that reads a file
// outside the cache, tool.txt beside the recipe (as a rootfs dir or a
// host tool's identity is read): what it returns joins the step's key.
type probeKind struct{ dir string }

func (probeKind) Type() string            { return "probed" }
func (probeKind) Schema() *hcl.BodySchema { return &hcl.BodySchema{} }
func (probeKind) OutputType() cty.Type    { return cty.EmptyObject }
func (k probeKind) Decode(b *recipes.Block, _ *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	_, diags := b.Body.Content(&hcl.BodySchema{})
	return probeNode(k), diags
}

type probeNode probeKind

func (n probeNode) Steps() []*recipes.Step {
	return []*recipes.Step{{ID: "make", Kind: "test/probed", Version: "1",
		Probe: func(context.Context) (string, error) {
			b, err := os.ReadFile(filepath.Join(n.dir, "tool.txt"))
			return testenv.SHA256Hex(b), err
		},
		Run: func(_ context.Context, sc *recipes.StepContext) error {
			b, err := os.ReadFile(filepath.Join(n.dir, "tool.txt"))
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(sc.OutDir, "f"), append([]byte("made by "), b...), 0o644)
		}}}
}

func (n probeNode) Finish(results map[string]*recipes.Result) (*recipes.Output, error) {
	f, err := results["make"].File("f")
	if err != nil {
		return nil, err
	}
	return &recipes.Output{Value: cty.EmptyObjectVal, Artifacts: []recipes.OutputArtifact{{Name: "probed.x", Kind: "test", Path: "probed/f", File: f}}}, nil
}

// TestRemoteCacheProbeKeys: a step with a probe is shared only under the
// key rules of the local cache. Build A (tool.txt "v1") fills the remote
// cache; in other directories with cold local caches, a build whose probe
// reads the same gets A's key and pulls A's result, one whose probe reads
// something else ("v2") gets another key, is not given A's result (plan:
// run, not pull) and builds its own.
func TestRemoteCacheProbeKeys(t *testing.T) {
	for _, reg := range remoteRegistries {
		t.Run(reg.name, func(t *testing.T) {
			ref := "oci://" + reg.start(t) + "/cocobuild/cache"
			ctx := context.Background()
			recipe := func(tool string) string {
				dir := t.TempDir()
				src := "recipe {\n  name = \"p\"\n}\n\nprobed \"x\" {}\n"
				if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "tool.txt"), []byte(tool), 0o644); err != nil {
					t.Fatal(err)
				}
				return dir
			}
			loadRemote := func(dir string, from, to []string) *Loaded {
				return useRemote(t, load(t, dir, t.TempDir(), testOptions{ExtraKinds: []recipes.Kind{probeKind{dir}}}), from, to)
			}
			dirA := recipe("v1")
			outA := filepath.Join(t.TempDir(), "a")
			a, err := loadRemote(dirA, nil, []string{ref}).Build(ctx, outA, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			keyA := a.Report.Steps[0].Key
			for _, tc := range []struct {
				tool       string
				wantStatus StepStatus // in the plan
				wantPulled int
				wantSame   bool // key and output as A's
			}{
				{"v1", StatusPull, 1, true},
				{"v2", StatusRun, 0, false},
			} {
				dir := recipe(tc.tool)
				plan, err := loadRemote(dir, []string{ref}, nil).Plan(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got := plan.Steps[0].Status; got != tc.wantStatus {
					t.Errorf("tool %s: plan says %s, want %s", tc.tool, got, tc.wantStatus)
				}
				out := filepath.Join(t.TempDir(), "out")
				b, err := loadRemote(dir, []string{ref}, nil).Build(ctx, out, 2, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got := b.Report.Pulled(); got != tc.wantPulled {
					t.Errorf("tool %s: pulled %d steps, want %d: %+v", tc.tool, got, tc.wantPulled, b.Report.Steps)
				}
				if got, want := b.Report.Ran(), 1-tc.wantPulled; got != want {
					t.Errorf("tool %s: ran %d steps, want %d", tc.tool, got, want)
				}
				if got := b.Report.Steps[0].Key == keyA; got != tc.wantSame {
					t.Errorf("tool %s: key %.12s, A's %.12s: same %v, want %v", tc.tool, b.Report.Steps[0].Key, keyA, got, tc.wantSame)
				}
				got, err := os.ReadFile(filepath.Join(out, "probed", "f"))
				if err != nil {
					t.Fatal(err)
				}
				if want := "made by " + tc.tool; string(got) != want {
					t.Errorf("tool %s: output %q, want %q", tc.tool, got, want)
				}
			}
		})
	}
}

// TestRemoteCacheDamagedEntry: the other parts of an entry damaged on
// docker-registry's disk are caught as the file is: the result record
// (the manifest's config), the manifest itself, and a file's blob gone
// (deleted by hand or by a garbage collection). Each is a warning naming
// the step; the step is built locally and the output is A's.
func TestRemoteCacheDamagedEntry(t *testing.T) {
	for _, tc := range []struct {
		name string
		// damage changes the registry's store for the input step's entry
		// (entry: its local copy in A's cache, tag: the manifest digest).
		damage func(t *testing.T, blobs string, entry *recipes.Result, manifest string)
		want   string
	}{
		{"record", func(t *testing.T, blobs string, entry *recipes.Result, _ string) {
			rb, err := record(entry)
			if err != nil {
				t.Fatal(err)
			}
			damageFile(t, blobPath(blobs, digest.FromBytes(rb).Encoded()))
		}, "is not what its record states"},
		{"manifest", func(t *testing.T, blobs string, _ *recipes.Result, manifest string) {
			damageFile(t, blobPath(blobs, manifest))
		}, "is not what its record states"},
		{"file deleted", func(t *testing.T, blobs string, entry *recipes.Result, _ string) {
			if err := os.RemoveAll(filepath.Dir(blobPath(blobs, entry.Files[0].SHA256))); err != nil {
				t.Fatal(err)
			}
		}, "is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := t.TempDir()
			ref := "oci://" + testenv.DockerRegistryIn(t, store) + "/cocobuild/cache"
			dir := t.TempDir()
			testenv.WriteKernelRecipe(t, dir, "")
			ctx := context.Background()
			cacheA := t.TempDir()
			outA, outB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
			a, err := useRemote(t, load(t, dir, cacheA, testOptions{}), nil, []string{ref}).Build(ctx, outA, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			var key string
			for _, s := range a.Report.Steps {
				if s.Block == "input.k" {
					key = s.Key
				}
			}
			c, err := OpenCache(cacheA)
			if err != nil {
				t.Fatal(err)
			}
			entry, ok := c.Lookup(key)
			if !ok {
				t.Fatalf("no local entry for input.k (%+v)", a.Report.Steps)
			}
			link, err := os.ReadFile(filepath.Join(store, "data/docker/registry/v2/repositories/cocobuild/cache/_manifests/tags", key, "current/link"))
			if err != nil {
				t.Fatalf("the registry's tag of input.k: %v", err)
			}
			tc.damage(t, filepath.Join(store, "data/docker/registry/v2/blobs/sha256"), entry, strings.TrimPrefix(strings.TrimSpace(string(link)), "sha256:"))

			b, err := useRemote(t, load(t, dir, t.TempDir(), testOptions{}), []string{ref}, nil).Build(ctx, outB, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range b.Report.Steps {
				if s.Block == "input.k" && (s.Status != StatusRun || s.Remote != "") {
					t.Errorf("build B's input.k: %s from %q, want built here", s.Status, s.Remote)
				}
			}
			if notes := strings.Join(b.Notes, "\n"); !strings.Contains(notes, tc.want) || !strings.Contains(notes, key[:12]) {
				t.Errorf("build B notes = %q, want a warning naming step %.12s and %q", b.Notes, key, tc.want)
			}
			if diff := cmp.Diff(testenv.TreeDigest(t, outA), testenv.TreeDigest(t, outB)); diff != "" {
				t.Errorf("outputs of A and B differ (-A +B):\n%s", diff)
			}
		})
	}
}

// blobPath is where docker-registry keeps the blob of a sha256 below blobs.
func blobPath(blobs, sum string) string { return filepath.Join(blobs, sum[:2], sum, "data") }

// damageFile flips a bit of the byte in the middle of a file.
func damageFile(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, flipByte(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRemoteCachePushesCached: a build whose every step is cached locally
// pushes them all to a --cache-to that lacks them (what bench's
// --fill-from relies on), runs none, and a cold build then pulls them.
func TestRemoteCachePushesCached(t *testing.T) {
	ref := "oci://" + remoteRegistries[0].start(t) + "/cocobuild/cache"
	dir := t.TempDir()
	testenv.WriteKernelRecipe(t, dir, "")
	cache := t.TempDir()
	ctx := context.Background()
	if _, err := load(t, dir, cache, testOptions{}).Build(ctx, filepath.Join(t.TempDir(), "out"), 2, nil); err != nil {
		t.Fatal(err)
	}
	fill, err := useRemote(t, load(t, dir, cache, testOptions{}), nil, []string{ref}).Build(ctx, filepath.Join(t.TempDir(), "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := fill.Report.Ran(); got != 0 {
		t.Errorf("the filling build ran %d steps, want 0", got)
	}
	b, err := useRemote(t, load(t, dir, t.TempDir(), testOptions{}), []string{ref}, nil).Build(ctx, filepath.Join(t.TempDir(), "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Report.Pulled(), 2; got != want {
		t.Errorf("a cold build pulled %d steps, want %d: %+v", got, want, b.Report.Steps)
	}
}
