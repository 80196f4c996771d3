package sign

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChoose(t *testing.T) {
	dir := t.TempDir()
	devDir := filepath.Join(dir, "dev-key")
	dev := func() (string, error) { return devDir, nil }
	noCache := func() (string, error) { return "", errors.New("no cache directory") }

	// The development key: written on first use, with a note, then reused.
	s, notes, err := Choose(DevKeyRef, dir, dev)
	if err != nil || !IsDevKey(s.Public()) || len(notes) != 1 || !strings.Contains(notes[0], devDir) {
		t.Fatalf("Choose(dev) = %v, %q, %v; want the development key and a note naming %s", s, notes, err, devDir)
	}
	if _, notes, err = Choose(DevKeyRef, dir, dev); err != nil || len(notes) != 0 {
		t.Errorf("Choose(dev) again: notes %q, error %v; want none", notes, err)
	}
	if _, _, err := Choose(DevKeyRef, dir, noCache); err == nil || !strings.Contains(err.Error(), "no cache directory") {
		t.Errorf("Choose(dev) without a directory: error %v, want the directory's error", err)
	}

	// A key file, relative to base; devDir is not asked for.
	k, err := Generate(ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := k.EncodePrivateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "my.key"), enc, 0o600)
	t.Setenv(PasswordEnv, "")
	s, notes, err = Choose("my.key", dir, noCache)
	if err != nil || !s.Public().Equal(k.Public()) || len(notes) != 0 {
		t.Errorf("Choose(my.key) = %v, %q, %v; want the file's key", s, notes, err)
	}
	if _, _, err := Choose("missing.key", dir, noCache); err == nil {
		t.Error("Choose(missing.key): got no error")
	}
}
