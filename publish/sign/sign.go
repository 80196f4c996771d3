// Package sign holds the signing keys of cocobuild: ECDSA P-256 and Ed25519
// key pairs in the cosign/sigstore key format (a passphrase-encrypted PKCS#8
// private key in an "ENCRYPTED SIGSTORE PRIVATE KEY" PEM block, scrypt and
// secretbox, and a PKIX "PUBLIC KEY" PEM), deterministic signatures, and
// verification.
//
// Signatures are deterministic (RFC 6979 for ECDSA, Ed25519 by design), so
// the same key signing the same bytes gives the same signature and signed
// outputs stay reproducible. ECDSA signs the SHA-256 digest of the message,
// as cosign does for blobs and DSSE envelopes.
package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/cocobuild/cocobuild/internal/atomicfile"
)

// Algorithm names a key type.
type Algorithm string

// Supported key algorithms.
const (
	ECDSAP256 Algorithm = "ecdsa-p256"
	Ed25519   Algorithm = "ed25519"
)

// ParseAlgorithm accepts the names of the supported key types.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToLower(s) {
	case "ecdsa-p256", "ecdsa", "p256", "p-256", "":
		return ECDSAP256, nil
	case "ed25519":
		return Ed25519, nil
	}
	return "", fmt.Errorf("unknown key algorithm %q: use ecdsa-p256 or ed25519", s)
}

// PasswordEnv is the environment variable that holds the passphrase of a
// private key, as for cosign.
const PasswordEnv = "COSIGN_PASSWORD"

// Signer signs with a private key. It never exposes or serialises the key
// except through EncodePrivateKey.
type Signer struct {
	key crypto.Signer
	pub *PublicKey
}

// PublicKey verifies signatures made by a Signer.
type PublicKey struct {
	Key crypto.PublicKey // *ecdsa.PublicKey (P-256) or ed25519.PublicKey
	der []byte
}

// Generate makes a new key pair.
func Generate(alg Algorithm) (*Signer, error) {
	var k crypto.Signer
	var err error
	switch alg {
	case ECDSAP256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("unknown key algorithm %q", alg)
	}
	if err != nil {
		return nil, err
	}
	return NewSigner(k)
}

// NewSigner wraps a P-256 ECDSA or Ed25519 private key.
func NewSigner(k crypto.Signer) (*Signer, error) {
	pub, err := NewPublicKey(k.Public())
	if err != nil {
		return nil, err
	}
	return &Signer{key: k, pub: pub}, nil
}

// NewPublicKey wraps a P-256 ECDSA or Ed25519 public key.
func NewPublicKey(k crypto.PublicKey) (*PublicKey, error) {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key on curve %s: only P-256 is supported", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("unsupported key type %T: use ECDSA P-256 or Ed25519", k)
	}
	der, err := cryptoutils.MarshalPublicKeyToDER(k)
	if err != nil {
		return nil, err
	}
	return &PublicKey{Key: k, der: der}, nil
}

// Public returns the signer's public key.
func (s *Signer) Public() *PublicKey { return s.pub }

// Algorithm returns the key type.
func (p *PublicKey) Algorithm() Algorithm {
	if _, ok := p.Key.(ed25519.PublicKey); ok {
		return Ed25519
	}
	return ECDSAP256
}

// Sign signs msg: ECDSA over its SHA-256 digest (ASN.1 DER signature,
// RFC 6979 nonce), Ed25519 over msg itself.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	switch k := s.key.(type) {
	case *ecdsa.PrivateKey:
		d := sha256.Sum256(msg)
		return k.Sign(nil, d[:], crypto.SHA256) // nil rand: deterministic (RFC 6979)
	case ed25519.PrivateKey:
		return ed25519.Sign(k, msg), nil
	}
	return nil, fmt.Errorf("unsupported key type %T", s.key)
}

// SignDigest signs a SHA-256 digest (ECDSA only), deterministically.
func (s *Signer) SignDigest(digest []byte) ([]byte, error) {
	k, ok := s.key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("only ECDSA keys sign digests")
	}
	return k.Sign(nil, digest, crypto.SHA256)
}

// ErrSignature is returned (wrapped) when a signature does not verify.
var ErrSignature = errors.New("signature does not verify with the key")

// Verify checks a signature made by Sign.
func (p *PublicKey) Verify(msg, sig []byte) error {
	switch k := p.Key.(type) {
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(k, d[:], sig) {
			return fmt.Errorf("%w %s", ErrSignature, p.ID())
		}
		return nil
	case ed25519.PublicKey:
		if !ed25519.Verify(k, msg, sig) {
			return fmt.Errorf("%w %s", ErrSignature, p.ID())
		}
		return nil
	}
	return fmt.Errorf("unsupported key type %T", p.Key)
}

// DER returns the PKIX (SubjectPublicKeyInfo) encoding of the key.
func (p *PublicKey) DER() []byte { return append([]byte(nil), p.der...) }

// PEM returns the key as a "PUBLIC KEY" PEM block, as cosign writes it.
func (p *PublicKey) PEM() []byte {
	return cryptoutils.PEMEncode(cryptoutils.PublicKeyPEMType, p.der)
}

// Hint is the key hint of sigstore bundles: the base64 SHA-256 of the
// PKIX encoding.
func (p *PublicKey) Hint() string {
	d := sha256.Sum256(p.der)
	return base64.StdEncoding.EncodeToString(d[:])
}

// ID is a short printable identity: "sha256:" and the hex digest of the
// PKIX encoding.
func (p *PublicKey) ID() string {
	d := sha256.Sum256(p.der)
	return "sha256:" + hex.EncodeToString(d[:])
}

// Equal reports whether two public keys are the same key.
func (p *PublicKey) Equal(q *PublicKey) bool {
	return q != nil && string(p.der) == string(q.der)
}

// EncodePrivateKey encrypts the private key with password in the
// cosign/sigstore format ("ENCRYPTED SIGSTORE PRIVATE KEY" PEM). An empty
// password is allowed (cosign allows it too) but only for development keys.
func (s *Signer) EncodePrivateKey(password []byte) ([]byte, error) {
	if password == nil {
		password = []byte{}
	}
	der, err := cryptoutils.MarshalPrivateKeyToEncryptedDER(s.key, cryptoutils.StaticPasswordFunc(password))
	if err != nil {
		return nil, err
	}
	return cryptoutils.PEMEncode(cryptoutils.EncryptedSigstorePrivateKeyPEMType, der), nil
}

// ParsePrivateKey reads a private key PEM: the cosign/sigstore encrypted
// format (decrypted with password), or an unencrypted PKCS#8, SEC 1 EC key.
func ParsePrivateKey(pemBytes, password []byte) (*Signer, error) {
	if password == nil {
		password = []byte{}
	}
	k, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, cryptoutils.StaticPasswordFunc(password))
	if err != nil {
		if strings.Contains(err.Error(), "decryption failed") {
			return nil, fmt.Errorf("decrypting the private key: wrong passphrase (set %s)", PasswordEnv)
		}
		return nil, fmt.Errorf("reading the private key: %w", err)
	}
	cs, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	if ek, ok := k.(*ecdsa.PrivateKey); ok && ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("ECDSA key on curve %s: only P-256 is supported", ek.Curve.Params().Name)
	}
	return NewSigner(cs)
}

// ParsePublicKey reads a "PUBLIC KEY" PEM block.
func ParsePublicKey(pemBytes []byte) (*PublicKey, error) {
	k, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("reading the public key: %w", err)
	}
	return NewPublicKey(k)
}

// EnvPrefix marks a key reference that names an environment variable holding
// the PEM itself, as in env://COCOBUILD_SIGNING_KEY.
const EnvPrefix = "env://"

// ReadRef returns the bytes a key reference points at: the value of the
// environment variable for env://VAR, otherwise the file at the path
// (relative paths start at base).
func ReadRef(ref, base string) ([]byte, error) {
	if name, ok := strings.CutPrefix(ref, EnvPrefix); ok {
		if name == "" {
			return nil, fmt.Errorf("key reference %q names no environment variable", ref)
		}
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return nil, fmt.Errorf("environment variable %s is not set: put the PEM key in it (e.g. %s=\"$(cat cosign.key)\")", name, name)
		}
		return []byte(v), nil
	}
	p := ref
	if !filepath.IsAbs(p) && base != "" {
		p = filepath.Join(base, p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading key: %w", err)
	}
	return b, nil
}

// PasswordFromEnv returns the passphrase in $COSIGN_PASSWORD, or an empty one.
func PasswordFromEnv() []byte { return []byte(os.Getenv(PasswordEnv)) }

// LoadSigner reads the private key that ref points at (a path relative to
// base, or env://VAR) and decrypts it with password.
func LoadSigner(ref, base string, password []byte) (*Signer, error) {
	b, err := ReadRef(ref, base)
	if err != nil {
		return nil, err
	}
	s, err := ParsePrivateKey(b, password)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", ref, err)
	}
	return s, nil
}

// LoadPublicKey reads the public key that ref points at (a path relative to
// base, or env://VAR).
func LoadPublicKey(ref, base string) (*PublicKey, error) {
	b, err := ReadRef(ref, base)
	if err != nil {
		return nil, err
	}
	p, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", ref, err)
	}
	return p, nil
}

// Key file names, as cosign generate-key-pair writes them.
const (
	PrivateKeyFile = "cosign.key"
	PublicKeyFile  = "cosign.pub"
)

// WriteKeyPair writes PREFIX.key (encrypted with password, mode 0600) and
// PREFIX.pub into dir. It refuses to overwrite an existing private key.
func WriteKeyPair(s *Signer, dir, prefix string, password []byte) (priv, pub string, err error) {
	priv = filepath.Join(dir, prefix+".key")
	pub = filepath.Join(dir, prefix+".pub")
	if _, err := os.Stat(priv); err == nil {
		return "", "", fmt.Errorf("%s exists: refusing to overwrite a private key (remove it or choose another --output-key-prefix)", priv)
	}
	enc, err := s.EncodePrivateKey(password)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	if err := atomicfile.WriteFile(priv, enc, 0o600); err != nil {
		return "", "", err
	}
	if err := atomicfile.WriteFile(pub, s.Public().PEM(), 0o644); err != nil {
		return "", "", err
	}
	return priv, pub, nil
}
