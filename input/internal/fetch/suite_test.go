package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestSuiteDownload fetches ovmf-amdsev from forky (a suite the host's apt
// does not list) with a private apt state, from the host's own mirrors.
func TestSuiteDownload(t *testing.T) {
	testenv.Tool(t, "apt-get", "apt")
	ctx := context.Background()
	state := t.TempDir()
	a, err := OpenSuite(os.DirFS("/"), state, "forky")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.Dir(), state+string(filepath.Separator)) {
		t.Errorf("suite state in %s, want it under %s", a.Dir(), state)
	}
	ver, err := a.Candidate(ctx, "ovmf-amdsev")
	if err != nil {
		t.Fatal(err)
	}
	// Two builds at once share the lists.
	debs := make([]string, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range debs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			debs[i], errs[i] = a.Download(ctx, "ovmf-amdsev", ver, t.TempDir())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("download %d: %v", i, err)
		}
	}
	b0, _ := os.ReadFile(debs[0])
	b1, _ := os.ReadFile(debs[1])
	if s0, s1 := sha256.Sum256(b0), sha256.Sum256(b1); s0 != s1 {
		t.Errorf("two downloads of ovmf-amdsev=%s differ: %x and %x", ver, s0, s1)
	}
	f, err := os.Open(debs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	fw, err := DebFile(f, st.Size(), "usr/share/ovmf/OVMF.amdsev.fd")
	if err != nil {
		t.Fatal(err)
	}
	if len(fw) != 4<<20 {
		t.Errorf("OVMF.amdsev.fd of ovmf-amdsev %s: got %d bytes, want 4 MiB", ver, len(fw))
	}
	// The package the vectors keep is the one the archive serves while it
	// has that version.
	saved := filepath.Join(testenv.Vectors(t), "debs", "ovmf-amdsev_"+ver+"_all.deb")
	if want, err := os.ReadFile(saved); err == nil {
		if got, want := sha256.Sum256(b0), sha256.Sum256(want); got != want {
			t.Errorf("ovmf-amdsev %s from forky: got sha256 %x, want %x (the vectors' copy)", ver, got, want)
		}
	} else {
		t.Logf("forky serves ovmf-amdsev %s; the vectors keep another version", ver)
	}
	fwSum := sha256.Sum256(fw)
	t.Logf("ovmf-amdsev %s: OVMF.amdsev.fd sha256 %s", ver, hex.EncodeToString(fwSum[:]))

	// A version the archive does not have: the lists are fetched again
	// before Download gives up.
	marker := filepath.Join(a.Dir(), "updated")
	before, err := os.Stat(marker)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Download(ctx, "ovmf-amdsev", "0.0~not-a-version-1", t.TempDir())
	if !errors.Is(err, ErrVersionGone) {
		t.Errorf("Download of a version forky does not have: error %v, want ErrVersionGone", err)
	}
	after, err := os.Stat(marker)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().After(before.ModTime()) {
		t.Errorf("the lists were not fetched again before the missing version was reported (updated at %v, then %v)", before.ModTime(), after.ModTime())
	}
	// An interrupted update leaves no marker: the next read fetches the lists.
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	if v, err := a.CachedCandidate(ctx, "ovmf-amdsev"); err != nil || v != ver {
		t.Errorf("candidate after a lost marker: got %q, %v; want %q", v, err, ver)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("lists not fetched again after a lost marker: %v", err)
	}
}

// TestSuiteUnknown names a suite the host's mirrors do not serve.
func TestSuiteUnknown(t *testing.T) {
	testenv.Tool(t, "apt-get", "apt")
	a, err := OpenSuite(os.DirFS("/"), t.TempDir(), "no-such-suite")
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Download(context.Background(), "ovmf-amdsev", "1", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "do not serve it") || !strings.Contains(err.Error(), "no-such-suite") {
		t.Errorf("Download from an unknown suite: got error %v, want one saying the mirrors do not serve no-such-suite", err)
	}
	if _, err := OpenSuite(os.DirFS("/"), t.TempDir(), "../x"); err == nil {
		t.Error("OpenSuite accepted the suite name ../x")
	}
}
