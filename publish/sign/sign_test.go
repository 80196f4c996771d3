package sign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

func TestKeyPairRoundTrip(t *testing.T) {
	for _, alg := range []Algorithm{ECDSAP256, Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			s, err := Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			pw := []byte("correct horse")
			priv, err := s.EncodePrivateKey(pw)
			if err != nil {
				t.Fatal(err)
			}
			blk, _ := pem.Decode(priv)
			if blk == nil || blk.Type != "ENCRYPTED SIGSTORE PRIVATE KEY" {
				t.Fatalf("private key PEM type %v, want ENCRYPTED SIGSTORE PRIVATE KEY", blk)
			}
			// cosign reads the key with cryptoutils: it must get the same key.
			k, err := cryptoutils.UnmarshalPEMToPrivateKey(priv, cryptoutils.StaticPasswordFunc(pw))
			if err != nil {
				t.Fatalf("cosign's key reader rejects the key: %v", err)
			}
			if err := cryptoutils.EqualKeys(k.(crypto.Signer).Public(), s.Public().Key); err != nil {
				t.Fatal(err)
			}
			back, err := ParsePrivateKey(priv, pw)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Public().Equal(s.Public()) {
				t.Error("the key read back is another key")
			}
			if _, err := ParsePrivateKey(priv, []byte("wrong")); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
				t.Errorf("wrong passphrase: error %v, want one saying so", err)
			}
			pub, err := ParsePublicKey(s.Public().PEM())
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte("reference values")
			sig, err := s.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := pub.Verify(msg, sig); err != nil {
				t.Fatal(err)
			}
			// cosign verify-blob's verifier agrees.
			v, err := signature.LoadVerifier(pub.Key, crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err != nil {
				t.Errorf("sigstore verifier rejects the signature: %v", err)
			}
			if err := pub.Verify([]byte("other"), sig); err == nil {
				t.Error("a signature verified for another message")
			}
			again, _ := s.Sign(msg)
			if !bytes.Equal(sig, again) {
				t.Error("two signatures of the same message differ: signing is not deterministic")
			}
		})
	}
}

func TestReadsCosignGeneratedKeys(t *testing.T) {
	// cosign generate-key-pair uses this function.
	priv, pub, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte("pw")))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParsePrivateKey(priv, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Equal(s.Public()) {
		t.Error("public key does not match the private key")
	}
}

func TestRejectsOtherKeys(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P384(), nil)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	if _, err := ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil); err == nil || !strings.Contains(err.Error(), "P-256") {
		t.Errorf("P-384 key: error %v, want one naming P-256", err)
	}
	if _, err := ParsePublicKey([]byte("not a key")); err == nil {
		t.Error("garbage public key accepted")
	}
}

func TestReadRef(t *testing.T) {
	dir := t.TempDir()
	s, _ := Generate(Ed25519)
	priv, _ := s.EncodePrivateKey([]byte("x"))
	if err := os.WriteFile(filepath.Join(dir, "k.key"), priv, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_COCOBUILD_KEY", string(priv))
	for _, ref := range []string{"k.key", filepath.Join(dir, "k.key"), "env://TEST_COCOBUILD_KEY"} {
		got, err := LoadSigner(ref, dir, []byte("x"))
		if err != nil {
			t.Errorf("%s: %v", ref, err)
			continue
		}
		if !got.Public().Equal(s.Public()) {
			t.Errorf("%s: another key", ref)
		}
	}
	if _, err := LoadSigner("env://TEST_COCOBUILD_UNSET", dir, nil); err == nil || !strings.Contains(err.Error(), "TEST_COCOBUILD_UNSET is not set") {
		t.Errorf("unset variable: %v", err)
	}
}

func TestWriteKeyPairRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	s, _ := Generate(ECDSAP256)
	priv, pub, err := WriteKeyPair(s, dir, "cosign", []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(priv)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if _, err := LoadPublicKey(pub, ""); err != nil {
		t.Error(err)
	}
	if _, _, err := WriteKeyPair(s, dir, "cosign", []byte("pw")); err == nil {
		t.Error("overwrote an existing private key")
	}
}

func TestDevKeyIsFixedAndWrittenOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	var wg sync.WaitGroup
	keys := make([]*Signer, 4)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _, err := DevKey(dir)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = s
		}()
	}
	wg.Wait()
	for i, k := range keys {
		if k == nil {
			t.FailNow()
		}
		if !k.Public().Equal(DevSigner().Public()) || !IsDevKey(k.Public()) {
			t.Errorf("caller %d got another key than the development key", i)
		}
	}
	s, created, err := DevKey(dir)
	if err != nil || created {
		t.Errorf("third use: created=%v err=%v, want the files kept", created, err)
	}
	// The files hold the same key, readable as cosign reads them.
	b, err := os.ReadFile(filepath.Join(dir, PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePrivateKey(b, nil)
	if err != nil || !back.Public().Equal(s.Public()) {
		t.Errorf("cosign.key: %v", err)
	}
	pub, err := LoadPublicKey(filepath.Join(dir, PublicKeyFile), "")
	if err != nil || !pub.Equal(s.Public()) {
		t.Errorf("cosign.pub: %v", err)
	}
	// Another directory (another cache, machine or HOME) gets the same key:
	// builds signed with it stay reproducible.
	other, created, err := DevKey(filepath.Join(t.TempDir(), "elsewhere"))
	if err != nil || !created || !other.Public().Equal(s.Public()) {
		t.Errorf("elsewhere: created=%v err=%v, want the same key written", created, err)
	}
	if g, _ := Generate(ECDSAP256); IsDevKey(g.Public()) {
		t.Error("a new key is taken for the development key")
	}
}

func TestEd25519PublicKeyType(t *testing.T) {
	s, _ := Generate(Ed25519)
	if _, ok := s.Public().Key.(ed25519.PublicKey); !ok || s.Public().Algorithm() != Ed25519 {
		t.Errorf("key type %T", s.Public().Key)
	}
	if _, err := s.SignDigest(make([]byte, 32)); err == nil {
		t.Error("Ed25519 signed a digest")
	}
}
