package uki

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf16"

	"github.com/cocobuild/cocobuild/measure/pcr"
)

// GUIDs of the UEFI specification and edk2, in their on-disk (mixed-endian)
// byte order.
var (
	guidGlobalVariable   = guid(0x8be4df61, 0x93ca, 0x11d2, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c)
	guidImageSecurityDB  = guid(0xd719b2cb, 0x3d3a, 0x4596, 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f)
	guidSecureBootEnable = guid(0xf0a30bc7, 0xaf08, 0x4556, 0x99, 0xc4, 0x00, 0x10, 0x09, 0xc9, 0x3a, 0x44)
	guidAuthVarStore     = guid(0xaaf32c78, 0x947b, 0x439a, 0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92)
)

func guid(a uint32, b, c uint16, d ...byte) [16]byte {
	var g [16]byte
	binary.LittleEndian.PutUint32(g[0:], a)
	binary.LittleEndian.PutUint16(g[4:], b)
	binary.LittleEndian.PutUint16(g[6:], c)
	copy(g[8:], d)
	return g
}

// Variable attributes.
const (
	attrNV         = 0x1
	attrBS         = 0x2
	attrRT         = 0x4
	attrTimeAuth   = 0x20
	varAdded       = 0x3f
	varStartID     = 0x55aa
	authVarHdrSize = 60
)

// EnrollVars returns an OVMF variable store (a copy of template, e.g.
// Debian's empty OVMF_VARS_4M.fd) with Secure Boot keys enrolled: cert as
// PK, KEK and db (time-based authenticated, non-volatile, boot and runtime
// variables, their timestamps zero; one EFI_SIGNATURE_LIST with the
// certificate owned by pcr.OwnerGUID, as the measure model's
// pcr.EnrolledSecureBoot expects) and edk2's SecureBootEnable set, each
// appended after the store's variables as edk2's authenticated variable
// format writes them. With PK enrolled, OVMF's Secure Boot builds
// (OVMF_CODE_4M.secboot.fd) leave setup mode and verify what they boot.
func EnrollVars(template []byte, cert *x509.Certificate) ([]byte, error) {
	out := bytes.Clone(template)
	if len(out) < 0x48+28 || !bytes.Equal(out[0x28:0x2c], []byte("_FVH")) {
		return nil, errors.New("the variable store template is no firmware volume (no _FVH)")
	}
	hdrLen := int(binary.LittleEndian.Uint16(out[0x30:]))
	if hdrLen < 0x48 || hdrLen+28 > len(out) {
		return nil, fmt.Errorf("firmware volume header length %d", hdrLen)
	}
	store := out[hdrLen:]
	if !bytes.Equal(store[:16], guidAuthVarStore[:]) {
		return nil, errors.New("the variable store is not edk2's authenticated variable store")
	}
	size := int(binary.LittleEndian.Uint32(store[16:]))
	if size > len(store) || store[20] != 0x5a || store[21] != 0xfe {
		return nil, errors.New("the variable store header is not formatted and healthy")
	}
	at := 28
	for at+authVarHdrSize <= size && binary.LittleEndian.Uint16(store[at:]) == varStartID {
		ns := int(binary.LittleEndian.Uint32(store[at+36:]))
		ds := int(binary.LittleEndian.Uint32(store[at+40:]))
		name := decodeName(store[at+authVarHdrSize : min(size, at+authVarHdrSize+ns)])
		if store[at+2] == varAdded && (name == "PK" || name == "KEK" || name == "db" || name == "SecureBootEnable") {
			return nil, fmt.Errorf("the template already holds %s", name)
		}
		at = (at + authVarHdrSize + ns + ds + 3) &^ 3
	}
	sl := pcr.SignatureList(cert.Raw, pcr.OwnerGUID)
	auth := uint32(attrNV | attrBS | attrRT | attrTimeAuth)
	for _, v := range []struct {
		name   string
		vendor [16]byte
		attr   uint32
		data   []byte
	}{
		{"PK", guidGlobalVariable, auth, sl}, {"KEK", guidGlobalVariable, auth, sl}, {"db", guidImageSecurityDB, auth, sl},
		{"SecureBootEnable", guidSecureBootEnable, attrNV | attrBS, []byte{1}},
	} {
		name := encodeName(v.name)
		n := authVarHdrSize + len(name) + len(v.data)
		if at+n > size {
			return nil, errors.New("the variable store is full")
		}
		h := store[at:]
		binary.LittleEndian.PutUint16(h, varStartID)
		h[2], h[3] = varAdded, 0
		binary.LittleEndian.PutUint32(h[4:], v.attr)
		clear(h[8:36]) // monotonic count, timestamp, public key index
		binary.LittleEndian.PutUint32(h[36:], uint32(len(name)))
		binary.LittleEndian.PutUint32(h[40:], uint32(len(v.data)))
		copy(h[44:], v.vendor[:])
		copy(h[authVarHdrSize:], name)
		copy(h[authVarHdrSize+len(name):], v.data)
		at = (at + n + 3) &^ 3
	}
	return out, nil
}

func encodeName(s string) []byte {
	var b []byte
	for _, r := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, r)
	}
	return append(b, 0, 0)
}

func decodeName(b []byte) string {
	var u []uint16
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
