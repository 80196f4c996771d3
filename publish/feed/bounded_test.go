package feed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/units"
)

// wantRefused checks that err is the refusal of a reader: it names what
// it wants (the limit and the flag that raises it, or the kind of file),
// and came fast (nothing was read).
func wantRefused(t *testing.T, what string, err error, start time.Time, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one with %q", what, want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: got %v, want an error with %q", what, err, w)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("%s: took %v, want under 2 s (refused before reading)", what, d)
	}
}

// TestDirReadsWithinLimits: a directory feed's index over the document
// limit (a 258 MB index, a 1 GiB sparse one) is refused before it is read,
// with an error that names the limit and --limit document=; an index or a
// blob that is a named pipe or a link to /dev/zero is refused at once.
func TestDirReadsWithinLimits(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int64{258_000_000, units.GiB} {
		d := Dir{Path: t.TempDir()}
		p := filepath.Join(d.Path, IndexFile)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := d.IndexBytes(ctx)
		wantRefused(t, "an index of "+limits.Document.Format(size), err, start, p, "over the document limit of 64MiB", "--limit document=")
		if !errors.Is(err, limits.ErrExceeded) {
			t.Errorf("got %v, want errors.Is limits.ErrExceeded", err)
		}
	}

	// A feed as published, whose index then becomes a FIFO; a blob linked
	// to /dev/zero.
	d := Dir{Path: t.TempDir()}
	r, blobs := testRelease("sample", "1.0.0")
	if _, _, err := d.Append(ctx, r, blobs, testSigning()); err != nil {
		t.Fatal(err)
	}
	h, _ := checkDigest(r.Documents[0].Digest)
	if err := os.Remove(d.blobPath(h)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", d.blobPath(h)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := d.Blob(ctx, r.Documents[0].Digest)
	wantRefused(t, "a blob linked to /dev/zero", err, start, "is a device, not a regular file")
	idx := filepath.Join(d.Path, IndexFile)
	if err := os.Remove(idx); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(idx, 0o644); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = d.IndexBytes(ctx)
	wantRefused(t, "an index that is a named pipe", err, start, "is a named pipe, not a regular file")
	// publish to the feed reads the index the same way.
	r2, b2 := testRelease("sample", "1.1.0")
	start = time.Now()
	_, _, err = d.Append(ctx, r2, b2, testSigning())
	wantRefused(t, "appending to a feed whose index is a named pipe", err, start, "is a named pipe, not a regular file")
}

// TestDirLimitRaised: the limit in force is the one Limits says: a small
// one refuses the feed as published, naming the value that would do, and
// the default reads it.
func TestDirLimitRaised(t *testing.T) {
	ctx := context.Background()
	d := Dir{Path: t.TempDir()}
	r, blobs := testRelease("sample", "1.0.0")
	if _, _, err := d.Append(ctx, r, blobs, testSigning()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(d.Path, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	small := Dir{Path: d.Path, Limits: (*limits.Values)(nil).With(limits.Document, 100)}
	_, err = small.IndexBytes(ctx)
	wantRefused(t, "an index over a limit of 100 bytes", err, time.Now(), fmt.Sprintf(": %d is over the document limit of 100", fi.Size()), fmt.Sprintf("--limit document=%d", fi.Size()))
	if _, err := d.IndexBytes(ctx); err != nil {
		t.Errorf("the index within the default limit: %v", err)
	}
}

// TestHTTPReadsWithinLimits: a served index whose Content-Length is over
// the limit is refused before its body is read; a body without a length
// that runs on is cut off past the limit.
func TestHTTPReadsWithinLimits(t *testing.T) {
	ctx := context.Background()
	var sent int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big/index.json": // says 1 GiB, sends a little
			w.Header().Set("Content-Length", "1073741824")
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("{"))
		case "/endless/index.json": // no length, zeros until the client stops
			buf := make([]byte, 64<<10)
			for {
				n, err := w.Write(buf)
				sent += int64(n)
				if err != nil || sent > 64<<20 {
					return
				}
			}
		}
	}))
	defer srv.Close()
	rd, err := Open(srv.URL+"/big/", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = rd.IndexBytes(ctx)
	wantRefused(t, "a Content-Length of 1 GiB", err, start, "GET "+srv.URL+"/big/index.json: 1GiB is over the document limit of 64MiB", "--limit document=1GiB")
	rd, err = Open(srv.URL+"/endless/", (*limits.Values)(nil).With(limits.Document, units.MiB))
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = rd.IndexBytes(ctx)
	wantRefused(t, "an endless body", err, start, "more than 1MiB is over the document limit of 1MiB", "--limit document=2MiB")
	if !errors.Is(err, limits.ErrExceeded) {
		t.Errorf("got %v, want errors.Is limits.ErrExceeded", err)
	}
}

// TestOCIReadsWithinLimits: an OCI feed whose index descriptor states a
// size over the limit is refused before the blob is fetched.
func TestOCIReadsWithinLimits(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	o, err := OpenOCI("oci://" + strings.TrimPrefix(srv.URL, "http://") + "/coco/feed")
	if err != nil {
		t.Fatal(err)
	}
	small := []byte("{}")
	layer := content.NewDescriptorFromBytes(IndexMediaType, small)
	if err := o.Repo.Push(ctx, layer, strings.NewReader(string(small))); err != nil {
		t.Fatal(err)
	}
	layer.Size = units.GiB // the descriptor lies: a gigabyte
	layer.Annotations = map[string]string{ocispec.AnnotationTitle: IndexFile}
	desc, err := oras.PackManifest(ctx, o.Repo, oras.PackManifestVersion1_1, IndexMediaType, oras.PackManifestOptions{
		Layers: []ocispec.Descriptor{layer}, ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "1970-01-01T00:00:00Z"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Repo.Tag(ctx, desc, IndexTag); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = o.IndexBytes(ctx)
	wantRefused(t, "an index descriptor of 1 GiB", err, start, "blob "+string(layer.Digest)+" of "+o.Location()+": 1GiB is over the document limit of 64MiB", "--limit document=1GiB")
	if !errors.Is(err, limits.ErrExceeded) {
		t.Errorf("got %v, want errors.Is limits.ErrExceeded", err)
	}
	// Raised, the index is fetched, and the registry's blob (2 bytes, not
	// 1 GiB) fails its descriptor.
	o.Limits = (*limits.Values)(nil).With(limits.Document, 2*units.GiB)
	if _, err := o.IndexBytes(ctx); err == nil || errors.Is(err, limits.ErrExceeded) {
		t.Errorf("with the limit raised: got %v, want the fetch to fail on the descriptor's size", err)
	}
}
