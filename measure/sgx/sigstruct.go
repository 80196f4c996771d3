package sgx

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"slices"
)

// SigStructSize is the size of a SIGSTRUCT.
const SigStructSize = 1808

// ModulusSize is the size of the RSA-3072 modulus, signature, Q1 and Q2
// of a SIGSTRUCT.
const ModulusSize = 384

// SigStructExponent is the RSA public exponent SGX requires.
const SigStructExponent = 3

// The fixed header words of a SIGSTRUCT (Intel SDM vol. 3D, "Enclave
// Signature Structure"): HEADER and HEADER2.
var (
	sigHeader  = []byte{0x06, 0, 0, 0, 0xe1, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0}
	sigHeader2 = []byte{0x01, 0x01, 0, 0, 0x60, 0, 0, 0, 0x60, 0, 0, 0, 0x01, 0, 0, 0}
)

// Offsets of the SIGSTRUCT fields.
const (
	offVendor       = 16
	offDate         = 20
	offHeader2      = 24
	offSWDefined    = 40
	offModulus      = 128
	offExponent     = 512
	offSignature    = 516
	offMiscSelect   = 900
	offMiscMask     = 904
	offCETAttr      = 908
	offCETAttrMask  = 909
	offISVFamilyID  = 912
	offAttributes   = 928
	offXFRM         = 936
	offAttrMask     = 944
	offXFRMMask     = 952
	offEnclaveHash  = 960
	offISVExtProdID = 1008
	offISVProdID    = 1024
	offISVSVN       = 1026
	offQ1           = 1040
	offQ2           = 1424
	headerEnd       = 128
	bodyStart       = 900
	bodyEnd         = 1028
)

// The vendor values of a SIGSTRUCT.
const (
	VendorOther = 0x0000
	VendorIntel = 0x8086
)

// The SECS attribute bits.
const (
	AttrInit       uint64 = 1 << 0
	AttrDebug      uint64 = 1 << 1
	AttrMode64Bit  uint64 = 1 << 2
	AttrProvision  uint64 = 1 << 4
	AttrEINITToken uint64 = 1 << 5
	AttrKSS        uint64 = 1 << 7
)

// SigStruct is an enclave signature structure: what the enclave's signer
// vouches for (the body) and the RSA-3072 signature over its header and
// body. Modulus, Signature, Q1 and Q2 are little-endian, as in the
// structure.
type SigStruct struct {
	Vendor    uint32 // VendorOther or VendorIntel
	Date      uint32 // BCD yyyymmdd
	SWDefined uint32

	Modulus   [ModulusSize]byte
	Exponent  uint32
	Signature [ModulusSize]byte

	MiscSelect, MiscMask       uint32
	CETAttributes, CETAttrMask uint8
	ISVFamilyID                [16]byte
	Attributes, XFRM           uint64
	AttributesMask, XFRMMask   uint64
	MREnclave                  [32]byte
	ISVExtProdID               [16]byte
	ISVProdID, ISVSVN          uint16
	Q1, Q2                     [ModulusSize]byte
}

// ParseSigStruct reads a SIGSTRUCT. Its header words must be the fixed
// ones and its reserved bytes zero; the signature is not checked (see
// Verify).
func ParseSigStruct(b []byte) (*SigStruct, error) {
	if len(b) != SigStructSize {
		return nil, fmt.Errorf("a SIGSTRUCT is %d bytes, got %d", SigStructSize, len(b))
	}
	if !bytes.Equal(b[:16], sigHeader) || !bytes.Equal(b[offHeader2:offHeader2+16], sigHeader2) {
		return nil, fmt.Errorf("not a SIGSTRUCT: header % x / % x, want % x / % x", b[:16], b[offHeader2:offHeader2+16], sigHeader, sigHeader2)
	}
	for _, r := range [][2]int{{44, headerEnd}, {910, offISVFamilyID}, {992, offISVExtProdID}, {bodyEnd, offQ1}} {
		if i := slices.IndexFunc(b[r[0]:r[1]], func(c byte) bool { return c != 0 }); i >= 0 {
			return nil, fmt.Errorf("SIGSTRUCT reserved byte %d is %#x, not 0", r[0]+i, b[r[0]+i])
		}
	}
	le := binary.LittleEndian
	s := &SigStruct{
		Vendor:         le.Uint32(b[offVendor:]),
		Date:           le.Uint32(b[offDate:]),
		SWDefined:      le.Uint32(b[offSWDefined:]),
		Exponent:       le.Uint32(b[offExponent:]),
		MiscSelect:     le.Uint32(b[offMiscSelect:]),
		MiscMask:       le.Uint32(b[offMiscMask:]),
		CETAttributes:  b[offCETAttr],
		CETAttrMask:    b[offCETAttrMask],
		Attributes:     le.Uint64(b[offAttributes:]),
		XFRM:           le.Uint64(b[offXFRM:]),
		AttributesMask: le.Uint64(b[offAttrMask:]),
		XFRMMask:       le.Uint64(b[offXFRMMask:]),
		ISVProdID:      le.Uint16(b[offISVProdID:]),
		ISVSVN:         le.Uint16(b[offISVSVN:]),
	}
	copy(s.Modulus[:], b[offModulus:])
	copy(s.Signature[:], b[offSignature:])
	copy(s.ISVFamilyID[:], b[offISVFamilyID:])
	copy(s.MREnclave[:], b[offEnclaveHash:])
	copy(s.ISVExtProdID[:], b[offISVExtProdID:])
	copy(s.Q1[:], b[offQ1:])
	copy(s.Q2[:], b[offQ2:])
	return s, nil
}

// Marshal returns the SIGSTRUCT's bytes.
func (s *SigStruct) Marshal() []byte {
	b := make([]byte, SigStructSize)
	le := binary.LittleEndian
	copy(b, sigHeader)
	le.PutUint32(b[offVendor:], s.Vendor)
	le.PutUint32(b[offDate:], s.Date)
	copy(b[offHeader2:], sigHeader2)
	le.PutUint32(b[offSWDefined:], s.SWDefined)
	copy(b[offModulus:], s.Modulus[:])
	le.PutUint32(b[offExponent:], s.Exponent)
	copy(b[offSignature:], s.Signature[:])
	le.PutUint32(b[offMiscSelect:], s.MiscSelect)
	le.PutUint32(b[offMiscMask:], s.MiscMask)
	b[offCETAttr] = s.CETAttributes
	b[offCETAttrMask] = s.CETAttrMask
	copy(b[offISVFamilyID:], s.ISVFamilyID[:])
	le.PutUint64(b[offAttributes:], s.Attributes)
	le.PutUint64(b[offXFRM:], s.XFRM)
	le.PutUint64(b[offAttrMask:], s.AttributesMask)
	le.PutUint64(b[offXFRMMask:], s.XFRMMask)
	copy(b[offEnclaveHash:], s.MREnclave[:])
	copy(b[offISVExtProdID:], s.ISVExtProdID[:])
	le.PutUint16(b[offISVProdID:], s.ISVProdID)
	le.PutUint16(b[offISVSVN:], s.ISVSVN)
	copy(b[offQ1:], s.Q1[:])
	copy(b[offQ2:], s.Q2[:])
	return b
}

// SignedData returns what the signature covers: the header (bytes 0-127)
// followed by the body (bytes 900-1027).
func (s *SigStruct) SignedData() []byte {
	b := s.Marshal()
	return append(b[:headerEnd:headerEnd], b[bodyStart:bodyEnd]...)
}

// MRSigner returns the MRSIGNER of enclaves signed with this SIGSTRUCT:
// SHA-256 of the modulus as stored (little-endian).
func (s *SigStruct) MRSigner() [32]byte {
	return sha256.Sum256(s.Modulus[:])
}

// MRSigner returns the MRSIGNER of enclaves signed with key: SHA-256 of
// its modulus, 384 bytes little-endian.
func MRSigner(key *rsa.PublicKey) ([32]byte, error) {
	m, err := modulusLE(key)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(m[:]), nil
}

func modulusLE(key *rsa.PublicKey) ([ModulusSize]byte, error) {
	var m [ModulusSize]byte
	if key.N.BitLen() != 8*ModulusSize {
		return m, fmt.Errorf("the key is RSA-%d: SGX signs with RSA-%d keys", key.N.BitLen(), 8*ModulusSize)
	}
	key.N.FillBytes(m[:])
	slices.Reverse(m[:])
	return m, nil
}

// Sign signs the SIGSTRUCT with key, an RSA-3072 key of exponent 3, as
// the kernel selftest's encl_measure and Intel's sgx_sign do: it sets the
// modulus and exponent, signs SHA-256 of SignedData with RSASSA-PKCS1-v1_5
// (deterministic), and computes Q1 = floor(S^2 / N) and Q2 = floor(S *
// (S^2 mod N) / N), which EINIT uses to check the signature.
func (s *SigStruct) Sign(key *rsa.PrivateKey) error {
	if key.E != SigStructExponent {
		return fmt.Errorf("the key's public exponent is %d: SGX requires %d (openssl genrsa -3 3072)", key.E, SigStructExponent)
	}
	m, err := modulusLE(&key.PublicKey)
	if err != nil {
		return err
	}
	s.Modulus = m
	s.Exponent = SigStructExponent
	digest := sha256.Sum256(s.SignedData())
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		return fmt.Errorf("signing the SIGSTRUCT: %w", err)
	}
	q1, q2 := q1q2(sig, key.N)
	copy(s.Signature[:], sig)
	slices.Reverse(s.Signature[:])
	if err := putLE(s.Q1[:], q1); err != nil {
		return fmt.Errorf("Q1: %w", err)
	}
	if err := putLE(s.Q2[:], q2); err != nil {
		return fmt.Errorf("Q2: %w", err)
	}
	return nil
}

// q1q2 returns Q1 = floor(S^2 / N) and Q2 = floor(S * (S^2 mod N) / N)
// of the big-endian signature S.
func q1q2(sig []byte, n *big.Int) (q1, q2 *big.Int) {
	s := new(big.Int).SetBytes(sig)
	q1, r := new(big.Int).QuoRem(new(big.Int).Mul(s, s), n, new(big.Int))
	return q1, r.Quo(r.Mul(r, s), n)
}

func putLE(dst []byte, n *big.Int) error {
	if n.BitLen() > 8*len(dst) {
		return fmt.Errorf("%d bits do not fit %d bytes", n.BitLen(), len(dst))
	}
	n.FillBytes(dst)
	slices.Reverse(dst)
	return nil
}

// PublicKey returns the SIGSTRUCT's signing key, from its modulus and
// exponent.
func (s *SigStruct) PublicKey() *rsa.PublicKey {
	m := slices.Clone(s.Modulus[:])
	slices.Reverse(m)
	return &rsa.PublicKey{N: new(big.Int).SetBytes(m), E: int(s.Exponent)}
}

// Verify checks the SIGSTRUCT as EINIT does: exponent 3, the signature
// over SignedData by the key of its modulus, and Q1 and Q2.
func (s *SigStruct) Verify() error {
	if s.Exponent != SigStructExponent {
		return fmt.Errorf("SIGSTRUCT exponent is %d, not %d", s.Exponent, SigStructExponent)
	}
	pub := s.PublicKey()
	if pub.N.BitLen() != 8*ModulusSize {
		return fmt.Errorf("SIGSTRUCT modulus is %d bits, not %d", pub.N.BitLen(), 8*ModulusSize)
	}
	sig := slices.Clone(s.Signature[:])
	slices.Reverse(sig)
	digest := sha256.Sum256(s.SignedData())
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("SIGSTRUCT signature does not verify with its modulus: %w", err)
	}
	q1, q2 := q1q2(sig, pub.N)
	var want1, want2 [ModulusSize]byte
	if putLE(want1[:], q1) != nil || putLE(want2[:], q2) != nil || want1 != s.Q1 || want2 != s.Q2 {
		return errors.New("SIGSTRUCT Q1 or Q2 is not the one of its signature and modulus")
	}
	return nil
}

// SelftestSigStruct returns the SIGSTRUCT the kernel selftest's
// encl_measure fills in before signing: the fixed header, 64-bit mode,
// XFRM 3 (x87 and SSE), the enclave's MRENCLAVE and nothing else.
func SelftestSigStruct(mrenclave [32]byte) *SigStruct {
	return &SigStruct{Attributes: AttrMode64Bit, XFRM: 3, MREnclave: mrenclave}
}
