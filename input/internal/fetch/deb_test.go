package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// TestAptDebFile downloads a small real package with the host's apt-get and
// extracts a file from it.
func TestAptDebFile(t *testing.T) {
	testenv.Tool(t, "apt-get", "apt")
	dir := t.TempDir()
	ver, err := AptCandidate(context.Background(), "hostname")
	if err != nil {
		t.Fatal(err)
	}
	deb, err := AptDownload(context.Background(), "hostname", ver, dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(deb)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b, err := DebFile(f, st.Size(), "bin/hostname")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x7fELF")) {
		t.Errorf("bin/hostname from the package is not an ELF file (%d bytes)", len(b))
	}
	if _, err := DebFile(f, st.Size(), "bin/nonexistent"); err == nil {
		t.Error("DebFile found a file the package does not hold")
	}
	_, err = AptDownload(context.Background(), "hostname", "0.0.0-not-a-version", t.TempDir())
	if !errors.Is(err, ErrVersionGone) {
		t.Errorf("AptDownload of a vanished version: error %v, want ErrVersionGone", err)
	}
	sum := sha256.Sum256(b)
	t.Logf("hostname %s: bin/hostname sha256 %s", ver, hex.EncodeToString(sum[:]))
}

func TestDebFileRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("!<arch>\n"), []byte("!<arch>\ndata.tar.xz/    0           0     0     100644  99999999  `\n")} {
		if _, err := DebFile(bytes.NewReader(b), int64(len(b)), "x"); err == nil {
			t.Errorf("DebFile(%q) succeeded", b)
		}
	}
}

func FuzzDebFile(f *testing.F) {
	f.Add([]byte("!<arch>\n"))
	f.Add([]byte("!<arch>\ndata.tar/       0           0     0     100644  10        `\n0123456789"))
	f.Fuzz(func(t *testing.T, b []byte) {
		DebFile(bytes.NewReader(b), int64(len(b)), "boot/vmlinuz")
	})
}
