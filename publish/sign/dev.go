package sign

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
)

// DevKeyRef is the key reference that selects the development key.
const DevKeyRef = "dev"

// DevKeyWarning is printed whenever the development key signs anything.
const DevKeyWarning = `WARNING: signed with the DEVELOPMENT key, which proves nothing about who ` +
	`made these reference values. For a release, make a key with "cocobuild keygen" ` +
	`and set key = "env://COCOBUILD_SIGNING_KEY" (or a key file).`

// DevKey returns the development key kept in dir (cosign.key, encrypted with
// an empty passphrase, and cosign.pub), making it on first use. created says
// it was made now. Concurrent callers all get the same key.
func DevKey(dir string) (s *Signer, created bool, err error) {
	priv := filepath.Join(dir, PrivateKeyFile)
	if b, err := os.ReadFile(priv); err == nil {
		s, err := ParsePrivateKey(b, nil)
		if err != nil {
			return nil, false, fmt.Errorf("development key %s: %w (remove it to make a new one)", priv, err)
		}
		return s, false, writeDevPub(dir, s)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	s, err = Generate(ECDSAP256)
	if err != nil {
		return nil, false, err
	}
	enc, err := s.EncodePrivateKey(nil)
	if err != nil {
		return nil, false, err
	}
	tmp, err := os.CreateTemp(dir, ".cosign.key.tmp-*")
	if err != nil {
		return nil, false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(enc); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if err := tmp.Close(); err != nil {
		return nil, false, err
	}
	// A link creates the key only if no other process made one meanwhile.
	if err := os.Link(tmp.Name(), priv); err != nil {
		if errors.Is(err, os.ErrExist) {
			return DevKey(dir)
		}
		return nil, false, err
	}
	return s, true, writeDevPub(dir, s)
}

func writeDevPub(dir string, s *Signer) error {
	pub := filepath.Join(dir, PublicKeyFile)
	if b, err := os.ReadFile(pub); err == nil && string(b) == string(s.Public().PEM()) {
		return nil
	}
	return atomicfile.WriteFile(pub, s.Public().PEM(), 0o644)
}
