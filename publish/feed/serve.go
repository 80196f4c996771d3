package feed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/cocobuild/cocobuild/internal/limits"
)

// Handler serves a directory feed read-only over HTTP:
//
//	GET /index.json                 the signed index (also at /), revalidated each time
//	GET /blobs/sha256/HEX           a document, immutable
//	GET /healthz                    200 "ok" while the feed's index is readable, well formed and not expired
//
// /healthz answers 503 when the feed has no index yet (nothing published),
// when its index cannot be read or does not parse, and when the index has
// expired (its publisher has not published, which re-signs it, within its
// lifetime: verifiers reject the feed as stale). It checks the index
// against the wall clock but not its signature: the server holds no key,
// and verifiers check the signature themselves.
//
// Responses carry a strong ETag (the sha256 of the body) and honour
// If-None-Match and Range; only GET and HEAD are allowed. Files are opened
// through an os.Root of the feed directory: a symbolic link that leaves the
// feed (such as a blob linked to /etc/shadow) is not followed, and only
// regular files are served. Responses never carry host paths or file-system
// errors.
func Handler(d Dir) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		b, err := d.readConfined(IndexFile)
		if errors.Is(err, os.ErrNotExist) {
			http.Error(w, "no feed index: nothing is published to this feed yet", http.StatusServiceUnavailable)
			return
		}
		var ix *Index
		if err == nil {
			ix, err = ParseIndex(b)
		}
		if err != nil {
			http.Error(w, "feed index unreadable or invalid", http.StatusServiceUnavailable)
			return
		}
		if !time.Now().Before(ix.Expires) {
			http.Error(w, fmt.Sprintf("feed index version %d expired at %s: verifiers reject the feed as stale until its publisher publishes again, which re-signs it", ix.Version, ix.Expires.UTC().Format(time.RFC3339)), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, "ok\n")
	})
	index := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" && r.URL.Path != "/"+IndexFile {
			http.NotFound(w, r)
			return
		}
		b, err := d.readConfined(IndexFile)
		if errors.Is(err, os.ErrNotExist) {
			http.Error(w, "no release published yet", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, "reading the index failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", `"`+Digest(b)+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	}
	mux.HandleFunc("/", index)
	mux.HandleFunc("/blobs/sha256/", func(w http.ResponseWriter, r *http.Request) {
		h := strings.TrimPrefix(r.URL.Path, "/blobs/sha256/")
		if !hexDigest.MatchString(h) {
			http.NotFound(w, r)
			return
		}
		f, err := d.openConfined(path.Join("blobs", "sha256", h))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("ETag", `"sha256:`+h+`"`)
		w.Header().Set("Docker-Content-Digest", "sha256:"+h)
		http.ServeContent(w, r, "", time.Time{}, f)
	})
	return readOnly(mux)
}

// openConfined opens a regular file of the feed through an os.Root, so
// that no symbolic link leads out of the feed directory. It opens
// non-blocking, so that a named pipe in the feed is refused, not waited on.
func (d Dir) openConfined(name string) (*os.File, error) {
	root, err := os.OpenRoot(d.Path)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	return f, nil
}

// readConfined reads a regular file of the feed as openConfined opens it,
// within the document limit of d.Limits: a larger file is refused from its
// size, before anything is read.
func (d Dir) readConfined(name string) ([]byte, error) {
	f, err := d.openConfined(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	max := d.Limits.Get(limits.Document)
	if err := d.Limits.Check(name, limits.Document, fi.Size()); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = &limits.Error{What: name, Limit: limits.Document, Max: max, Got: max + 1, AtLeast: true}
	}
	return b, err
}

var hexDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

// readOnly allows GET and HEAD and sets headers every response carries.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only feed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Serve serves the feed on l until ctx is done, then shuts down gracefully.
func Serve(ctx context.Context, l net.Listener, d Dir) error {
	srv := &http.Server{
		Handler:           Handler(d),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return err
		}
		return nil
	}
}

// HTTP reads a feed served by Handler (or any static server with the same
// layout) at a base URL.
type HTTP struct {
	Base   *url.URL
	Client *http.Client // nil: a client with a 60 s timeout
	// Limits bound what is read for one blob or index (limits.Document,
	// --limit document=SIZE): a Content-Length over it is refused before
	// the body is read, and a body that runs past it is cut off with a
	// *limits.Error. nil holds the defaults.
	Limits *limits.Values
}

func (h HTTP) get(ctx context.Context, p string) ([]byte, error) {
	u := h.Base.JoinPath(p)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return readBounded(h.Limits, "GET "+u.String(), resp.ContentLength, resp.Body)
}

// IndexBytes implements Reader.
func (h HTTP) IndexBytes(ctx context.Context) ([]byte, error) {
	return h.get(ctx, IndexFile)
}

// Location implements Reader: the base URL, without a final slash.
func (h HTTP) Location() string {
	u := *h.Base
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimSuffix(u.String(), "/")
}

// Blob implements Reader.
func (h HTTP) Blob(ctx context.Context, digest string) ([]byte, error) {
	hx, err := checkDigest(digest)
	if err != nil {
		return nil, err
	}
	b, err := h.get(ctx, "blobs/sha256/"+hx)
	if err != nil {
		return nil, err
	}
	if got := Digest(b); got != digest {
		return nil, fmt.Errorf("blob %s: the server sent %s", digest, got)
	}
	return b, nil
}

// Open returns the reader of a feed reference: dir:PATH or a directory path,
// or an http:// or https:// URL of a served feed. It reads every document
// within the limits of lim (nil: the defaults).
func Open(ref string, lim *limits.Values) (Reader, error) {
	switch {
	case strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://"):
		u, err := url.Parse(ref)
		if err != nil {
			return nil, err
		}
		return HTTP{Base: u, Limits: lim}, nil
	case strings.HasPrefix(ref, "dir:"):
		return Dir{Path: strings.TrimPrefix(ref, "dir:"), Limits: lim}, nil
	case strings.Contains(ref, "://"):
		return nil, fmt.Errorf("feed %q: use dir:PATH, a directory, or an http(s):// URL (oci:// feeds are read with their tag)", ref)
	}
	return Dir{Path: ref, Limits: lim}, nil
}
