package ovmf

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"unicode/utf16"

	"github.com/linuxboot/fiano/pkg/uefi"
)

// Variable is a UEFI variable as the image's variable store holds it (its
// authenticated variables without their authentication descriptor, as
// edk2 stores them).
type Variable struct {
	GUID       GUID   `json:"guid"`
	Name       string `json:"name"`
	Attributes uint32 `json:"attributes"`
	Data       []byte `json:"data"`
}

// MarshalText gives a GUID its canonical text form in JSON.
func (g GUID) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

// UnmarshalText reads the canonical text form.
func (g *GUID) UnmarshalText(b []byte) error {
	v, err := ParseGUID(string(b))
	if err != nil {
		return err
	}
	*g = v
	return nil
}

// Variable GUIDs of the Secure Boot variables.
var (
	// GlobalVariableGUID is EFI_GLOBAL_VARIABLE (PK, KEK, SecureBoot, SetupMode, Boot####).
	GlobalVariableGUID = MustGUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
	// ImageSecurityDatabaseGUID is EFI_IMAGE_SECURITY_DATABASE_GUID (db, dbx).
	ImageSecurityDatabaseGUID = MustGUID("d719b2cb-3d3a-4596-a3bc-dad00e67656f")
	// SecureBootEnableGUID is edk2's EFI_SECURE_BOOT_ENABLE_DISABLE (SecureBootEnable).
	SecureBootEnableGUID = MustGUID("f0a30bc7-af08-4556-99c4-001009c93a44")

	authVariableGUID  = MustGUID("aaf32c78-947b-439a-a180-2e144ec37792") // gEfiAuthenticatedVariableGuid
	plainVariableGUID = MustGUID("ddcf3616-3275-4164-98b6-fe85707ffe7d") // gEfiVariableGuid
	certX509GUID      = MustGUID("a5c059a1-94e4-4aa7-87b5-ab155c2bf072") // EFI_CERT_X509_GUID
	certSHA256GUID    = MustGUID("c1c41626-504c-4092-aca9-41f936934328") // EFI_CERT_SHA256_GUID
)

// maxVariables bounds what a variable store can make the parser collect.
const maxVariables = 4096

// Variables returns the live variables of the image's UEFI variable store
// (the non-FFS volume, gEfiSystemNvDataFvGuid, that combined CODE+VARS
// images such as OVMF.fd start with), in store order. An image without a
// variable store (a CODE-only image) gives nil and no error. The firmware
// volume is located with fiano; the store inside it (edk2's
// VARIABLE_STORE_HEADER and variable headers, MdeModulePkg VariableFormat.h)
// is a format fiano does not parse, so it is read here.
func Variables(fw []byte) ([]Variable, error) {
	for off := 0; off < len(fw); {
		rel := uefi.FindFirmwareVolumeOffset(fw[off:])
		if rel < 0 {
			return nil, nil
		}
		start := off + int(rel)
		if start < off || start+uefi.FirmwareVolumeMinSize > len(fw) {
			off = max(start, off) + 16
			continue
		}
		length := binary.LittleEndian.Uint64(fw[start+32:])
		if GUID(fw[start+16:start+32]) == GUID(*uefi.EVSA) {
			hdrLen := int(binary.LittleEndian.Uint16(fw[start+48:]))
			if length > uint64(len(fw)-start) || hdrLen > int(length) {
				return nil, fmt.Errorf("variable store volume at %#x: length %#x or header %#x exceeds the image", start, length, hdrLen)
			}
			return parseVariableStore(fw[start+hdrLen : start+int(length)])
		}
		if length < uefi.FirmwareVolumeMinSize || length > uint64(len(fw)-start) {
			off = start + 16 // not a volume after all: search past its "_FVH" (at start+40; the search begins 32 bytes in)
			continue
		}
		off = start + int(length)
	}
	return nil, nil
}

// parseVariableStore reads a VARIABLE_STORE_HEADER and its variables.
func parseVariableStore(b []byte) ([]Variable, error) {
	const storeHeader = 28
	if len(b) < storeHeader {
		return nil, fmt.Errorf("variable store of %d bytes: too short for its header", len(b))
	}
	sig := GUID(b[0:16])
	auth := sig == authVariableGUID
	if !auth && sig != plainVariableGUID {
		return nil, fmt.Errorf("variable store signature %s is neither the authenticated (%s) nor the plain (%s) format", sig, authVariableGUID, plainVariableGUID)
	}
	size := binary.LittleEndian.Uint32(b[16:20])
	if uint64(size) > uint64(len(b)) || size < storeHeader {
		return nil, fmt.Errorf("variable store size %#x is outside %#x..%#x", size, storeHeader, len(b))
	}
	b = b[:size]
	hdrSize := 32
	if auth {
		hdrSize = 60
	}
	var out []Variable
	for off := storeHeader; off+hdrSize <= len(b); {
		h := b[off:]
		if binary.LittleEndian.Uint16(h) != 0x55aa { // VARIABLE_DATA: end of the variables
			break
		}
		state, attrs := h[2], binary.LittleEndian.Uint32(h[4:])
		var nameSize, dataSize uint32
		var g GUID
		if auth {
			nameSize, dataSize, g = binary.LittleEndian.Uint32(h[36:]), binary.LittleEndian.Uint32(h[40:]), GUID(h[44:60])
		} else {
			nameSize, dataSize, g = binary.LittleEndian.Uint32(h[8:]), binary.LittleEndian.Uint32(h[12:]), GUID(h[16:32])
		}
		end := uint64(off) + uint64(hdrSize) + uint64(nameSize) + uint64(dataSize)
		if end > uint64(len(b)) {
			return nil, fmt.Errorf("variable at store offset %#x (name %d bytes, data %d bytes) runs past the store's end", off, nameSize, dataSize)
		}
		// VAR_ADDED (0x3f), possibly in deleted transition (0x3e): live.
		if state == 0x3f || state == 0x3e {
			if len(out) >= maxVariables {
				return nil, fmt.Errorf("more than %d variables", maxVariables)
			}
			name := h[hdrSize : hdrSize+int(nameSize)]
			data := h[hdrSize+int(nameSize) : hdrSize+int(nameSize)+int(dataSize)]
			out = append(out, Variable{GUID: g, Name: ucs2(name), Attributes: attrs, Data: append([]byte(nil), data...)})
		}
		off = int((end + 3) &^ 3)
	}
	return out, nil
}

// ucs2 decodes a NUL-terminated UTF-16LE name.
func ucs2(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// SecureBoot is the Secure Boot state that an image's variable store sets up.
type SecureBoot struct {
	// VariableStore says whether the image has a variable store at all
	// (a CODE-only image does not: its VARS file decides).
	VariableStore bool `json:"variable_store"`
	// Enrolled lists which of PK, KEK, db, dbx the store holds.
	Enrolled []string `json:"enrolled"`
	// Enabled: a PK is enrolled (the platform is in user mode) and
	// SecureBootEnable does not turn Secure Boot off, so the firmware
	// verifies the images it boots against db/dbx.
	Enabled bool `json:"enabled"`
	// Certificates are the X.509 certificates in PK, KEK, db and dbx.
	Certificates []Certificate `json:"certificates"`
	// Hashes counts the SHA-256 entries of each database (dbx's revocations).
	Hashes map[string]int `json:"hashes,omitempty"`
	// Evidence says what decided Enabled.
	Evidence string `json:"evidence"`
}

// Certificate is an X.509 certificate of a signature database.
type Certificate struct {
	Variable string `json:"variable"` // PK, KEK, db or dbx
	Owner    GUID   `json:"owner"`    // the EFI_SIGNATURE_DATA owner
	Subject  string `json:"subject"`
	Issuer   string `json:"issuer,omitempty"`
	SHA256   string `json:"sha256"` // of the DER encoding
}

// secureBootVars are the signature databases, in the order they are reported.
var secureBootVars = []struct {
	name string
	guid GUID
}{{"PK", GlobalVariableGUID}, {"KEK", GlobalVariableGUID}, {"db", ImageSecurityDatabaseGUID}, {"dbx", ImageSecurityDatabaseGUID}}

// secureBootState derives the Secure Boot state from the variables.
func secureBootState(vars []Variable, haveStore bool) (SecureBoot, error) {
	sb := SecureBoot{VariableStore: haveStore}
	if !haveStore {
		sb.Evidence = "the image has no variable store (code only): the VARS file it is paired with decides Secure Boot"
		return sb, nil
	}
	find := func(name string, g GUID) *Variable {
		for i := range vars {
			if vars[i].Name == name && vars[i].GUID == g {
				return &vars[i]
			}
		}
		return nil
	}
	for _, sv := range secureBootVars {
		v := find(sv.name, sv.guid)
		if v == nil || len(v.Data) == 0 {
			continue
		}
		sb.Enrolled = append(sb.Enrolled, sv.name)
		certs, hashes, err := parseSignatureLists(sv.name, v.Data)
		if err != nil {
			return sb, err
		}
		sb.Certificates = append(sb.Certificates, certs...)
		if hashes > 0 {
			if sb.Hashes == nil {
				sb.Hashes = map[string]int{}
			}
			sb.Hashes[sv.name] = hashes
		}
	}
	pk := find("PK", GlobalVariableGUID)
	enable := find("SecureBootEnable", SecureBootEnableGUID)
	switch {
	case pk == nil || len(pk.Data) == 0:
		sb.Evidence = "no PK in the variable store: the platform stays in setup mode and verifies nothing it boots"
	case enable != nil && len(enable.Data) == 1 && enable.Data[0] == 0:
		sb.Evidence = "a PK is enrolled but SecureBootEnable is 0: Secure Boot is switched off"
	default:
		sb.Enabled = true
		sb.Evidence = "a PK is enrolled (user mode)"
		if enable != nil {
			sb.Evidence += fmt.Sprintf(" and SecureBootEnable is %x", enable.Data)
		}
		sb.Evidence += ": the firmware verifies the images it boots against db and dbx"
	}
	return sb, nil
}

// parseSignatureLists reads the EFI_SIGNATURE_LISTs of a signature
// database: its X.509 certificates and the number of SHA-256 entries.
func parseSignatureLists(varName string, b []byte) ([]Certificate, int, error) {
	var certs []Certificate
	hashes := 0
	for len(b) > 0 {
		if len(b) < 28 {
			return nil, 0, fmt.Errorf("%s: %d bytes left, too few for an EFI_SIGNATURE_LIST header", varName, len(b))
		}
		typ := GUID(b[0:16])
		listSize := binary.LittleEndian.Uint32(b[16:])
		hdrSize := binary.LittleEndian.Uint32(b[20:])
		sigSize := binary.LittleEndian.Uint32(b[24:])
		if listSize < 28 || uint64(listSize) > uint64(len(b)) || uint64(hdrSize) > uint64(listSize-28) || sigSize < 16 || (listSize-28-hdrSize)%sigSize != 0 {
			return nil, 0, fmt.Errorf("%s: EFI_SIGNATURE_LIST of type %s has inconsistent sizes (list %d, header %d, signature %d, %d bytes left)", varName, typ, listSize, hdrSize, sigSize, len(b))
		}
		for sigs := b[28+hdrSize : listSize]; len(sigs) > 0; sigs = sigs[sigSize:] {
			owner, data := GUID(sigs[0:16]), sigs[16:sigSize]
			switch typ {
			case certX509GUID:
				c := Certificate{Variable: varName, Owner: owner}
				sum := sha256.Sum256(data)
				c.SHA256 = hex.EncodeToString(sum[:])
				if x, err := x509.ParseCertificate(data); err == nil {
					c.Subject, c.Issuer = x.Subject.String(), x.Issuer.String()
				} else {
					c.Subject = fmt.Sprintf("(not a parseable X.509 certificate: %v)", err)
				}
				certs = append(certs, c)
			case certSHA256GUID:
				hashes++
			}
		}
		b = b[listSize:]
	}
	return certs, hashes, nil
}
