package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/internal/units"
	"github.com/cocobuild/cocobuild/publish/sign"
)

// TestReadDocumentsWithinLimits: a release directory whose rvps.json is a
// 1 GiB sparse file is refused before it is read, naming the file, the
// document limit and --limit document=; an rvps.json that is a named pipe
// is refused at once (not waited on); a raised limit reads the release.
func TestReadDocumentsWithinLimits(t *testing.T) {
	s := testSigner(t, sign.ECDSAP256)
	docs := signAll(t, testRelease(t, "1.0.0"), s)

	dir := writeRelease(t, docs)
	rvps := filepath.Join(dir, RVPSFile)
	if err := os.Truncate(rvps, units.GiB); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := ReadDocuments(dir, testTEEs)
	if !errors.Is(err, limits.ErrExceeded) {
		t.Fatalf("a 1 GiB rvps.json: got %v, want limits.ErrExceeded", err)
	}
	for _, want := range []string{rvps + ": 1GiB is over the document limit of 64MiB", "--limit document=1GiB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("a 1 GiB rvps.json: got %v, want an error with %q", err, want)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a 1 GiB rvps.json: refused after %v, want under 2 s", d)
	}

	dir = writeRelease(t, docs)
	rvps = filepath.Join(dir, RVPSFile)
	if err := os.Remove(rvps); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(rvps, 0o644); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = ReadDocuments(dir, testTEEs)
	if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), rvps) || !strings.Contains(err.Error(), "named pipe") {
		t.Errorf("rvps.json as a named pipe: got %v, want ErrNotRegular naming it a named pipe", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("rvps.json as a named pipe: refused after %v, want at once", d)
	}

	// The limit in force decides: a tight one refuses the release as
	// signed, the default reads it.
	dir = writeRelease(t, docs)
	if _, err := ReadDocumentsWithin(dir, testTEEs, (*limits.Values)(nil).With(limits.Document, 64)); !errors.Is(err, limits.ErrExceeded) {
		t.Errorf("a release read within 64 bytes per document: got %v, want limits.ErrExceeded", err)
	}
	if got, err := ReadDocumentsWithin(dir, testTEEs, nil); err != nil || len(got) != len(docs) {
		t.Errorf("the release within the default limit: %d documents, %v; want %d", len(got), err, len(docs))
	}
}

// artifactRelease writes a build output holding one subject, kernel of
// size bytes of zeros (sparse), and signs a release whose statement names
// it with its digest.
func artifactRelease(t *testing.T, size int64) (out string, statement []byte, s *sign.Signer) {
	t.Helper()
	out = t.TempDir()
	r := testRelease(t, "1.0.0")
	r.Subjects = r.Subjects[:1]
	p := filepath.Join(out, filepath.FromSlash(r.Subjects[0].Name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(h, zeros{}, size); err != nil {
		t.Fatal(err)
	}
	r.Subjects[0].SHA256, r.Subjects[0].Size = hex.EncodeToString(h.Sum(nil)), size
	s = testSigner(t, sign.ECDSAP256)
	return out, doc(signAll(t, r, s), StatementFile).Data, s
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// TestVerifyArtifactsStreamed: --artifacts hashes each subject as a
// stream: a 256 MiB subject verifies with a few MiB allocated, not its
// size. A subject that is a named pipe, or a link to /dev/zero, is
// refused at once.
func TestVerifyArtifactsStreamed(t *testing.T) {
	ctx := context.Background()
	out, st, s := artifactRelease(t, 256*units.MiB)
	o := verifyAt
	o.Artifacts = out
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	checked, err := VerifyOne(ctx, st, nil, s.Public(), o)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("verify --artifacts of a 256 MiB subject: %v", err)
	}
	if !strings.Contains(strings.Join(checked, "\n"), "1 subjects match the files in "+out) {
		t.Errorf("checked %q, want the subject matched", checked)
	}
	if got := int64(after.TotalAlloc - before.TotalAlloc); got > 16*units.MiB {
		t.Errorf("verify --artifacts of a 256 MiB subject allocated %d MiB, want under 16 MiB (streamed, not read whole)", got/units.MiB)
	}
	// A subject of another size than the statement's is refused before it
	// is read: a 1 TiB sparse file fails at once.
	kernel := filepath.Join(out, "kernel", "guest", "vmlinuz")
	if err := os.Truncate(kernel, 1<<40); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = VerifyOne(ctx, st, nil, s.Public(), o)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "kernel/guest/vmlinuz has 1099511627776 bytes, the statement says 268435456") {
		t.Errorf("a 1 TiB subject: got %v, want ErrMismatch naming both sizes", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a 1 TiB subject: refused after %v, want at once", d)
	}

	for _, c := range []struct {
		name, want string
		make       func() error
	}{
		{"a named pipe", "is a named pipe, not a regular file", func() error { return syscall.Mkfifo(kernel, 0o644) }},
		{"a link to /dev/zero", "path escapes from parent", func() error { return os.Symlink("/dev/zero", kernel) }},
	} {
		if err := os.Remove(kernel); err != nil {
			t.Fatal(err)
		}
		if err := c.make(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := VerifyOne(ctx, st, nil, s.Public(), o)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "kernel/guest/vmlinuz") {
			t.Errorf("a subject that is %s: got %v, want an error naming it with %q", c.name, err, c.want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("a subject that is %s: refused after %v, want at once", c.name, d)
		}
	}
}
