package sign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
)

// DevKeyRef is the key reference that selects the development key.
const DevKeyRef = "dev"

// DevKeyWarning is printed whenever the development key signs anything.
const DevKeyWarning = `WARNING: signed with the DEVELOPMENT key, which is public and proves nothing ` +
	`about who made these reference values. For a release, make a key with "cocobuild keygen" ` +
	`and set key = "env://COCOBUILD_SIGNING_KEY" (or a key file).`

// devSeed derives the development key. It is public on purpose: the
// development key is the same on every machine and in every cache, so
// builds that sign with it stay byte-for-byte reproducible (cocobuild repro
// builds with a cold cache and another HOME), and nobody can mistake what it
// signs for a release: anyone can sign with it.
const devSeed = "cocobuild development signing key v1: public, proves nothing"

// DevSigner returns the development key.
func DevSigner() *Signer {
	d := sha256.Sum256([]byte(devSeed))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		panic("sign: the development key seed is not a P-256 scalar: " + err.Error()) // fixed input: cannot happen
	}
	s, err := NewSigner(k)
	if err != nil {
		panic("sign: " + err.Error())
	}
	return s
}

// IsDevKey reports whether a public key is the development key.
func IsDevKey(p *PublicKey) bool { return p.Equal(DevSigner().Public()) }

// DevKey returns the development key and writes it into dir as cosign.key
// (encrypted with an empty passphrase, as cosign reads it) and cosign.pub,
// unless they are there already; created says it wrote them now.
func DevKey(dir string) (s *Signer, created bool, err error) {
	s = DevSigner()
	priv, pub := filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	if b, err := os.ReadFile(pub); err == nil && string(b) == string(s.Public().PEM()) {
		if _, err := os.Stat(priv); err == nil {
			return s, false, nil
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, false, err
	}
	enc, err := s.EncodePrivateKey(nil)
	if err != nil {
		return nil, false, err
	}
	if err := atomicfile.WriteFile(priv, enc, 0o600); err != nil {
		return nil, false, fmt.Errorf("writing the development key: %w", err)
	}
	if err := atomicfile.WriteFile(pub, s.Public().PEM(), 0o644); err != nil {
		return nil, false, fmt.Errorf("writing the development key: %w", err)
	}
	return s, true, nil
}

// Choose returns the signer a key reference selects, the one choice for
// every caller: DevKeyRef the development key (kept in the directory
// devDir returns, with a note when it is written there now); otherwise a
// private key file (relative to base) or env://VAR, decrypted with the
// passphrase in $COSIGN_PASSWORD.
func Choose(ref, base string, devDir func() (string, error)) (s *Signer, notes []string, err error) {
	if ref != DevKeyRef {
		s, err := LoadSigner(ref, base, PasswordFromEnv())
		return s, nil, err
	}
	dir, err := devDir()
	if err != nil {
		return nil, nil, fmt.Errorf("key %q: %w", DevKeyRef, err)
	}
	s, created, err := DevKey(dir)
	if err != nil {
		return nil, nil, err
	}
	if created {
		notes = append(notes, "wrote the DEVELOPMENT signing key (public, the same everywhere) into "+dir)
	}
	return s, notes, nil
}
