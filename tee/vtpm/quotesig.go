package vtpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"
)

// AttestationKey is a parsed attestation key.
type AttestationKey struct {
	// Key is an *ecdsa.PublicKey or an *rsa.PublicKey.
	Key crypto.PublicKey
	// Format says what it was read from.
	Format string
}

// ParseAttestationKey reads an attestation key: a TPM2B_PUBLIC (what
// tpm2_createak -u and tpm2_readpublic -o write), which must be a
// restricted signing key (the TPM signs only its own attestations with
// one), or a PEM public key (tpm2_readpublic -f pem), ECDSA or RSA.
func ParseAttestationKey(b []byte) (*AttestationKey, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("a PEM %q block: want a PUBLIC KEY (tpm2_readpublic -f pem)", blk.Type)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM public key: %w", err)
		}
		switch k.(type) {
		case *ecdsa.PublicKey, *rsa.PublicKey:
		default:
			return nil, fmt.Errorf("a %T: a TPM attestation key is ECDSA or RSA", k)
		}
		return &AttestationKey{Key: k, Format: "PEM public key"}, nil
	}
	p2b, err := tpm2.Unmarshal[tpm2.TPM2BPublic](b)
	if err != nil {
		return nil, fmt.Errorf("neither a PEM public key nor a TPM2B_PUBLIC: %w", err)
	}
	if n := len(tpm2.Marshal(p2b)); n != len(b) {
		return nil, fmt.Errorf("%d bytes after the %d of a TPM2B_PUBLIC: give tpm2_readpublic -o or -f pem output", len(b)-n, n)
	}
	pub, err := p2b.Contents()
	if err != nil {
		return nil, fmt.Errorf("TPM2B_PUBLIC: %w", err)
	}
	if a := pub.ObjectAttributes; !a.Restricted || !a.SignEncrypt {
		return nil, errors.New("the TPM2B_PUBLIC is not a restricted signing key: an attestation key is one (tpm2_createak), else the TPM signs data that only looks like its quotes")
	}
	switch pub.Type {
	case tpm2.TPMAlgECC:
		parms, err := pub.Parameters.ECCDetail()
		if err != nil {
			return nil, fmt.Errorf("TPM2B_PUBLIC ECC parameters: %w", err)
		}
		pt, err := pub.Unique.ECC()
		if err != nil {
			return nil, fmt.Errorf("TPM2B_PUBLIC ECC point: %w", err)
		}
		curve, ok := map[tpm2.TPMECCCurve]elliptic.Curve{tpm2.TPMECCNistP256: elliptic.P256(), tpm2.TPMECCNistP384: elliptic.P384(), tpm2.TPMECCNistP521: elliptic.P521()}[parms.CurveID]
		if !ok {
			return nil, fmt.Errorf("TPM2B_PUBLIC: ECC curve %#x, not a NIST curve check knows", uint16(parms.CurveID))
		}
		size := (curve.Params().BitSize + 7) / 8
		if len(pt.X.Buffer) > size || len(pt.Y.Buffer) > size {
			return nil, fmt.Errorf("TPM2B_PUBLIC: an ECC point of %d and %d bytes on a curve of %d", len(pt.X.Buffer), len(pt.Y.Buffer), size)
		}
		point := make([]byte, 1+2*size)
		point[0] = 4 // uncompressed
		copy(point[1+size-len(pt.X.Buffer):], pt.X.Buffer)
		copy(point[1+2*size-len(pt.Y.Buffer):], pt.Y.Buffer)
		k, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return nil, fmt.Errorf("TPM2B_PUBLIC: the ECC point: %w", err)
		}
		return &AttestationKey{Key: k, Format: "TPM2B_PUBLIC, restricted signing key"}, nil
	case tpm2.TPMAlgRSA:
		parms, err := pub.Parameters.RSADetail()
		if err != nil {
			return nil, fmt.Errorf("TPM2B_PUBLIC RSA parameters: %w", err)
		}
		n, err := pub.Unique.RSA()
		if err != nil {
			return nil, fmt.Errorf("TPM2B_PUBLIC RSA modulus: %w", err)
		}
		k, err := tpm2.RSAPub(parms, n)
		if err != nil {
			return nil, fmt.Errorf("TPM2B_PUBLIC RSA key: %w", err)
		}
		return &AttestationKey{Key: k, Format: "TPM2B_PUBLIC, restricted signing key"}, nil
	}
	return nil, fmt.Errorf("TPM2B_PUBLIC of type %#x: an attestation key is ECC or RSA", uint16(pub.Type))
}

// sigHashes are the hashes a quote's signature may digest it with.
var sigHashes = map[tpm2.TPMIAlgHash]crypto.Hash{tpm2.TPMAlgSHA1: crypto.SHA1, tpm2.TPMAlgSHA256: crypto.SHA256,
	tpm2.TPMAlgSHA384: crypto.SHA384, tpm2.TPMAlgSHA512: crypto.SHA512}

// ParseQuoteSignature reads a TPMT_SIGNATURE (what tpm2_quote -s writes),
// the whole of b.
func ParseQuoteSignature(b []byte) (*tpm2.TPMTSignature, error) {
	s, err := tpm2.Unmarshal[tpm2.TPMTSignature](b)
	if err != nil {
		return nil, fmt.Errorf("not a TPMT_SIGNATURE (tpm2_quote -s): %w", err)
	}
	if n := len(tpm2.Marshal(s)); n != len(b) {
		return nil, fmt.Errorf("%d bytes after the %d of a TPMT_SIGNATURE", len(b)-n, n)
	}
	return s, nil
}

// VerifyQuoteSignature checks s, the quote's signature, over attest, the
// TPMS_ATTEST bytes, with ak (TPM 2.0 Part 1: the signature is over the
// digest of the TPMS_ATTEST with the scheme's hash). It returns the
// scheme, e.g. "ECDSA SHA-256".
func VerifyQuoteSignature(ak *AttestationKey, attest []byte, s *tpm2.TPMTSignature) (string, error) {
	var err error
	var hashAlg tpm2.TPMIAlgHash
	var verify func(crypto.Hash, []byte) bool
	var scheme string
	switch s.SigAlg {
	case tpm2.TPMAlgECDSA:
		e, err := s.Signature.ECDSA()
		if err != nil {
			return "", err
		}
		k, ok := ak.Key.(*ecdsa.PublicKey)
		if !ok {
			return "", fmt.Errorf("an ECDSA signature and an attestation key of type %T", ak.Key)
		}
		hashAlg, scheme = e.Hash, "ECDSA"
		r, ss := new(big.Int).SetBytes(e.SignatureR.Buffer), new(big.Int).SetBytes(e.SignatureS.Buffer)
		verify = func(_ crypto.Hash, d []byte) bool { return ecdsa.Verify(k, d, r, ss) }
	case tpm2.TPMAlgRSASSA, tpm2.TPMAlgRSAPSS:
		var r *tpm2.TPMSSignatureRSA
		if s.SigAlg == tpm2.TPMAlgRSASSA {
			r, err = s.Signature.RSASSA()
			scheme = "RSASSA-PKCS1-v1_5"
		} else {
			r, err = s.Signature.RSAPSS()
			scheme = "RSASSA-PSS"
		}
		if err != nil {
			return "", err
		}
		k, ok := ak.Key.(*rsa.PublicKey)
		if !ok {
			return "", fmt.Errorf("an RSA signature and an attestation key of type %T", ak.Key)
		}
		hashAlg = r.Hash
		verify = func(h crypto.Hash, d []byte) bool {
			if s.SigAlg == tpm2.TPMAlgRSASSA {
				return rsa.VerifyPKCS1v15(k, h, d, r.Sig.Buffer) == nil
			}
			return rsa.VerifyPSS(k, h, d, r.Sig.Buffer, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
		}
	default:
		return "", fmt.Errorf("a signature of scheme %#x: check verifies ECDSA, RSASSA and RSAPSS", uint16(s.SigAlg))
	}
	h, ok := sigHashes[hashAlg]
	if !ok {
		return "", fmt.Errorf("a %s signature with hash %#x, which check does not know", scheme, uint16(hashAlg))
	}
	scheme += " " + h.String()
	d := h.New()
	d.Write(attest)
	if !verify(h, d.Sum(nil)) {
		return scheme, fmt.Errorf("the %s signature does not verify with this attestation key: the quote was signed by another key, or altered", scheme)
	}
	return scheme, nil
}

// checkNonce compares the quote's extra data with the verifier's nonce.
func checkNonce(q *Quote, nonce []byte) error {
	if got := q.Attest.ExtraData.Buffer; !bytes.Equal(got, nonce) {
		return fmt.Errorf("the quote's nonce (extra_data) is %x, not the verifier's %x: a replayed quote, or one made for another verifier", got, nonce)
	}
	return nil
}
