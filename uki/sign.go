package uki

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/cocobuild/cocobuild/measure/pe"
	"github.com/cocobuild/cocobuild/recipes"
)

// Object identifiers of an Authenticode signature (Microsoft's "Windows
// Authenticode Portable Executable Signature Format", RFC 2315, RFC 5652).
var (
	oidSignedData        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidSPCIndirectData   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 4}
	oidSPCPEImageData    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 15}
	oidSPCSpOpusInfo     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 12}
	oidContentType       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSHA256            = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidRSAEncryption     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	asn1Null             = asn1.RawValue{Tag: asn1.TagNull}
	winCertRevision2     = uint16(0x0200)
	winCertTypePKCS7     = uint16(0x0002)
	certTableAlignment   = 8
	dirSecurityEntrySize = 8
)

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

var sha256Alg = algorithmIdentifier{Algorithm: oidSHA256, Parameters: asn1Null}

// spcIndirectDataContent is SpcIndirectDataContent with SpcPeImageData:
// empty flags and the obsolete file link, as signers write it.
type spcIndirectDataContent struct {
	Data struct {
		Type  asn1.ObjectIdentifier
		Value struct {
			Flags asn1.BitString
			File  asn1.RawValue // [0] EXPLICIT SpcLink
		}
	}
	MessageDigest struct {
		Algorithm algorithmIdentifier
		Digest    []byte
	}
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial asn1.RawValue
}

type signerInfo struct {
	Version                   int
	IssuerAndSerial           issuerAndSerial
	DigestAlgorithm           algorithmIdentifier
	AuthenticatedAttributes   asn1.RawValue
	DigestEncryptionAlgorithm algorithmIdentifier
	EncryptedDigest           []byte
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT, written by explicit0
}

type signedData struct {
	Version          int
	DigestAlgorithms []algorithmIdentifier `asn1:"set"`
	ContentInfo      contentInfo
	Certificates     asn1.RawValue
	SignerInfos      []signerInfo `asn1:"set"`
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue
}

// Sign returns img signed for UEFI Secure Boot with an RSA key and its
// certificate (the db key): an Authenticode PKCS#7 SignedData over the
// image's SHA-256 Authenticode digest, as sbsign writes one (signed
// attributes content type, SpcSpOpusInfo and message digest; no signing
// time, so the result depends on the inputs only: RSA PKCS#1 v1.5 is
// deterministic), in a WIN_CERTIFICATE appended after the image padded to
// 8 bytes, the security data directory pointing at it and the checksum
// recomputed. img must be unsigned.
func Sign(img []byte, cert *x509.Certificate, key crypto.Signer) ([]byte, error) {
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("a %T key: UEFI db keys are RSA", key.Public())
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, errors.New("the key is not the certificate's")
	}
	f, err := pe.Parse(img)
	if err != nil {
		return nil, err
	}
	if f.SecurityDirOffset < 0 {
		return nil, errors.New("the image has no certificate table data directory")
	}
	if off, size := f.CertificateTable(); off != 0 || size != 0 {
		return nil, errors.New("the image is signed already")
	}
	out := append([]byte(nil), img...)
	out = append(out, make([]byte, (certTableAlignment-len(out)%certTableAlignment)%certTableAlignment)...)
	pf, err := pe.Parse(out)
	if err != nil {
		return nil, err
	}
	digest, err := pf.Authenticode(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	p7, err := authenticodePKCS7(digest, cert, key)
	if err != nil {
		return nil, err
	}
	entry := make([]byte, 8, 8+len(p7)+certTableAlignment)
	entry = append(entry, p7...)
	entry = append(entry, make([]byte, (certTableAlignment-len(entry)%certTableAlignment)%certTableAlignment)...)
	le := binary.LittleEndian
	le.PutUint32(entry, uint32(len(entry)))
	le.PutUint16(entry[4:], winCertRevision2)
	le.PutUint16(entry[6:], winCertTypePKCS7)
	at := len(out)
	out = append(out, entry...)
	le.PutUint32(out[pf.SecurityDirOffset:], uint32(at))
	le.PutUint32(out[pf.SecurityDirOffset+4:], uint32(len(entry)))
	le.PutUint32(out[pf.CheckSumOffset:], 0)
	le.PutUint32(out[pf.CheckSumOffset:], checksum(out))
	return out, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// authenticodePKCS7 is the DER ContentInfo of the SignedData.
func authenticodePKCS7(digest []byte, cert *x509.Certificate, key crypto.Signer) ([]byte, error) {
	var idc spcIndirectDataContent
	idc.Data.Type = oidSPCPEImageData
	// SpcLink file [2] SpcString unicode [0] "<<<Obsolete>>>" (BMP).
	obsolete := bmp("<<<Obsolete>>>")
	str, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: obsolete})
	if err != nil {
		return nil, err
	}
	link, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: str})
	if err != nil {
		return nil, err
	}
	idc.Data.Value.File = explicit0(link)
	idc.MessageDigest.Algorithm = sha256Alg
	idc.MessageDigest.Digest = digest
	idcDER, err := asn1.Marshal(idc)
	if err != nil {
		return nil, err
	}
	// The message digest covers the content of the SpcIndirectDataContent
	// SEQUENCE, not its tag and length.
	var seq asn1.RawValue
	if _, err := asn1.Unmarshal(idcDER, &seq); err != nil {
		return nil, err
	}
	md := sha256.Sum256(seq.Bytes)
	attrs, err := attributes(md[:])
	if err != nil {
		return nil, err
	}
	// The signature covers the attributes as a SET (tag 0x31).
	set := append([]byte(nil), attrs...)
	set[0] = 0x31
	h := sha256.Sum256(set)
	sig, err := key.Sign(nil, h[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	var ias issuerAndSerial
	ias.Issuer = asn1.RawValue{FullBytes: cert.RawIssuer}
	serial, err := asn1.Marshal(cert.SerialNumber)
	if err != nil {
		return nil, err
	}
	ias.Serial = asn1.RawValue{FullBytes: serial}
	sd := signedData{
		Version:          1,
		DigestAlgorithms: []algorithmIdentifier{sha256Alg},
		ContentInfo:      contentInfo{ContentType: oidSPCIndirectData, Content: explicit0(idcDER)},
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: cert.Raw},
		SignerInfos: []signerInfo{{Version: 1, IssuerAndSerial: ias, DigestAlgorithm: sha256Alg,
			AuthenticatedAttributes:   asn1.RawValue{FullBytes: attrs},
			DigestEncryptionAlgorithm: algorithmIdentifier{Algorithm: oidRSAEncryption, Parameters: asn1Null},
			EncryptedDigest:           sig}},
	}
	sdDER, err := asn1.Marshal(sd)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(contentInfo{ContentType: oidSignedData, Content: explicit0(sdDER)})
}

// explicit0 wraps DER in a [0] EXPLICIT tag (encoding/asn1 applies no
// field tags to a RawValue).
func explicit0(der []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}
}

// attributes are the signed attributes, [0] IMPLICIT SET OF Attribute in
// DER order: content type SpcIndirectDataContent, an empty SpcSpOpusInfo
// and the message digest.
func attributes(md []byte) ([]byte, error) {
	one := func(t asn1.ObjectIdentifier, v any) ([]byte, error) {
		val, err := asn1.Marshal(v)
		if err != nil {
			return nil, err
		}
		return asn1.Marshal(attribute{Type: t, Values: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: val}})
	}
	var enc [][]byte
	for _, a := range []struct {
		t asn1.ObjectIdentifier
		v any
	}{{oidContentType, oidSPCIndirectData}, {oidSPCSpOpusInfo, asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true}}, {oidMessageDigest, md}} {
		b, err := one(a.t, a.v)
		if err != nil {
			return nil, err
		}
		enc = append(enc, b)
	}
	sort.Slice(enc, func(i, j int) bool { return bytes.Compare(enc[i], enc[j]) < 0 })
	return asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: bytes.Join(enc, nil)})
}

// bmp encodes s (ASCII) as a BMPString's UTF-16BE bytes.
func bmp(s string) []byte {
	out := make([]byte, 0, 2*len(s))
	for _, r := range s {
		out = append(out, byte(r>>8), byte(r))
	}
	return out
}

// readDBKey reads the db certificate and its private key (PEM: PKCS#8,
// PKCS#1 RSA).
func readDBKey(keyArt, certArt *recipes.Artifact) (*x509.Certificate, crypto.Signer, error) {
	cb, err := os.ReadFile(certArt.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("db_cert %s: %w", certArt.Origin, err)
	}
	blk, _ := pem.Decode(cb)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("db_cert %s: not a PEM CERTIFICATE", certArt.Origin)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("db_cert %s: %w", certArt.Origin, err)
	}
	kb, err := os.ReadFile(keyArt.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("db_key %s: %w", keyArt.Origin, err)
	}
	blk, _ = pem.Decode(kb)
	if blk == nil {
		return nil, nil, fmt.Errorf("db_key %s: not PEM", keyArt.Origin)
	}
	var key any
	switch blk.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, nil, fmt.Errorf("db_key %s: a PEM %s, want PRIVATE KEY or RSA PRIVATE KEY", keyArt.Origin, blk.Type)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("db_key %s: %w", keyArt.Origin, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("db_key %s: a %T cannot sign", keyArt.Origin, key)
	}
	return cert, s, nil
}

// sbatHeader is the first line of every SBAT section (the sbat component
// itself, shim's SBAT.md).
const sbatHeader = "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"

// MergeSBAT returns the .sbat section of a UKI whose recipe adds lines:
// the header, the stub's own lines, then the recipe's, each header line
// given again dropped, as ukify merges them. Each line must have six
// comma-separated fields (component, generation, vendor, package,
// version, URL).
func MergeSBAT(stub []byte, lines string) ([]byte, error) {
	f, err := pe.Parse(stub)
	if err != nil {
		return nil, err
	}
	var own string
	if s := f.Section(".sbat"); s != nil {
		d, err := f.SectionData(s)
		if err != nil {
			return nil, err
		}
		if int(s.VirtualSize) < len(d) {
			d = d[:s.VirtualSize]
		}
		own = strings.TrimRight(string(d), "\x00")
	}
	var b strings.Builder
	b.WriteString(sbatHeader)
	for i, src := range []string{own, lines} {
		for _, l := range strings.Split(src, "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "sbat,") {
				continue
			}
			if i == 1 && len(strings.Split(l, ",")) != 6 {
				return nil, fmt.Errorf("SBAT line %q: want 6 comma-separated fields (component,generation,vendor,package,version,url)", l)
			}
			b.WriteString(l + "\n")
		}
	}
	return []byte(b.String()), nil
}

// Unsign returns img without its Authenticode signatures: the certificate
// table, which must end the file, cut off, the security data directory
// zeroed and the checksum recomputed. An unsigned image is returned as it
// is. The Authenticode digest does not change.
func Unsign(img []byte) ([]byte, error) {
	f, err := pe.Parse(img)
	if err != nil {
		return nil, err
	}
	off, size := f.CertificateTable()
	if off == 0 && size == 0 {
		return img, nil
	}
	if uint64(off)+uint64(size) != uint64(len(img)) {
		return nil, errors.New("the certificate table does not end the image")
	}
	out := bytes.Clone(img[:off])
	le := binary.LittleEndian
	le.PutUint64(out[f.SecurityDirOffset:], 0)
	le.PutUint32(out[f.CheckSumOffset:], 0)
	le.PutUint32(out[f.CheckSumOffset:], checksum(out))
	return out, nil
}
