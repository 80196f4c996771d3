package feed

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHandlerConfined: the server follows no symbolic link out of the
// feed, and its responses carry no host path or file-system error.
func TestHandlerConfined(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(outside, "shadow")
	if err := os.WriteFile(secret, []byte("root:secret-hash:19000::::::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := Dir{Path: filepath.Join(base, "feed")}
	r, blobs := testRelease("sample", "1.0.0")
	if _, _, err := d.Append(ctx, r, blobs, testSigning()); err != nil {
		t.Fatal(err)
	}
	h, _ := checkDigest(r.Documents[0].Digest)
	// A blob of the feed replaced by a link to the secret (absolute, and
	// relative), and a digest whose blob is a link to it.
	if err := os.Remove(d.blobPath(h)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, d.blobPath(h)); err != nil {
		t.Fatal(err)
	}
	rel := strings.Repeat("0", 64)
	if err := os.Symlink("../../../outside/shadow", d.blobPath(rel)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(d))
	defer srv.Close()
	get := func(p string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{"/blobs/sha256/" + h, "/blobs/sha256/" + rel} {
		if code, body := get(p); code != http.StatusNotFound || strings.Contains(body, "secret") {
			t.Errorf("GET %s (a link out of the feed): got %d %q, want 404 without the file", p, code, body)
		}
	}
	// The index linked out of the feed, and then an unreadable index: the
	// responses say so without a path or an error of the file system.
	if err := os.WriteFile(filepath.Join(outside, "index.json"), []byte(`{"schema":"`+Schema+`","releases":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ixPath := filepath.Join(d.Path, IndexFile)
	if err := os.Remove(ixPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "index.json"), ixPath); err != nil {
		t.Fatal(err)
	}
	check := func(what string, wantHealth int) {
		t.Helper()
		for _, p := range []string{"/healthz", "/index.json"} {
			code, body := get(p)
			if p == "/healthz" && code != wantHealth {
				t.Errorf("%s: GET %s: got %d, want %d", what, p, code, wantHealth)
			}
			if p == "/index.json" && code == http.StatusOK {
				t.Errorf("%s: GET %s: got 200 %q, want an error", what, p, body)
			}
			for _, leak := range []string{base, "/", "permission", "no such", "symbolic", "path escapes", "invalid character"} {
				if p == "/index.json" && leak == "/" {
					continue
				}
				if strings.Contains(body, leak) {
					t.Errorf("%s: GET %s: body %q shows %q", what, p, body, leak)
				}
			}
		}
	}
	check("index linked out of the feed", http.StatusServiceUnavailable)
	if err := os.Remove(ixPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(ixPath, 0o755); err != nil {
		t.Fatal(err)
	}
	check("index is a directory", http.StatusServiceUnavailable)
	if err := os.Remove(ixPath); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ixPath, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/healthz"); code != http.StatusServiceUnavailable || strings.Contains(body, "invalid character") || strings.Contains(body, base) {
		t.Errorf("invalid index: GET /healthz: got %d %q, want 503 without the parser's error", code, body)
	}
}
