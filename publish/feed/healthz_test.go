package feed

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/limits"
)

// TestHealthz: /healthz is ok only while the feed has an index that parses
// and has not expired (no key needed); before, an empty feed and an
// expired index were both "ok".
func TestHealthz(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	cases := []struct {
		name   string
		setup  func(t *testing.T, d Dir)
		status int
		body   string
	}{
		{"empty feed", func(t *testing.T, d Dir) {}, http.StatusServiceUnavailable, "nothing is published"},
		{"index valid for 7 days", func(t *testing.T, d Dir) {
			r, blobs := testRelease("sample", "1.0.0")
			if _, _, err := d.Append(ctx, r, blobs, Signing{Signer: testSigner(), Now: now}); err != nil {
				t.Fatal(err)
			}
		}, http.StatusOK, "ok\n"},
		{"index expired an hour ago", func(t *testing.T, d Dir) {
			r, blobs := testRelease("sample", "1.0.0")
			if _, _, err := d.Append(ctx, r, blobs, Signing{Signer: testSigner(), Now: now.Add(-2 * time.Hour), TTL: time.Hour}); err != nil {
				t.Fatal(err)
			}
		}, http.StatusServiceUnavailable, "feed index version 1 expired at " + now.Add(-time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)},
		{"index does not parse", func(t *testing.T, d Dir) {
			if err := os.WriteFile(filepath.Join(d.Path, IndexFile), []byte(`{"signed":{}}`), 0o644); err != nil {
				t.Fatal(err)
			}
		}, http.StatusServiceUnavailable, "unreadable or invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Dir{Path: t.TempDir()}
			c.setup(t, d)
			srv := httptest.NewServer(Handler(d))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status || !strings.Contains(string(b), c.body) {
				t.Errorf("GET /healthz: got %d %q, want %d with %q", resp.StatusCode, b, c.status, c.body)
			}
		})
	}
}

// TestHandlerDocumentLimit: the server reads the index within the document
// limit of its Dir: an index over it is a 503 on /healthz and a 500 on
// /index.json, read no further than its size.
func TestHandlerDocumentLimit(t *testing.T) {
	d := Dir{Path: t.TempDir(), Limits: (*limits.Values)(nil).With(limits.Document, 1<<10)}
	r, blobs := testRelease("sample", "1.0.0")
	if _, _, err := (Dir{Path: d.Path}).Append(context.Background(), r, blobs, Signing{Signer: testSigner(), Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(d.Path, IndexFile))
	if err != nil || len(b) <= 1<<10 {
		t.Fatalf("index of %d bytes (%v), want more than 1KiB", len(b), err)
	}
	srv := httptest.NewServer(Handler(d))
	defer srv.Close()
	for _, c := range []struct {
		path   string
		status int
	}{{"/healthz", http.StatusServiceUnavailable}, {"/index.json", http.StatusInternalServerError}} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("GET %s with an index of %d bytes over a limit of 1KiB: %d, want %d", c.path, len(b), resp.StatusCode, c.status)
		}
	}
	_, err = d.readConfined(IndexFile)
	var le *limits.Error
	if !errors.As(err, &le) || le.Got != int64(len(b)) || le.Limit.Name != "document" {
		t.Errorf("readConfined: %v, want the document limit with the index's size %d", err, len(b))
	}
}
