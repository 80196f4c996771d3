package feed

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/cocobuild/cocobuild/internal/limits"
)

// FuzzParseIndex: an index from a server or a directory is untrusted; it is
// an error or a consistent index, never a panic.
func FuzzParseIndex(f *testing.F) {
	r1, _ := testRelease("a", "1.0.0")
	r2, _ := testRelease("a", "1.1.0")
	seed, err := EncodeIndex(&Index{Type: IndexType, Schema: Schema, Version: 3, Expires: testNow, Key: r1.Key, Releases: []Release{r1, r2}}, testSigner())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"signed":{"_type":"` + IndexType + `","schema":"` + Schema + `","version":1,"expires":"2030-01-01T00:00:00Z","key":"k","releases":[]},"signatures":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ix, err := ParseIndex(b)
		if err != nil {
			return
		}
		// What parses is consistent: every name has a latest release and
		// the versions of each name grow.
		for _, r := range ix.Releases {
			if l := ix.Latest(r.Name); l == nil {
				t.Fatalf("no latest release for %s", r.Name)
			}
		}
		if err := ix.Check(); err != nil {
			t.Fatalf("ParseIndex accepted an index Check rejects: %v", err)
		}
	})
}

// fuzzTransport answers every request with the fuzzed response: a stated
// Content-Length (-1: none) and a body.
type fuzzTransport struct {
	length int64
	body   []byte
}

func (f fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", ContentLength: f.length,
		Body: io.NopCloser(bytes.NewReader(f.body)), Request: r, Header: http.Header{}}, nil
}

// FuzzHTTPReadBounded: what a feed server sends is untrusted, its stated
// length included. Within a limit of 1 KiB, a stated length over the
// limit is refused before the body is read, a body over the limit is
// refused, and what is returned is the body, never more than the limit.
func FuzzHTTPReadBounded(f *testing.F) {
	const max = 1024
	f.Add(int64(-1), []byte(`{"signed":{}}`))
	f.Add(int64(1<<30), []byte("{"))           // a gigabyte stated, a byte sent
	f.Add(int64(0x7fffffffffffffff), []byte{}) // the largest length
	f.Add(int64(-1), bytes.Repeat([]byte{0}, max+1))
	f.Add(int64(max), bytes.Repeat([]byte("a"), max))
	f.Add(int64(3), []byte("abcdef")) // more sent than stated
	f.Fuzz(func(t *testing.T, length int64, body []byte) {
		if length < -1 {
			length = -1
		}
		base, _ := url.Parse("http://feed.invalid/")
		h := HTTP{Base: base, Client: &http.Client{Transport: fuzzTransport{length, body}},
			Limits: (*limits.Values)(nil).With(limits.Document, max)}
		b, err := h.IndexBytes(context.Background())
		switch {
		case length > max || len(body) > max:
			if !errors.Is(err, limits.ErrExceeded) {
				t.Fatalf("length %d, body of %d bytes, limit %d: got %v, want limits.ErrExceeded", length, len(body), max, err)
			}
		case err != nil:
			t.Fatalf("length %d, body of %d bytes within the limit: %v", length, len(body), err)
		case !bytes.Equal(b, body):
			t.Fatalf("got %d bytes, want the body of %d", len(b), len(body))
		}
	})
}
