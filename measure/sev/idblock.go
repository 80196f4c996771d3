package sev

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/google/go-sev-guest/abi"
)

// Sizes of the SNP_LAUNCH_FINISH ID structures (SEV-SNP firmware ABI).
const (
	IDBlockSize = 0x60   // ID_BLOCK
	IDAuthSize  = 0x1000 // ID_AUTH_INFO
)

// ID_AUTH_INFO layout.
const (
	idAuthIDKeyAlgo     = 0x000
	idAuthAuthorKeyAlgo = 0x004
	idAuthBlockSig      = 0x040
	idAuthIDKey         = 0x240
	idAuthIDKeySig      = 0x680
	idAuthAuthorKey     = 0x880
)

// idBlockVersion is the only ID_BLOCK version the firmware accepts.
const idBlockVersion = 1

// DefaultIDPolicy is the guest policy snp-create-id-block puts in ID blocks:
// ABI 0.0, SMT allowed (bit 16) and the reserved bit 17 that must be 1.
const DefaultIDPolicy = 0x30000

// IDBlockParams are the contents of an SNP ID block and the keys that sign it.
type IDBlockParams struct {
	// LaunchDigest is the expected SNP launch digest (48 bytes).
	LaunchDigest []byte
	// FamilyID and ImageID are the guest owner's identifiers, echoed in reports.
	FamilyID, ImageID [16]byte
	// GuestSVN is the guest security version number.
	GuestSVN uint32
	// Policy is the guest policy the launch must use.
	Policy abi.SnpPolicy
	// IDKey signs the ID block; it must be an ECDSA P-384 key.
	IDKey *ecdsa.PrivateKey
	// AuthorKey, if set, signs the ID key (P-384); launch with author keys enabled.
	AuthorKey *ecdsa.PrivateKey
	// Rand is the randomness for the signatures; nil means crypto/rand.
	Rand io.Reader
}

// IDBlock is a signed SNP ID block, ready for SNP_LAUNCH_FINISH (QEMU's
// sev-snp-guest id-block= and id-auth= take them in base64).
type IDBlock struct {
	Block []byte // ID_BLOCK, IDBlockSize bytes
	Auth  []byte // ID_AUTH_INFO, IDAuthSize bytes
	// IDKeyDigest is SHA-384 of the ID public key in SEV format, which reports carry as ID_KEY_DIGEST.
	IDKeyDigest []byte
	// AuthorKeyDigest is the same for the author key (AUTHOR_KEY_DIGEST), nil without one.
	AuthorKeyDigest []byte
}

// NewIDBlock builds the ID block of p and signs it with the ID key, and the ID
// key with the author key if there is one.
func NewIDBlock(p IDBlockParams) (*IDBlock, error) {
	if len(p.LaunchDigest) != DigestSize {
		return nil, fmt.Errorf("ID block: launch digest is %d bytes, want %d (an SNP measurement)", len(p.LaunchDigest), DigestSize)
	}
	if p.IDKey == nil {
		return nil, errors.New("ID block: an ID key is required to sign it")
	}
	policy := abi.SnpPolicyToBytes(p.Policy)
	if _, err := abi.ParseSnpPolicy(policy); err != nil {
		return nil, fmt.Errorf("ID block: policy %#x: %w", policy, err)
	}
	rnd := p.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	out := &IDBlock{Block: make([]byte, IDBlockSize), Auth: make([]byte, IDAuthSize)}
	b := out.Block
	copy(b[0x00:0x30], p.LaunchDigest)
	copy(b[0x30:0x40], p.FamilyID[:])
	copy(b[0x40:0x50], p.ImageID[:])
	binary.LittleEndian.PutUint32(b[0x50:], idBlockVersion)
	binary.LittleEndian.PutUint32(b[0x54:], p.GuestSVN)
	binary.LittleEndian.PutUint64(b[0x58:], policy)

	idPub, err := sevPublicKey("ID", p.IDKey)
	if err != nil {
		return nil, err
	}
	a := out.Auth
	binary.LittleEndian.PutUint32(a[idAuthIDKeyAlgo:], abi.SignEcdsaP384Sha384)
	if err := sevSign(rnd, p.IDKey, b, a[idAuthBlockSig:idAuthBlockSig+abi.SignatureSize]); err != nil {
		return nil, fmt.Errorf("ID block: signing with the ID key: %w", err)
	}
	copy(a[idAuthIDKey:], idPub)
	d := sha512.Sum384(idPub)
	out.IDKeyDigest = d[:]
	if p.AuthorKey != nil {
		authorPub, err := sevPublicKey("author", p.AuthorKey)
		if err != nil {
			return nil, err
		}
		binary.LittleEndian.PutUint32(a[idAuthAuthorKeyAlgo:], abi.SignEcdsaP384Sha384)
		if err := sevSign(rnd, p.AuthorKey, idPub, a[idAuthIDKeySig:idAuthIDKeySig+abi.SignatureSize]); err != nil {
			return nil, fmt.Errorf("ID block: signing the ID key with the author key: %w", err)
		}
		copy(a[idAuthAuthorKey:], authorPub)
		d := sha512.Sum384(authorPub)
		out.AuthorKeyDigest = d[:]
	}
	return out, nil
}

// sevPublicKey returns the SEV ABI form of a P-384 public key.
func sevPublicKey(role string, k *ecdsa.PrivateKey) ([]byte, error) {
	if k.Curve != elliptic.P384() {
		return nil, fmt.Errorf("ID block: the %s key is on %s; SNP only takes ECDSA P-384 keys (openssl ecparam -name secp384r1 -genkey)", role, k.Curve.Params().Name)
	}
	pub, err := abi.EcdsaPublicKeyToBytes(&k.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("ID block: the %s key: %w", role, err)
	}
	return pub, nil
}

// rsSize is the size of each of R and S in an SEV ECDSA signature (little-endian).
const rsSize = 72

// sevSign signs SHA-384(msg) with k and writes R and S little-endian into sig.
func sevSign(rnd io.Reader, k *ecdsa.PrivateKey, msg, sig []byte) error {
	digest := sha512.Sum384(msg)
	r, s, err := ecdsa.Sign(rnd, k, digest[:])
	if err != nil {
		return err
	}
	putLE(sig[0:rsSize], r)
	putLE(sig[rsSize:2*rsSize], s)
	return nil
}

// putLE writes n little-endian into b.
func putLE(b []byte, n *big.Int) {
	n.FillBytes(b)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
}

// getLE reads a little-endian integer.
func getLE(b []byte) *big.Int {
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	return new(big.Int).SetBytes(be)
}

// VerifyIDBlock checks the signatures of an ID block against the public keys
// it carries, and returns an error saying what does not verify.
func VerifyIDBlock(block, auth []byte) error {
	if len(block) != IDBlockSize || len(auth) != IDAuthSize {
		return fmt.Errorf("ID block is %d bytes and ID auth %d, want %d and %d", len(block), len(auth), IDBlockSize, IDAuthSize)
	}
	idKey, err := parseSEVPublicKey(auth[idAuthIDKey : idAuthIDKey+abi.EcsdaPublicKeySize])
	if err != nil {
		return fmt.Errorf("ID key: %w", err)
	}
	if !sevVerify(idKey, block, auth[idAuthBlockSig:]) {
		return errors.New("the ID block signature does not verify with the ID key")
	}
	if binary.LittleEndian.Uint32(auth[idAuthAuthorKeyAlgo:]) == 0 {
		return nil
	}
	authorKey, err := parseSEVPublicKey(auth[idAuthAuthorKey : idAuthAuthorKey+abi.EcsdaPublicKeySize])
	if err != nil {
		return fmt.Errorf("author key: %w", err)
	}
	if !sevVerify(authorKey, auth[idAuthIDKey:idAuthIDKey+abi.EcsdaPublicKeySize], auth[idAuthIDKeySig:]) {
		return errors.New("the ID key signature does not verify with the author key")
	}
	return nil
}

func parseSEVPublicKey(b []byte) (*ecdsa.PublicKey, error) {
	if c := binary.LittleEndian.Uint32(b[0:4]); c != abi.EccP384 {
		return nil, fmt.Errorf("curve %d is not P-384 (%d)", c, abi.EccP384)
	}
	const coord = 48 // P-384 coordinates; the SEV fields are 72 bytes wide
	point := make([]byte, 1+2*coord)
	point[0] = 4 // uncompressed
	for i, off := range []int{4, 4 + rsSize} {
		v := getLE(b[off : off+rsSize])
		if v.BitLen() > 8*coord {
			return nil, errors.New("a coordinate is wider than P-384's")
		}
		v.FillBytes(point[1+i*coord : 1+(i+1)*coord])
	}
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P384(), point)
	if err != nil {
		return nil, fmt.Errorf("not a P-384 public key: %w", err)
	}
	return k, nil
}

func sevVerify(k *ecdsa.PublicKey, msg, sig []byte) bool {
	digest := sha512.Sum384(msg)
	return ecdsa.Verify(k, digest[:], getLE(sig[0:rsSize]), getLE(sig[rsSize:2*rsSize]))
}

// ParseIDKeyPEM reads an unencrypted ECDSA P-384 private key from PEM
// ("EC PRIVATE KEY" as openssl ecparam -genkey writes, or PKCS#8 "PRIVATE KEY").
func ParseIDKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return nil, errors.New("no EC PRIVATE KEY or PRIVATE KEY PEM block: make one with openssl ecparam -name secp384r1 -genkey -noout")
		}
		var key any
		var err error
		switch blk.Type {
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(blk.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the key is encrypted: decrypt it first (openssl pkey -in KEY -out PLAIN)")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", blk.Type, err)
		}
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("the key is a %T, not an ECDSA key: SNP takes ECDSA P-384", key)
		}
		if k.Curve != elliptic.P384() {
			return nil, fmt.Errorf("the key is on %s: SNP takes ECDSA P-384", k.Curve.Params().Name)
		}
		return k, nil
	}
}
