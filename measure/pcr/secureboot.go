package pcr

import (
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cocobuild/cocobuild/measure/pe"
)

// EvEFIVariableAuthority is EV_EFI_VARIABLE_AUTHORITY: the db entry that
// verified an image, measured into PCR 7.
const EvEFIVariableAuthority = 0x800000e0

var (
	efiCertX509 = guid(0xa5c059a1, 0x94e4, 0x4aa7, [8]byte{0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0, 0x72})
	// OwnerGUID is the signature owner of the certificates cocobuild
	// enrolls (the uki block's variable store): a fixed GUID, which enters
	// PCR 7 with each certificate.
	OwnerGUID = guid(0x636f636f, 0x6275, 0x4c64, [8]byte{0x80, 0x00, 0x64, 0x62, 0x6b, 0x65, 0x79, 0x31})
)

// SignatureData is an EFI_SIGNATURE_DATA: the owner GUID, then the
// certificate (DER).
func SignatureData(cert []byte, owner [16]byte) []byte {
	return append(append([]byte(nil), owner[:]...), cert...)
}

// SignatureList is an EFI_SIGNATURE_LIST of one X.509 certificate (the
// data of PK, KEK and db).
func SignatureList(cert []byte, owner [16]byte) []byte {
	sd := SignatureData(cert, owner)
	b := append([]byte(nil), efiCertX509[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(28+len(sd)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(sd)))
	return append(b, sd...)
}

// SecureBoot are the keys of a boot with Secure Boot on: the variables'
// contents (EFI_SIGNATURE_LISTs) and the db entry that verified the UKI
// (an EFI_SIGNATURE_DATA).
type SecureBoot struct {
	PK, KEK, DB, DBX []byte
	Authority        []byte
}

// EnrolledSecureBoot is the Secure Boot state of the uki block's variable
// store: cert (DER) as PK, KEK and db, owned by OwnerGUID, no dbx, and cert
// the authority that verified the UKI.
func EnrolledSecureBoot(cert []byte) *SecureBoot {
	sl := SignatureList(cert, OwnerGUID)
	return &SecureBoot{PK: sl, KEK: sl, DB: sl, Authority: SignatureData(cert, OwnerGUID)}
}

// secureBootOnEvents are PCR 7's events with Secure Boot on (edk2): the
// variables SecureBoot (1), PK, KEK, db and dbx with their contents, the
// separator, then, when the firmware verifies the UKI, the db entry that
// verified it (once: edk2 measures each authority once).
func secureBootOnEvents(b Bank, sb *SecureBoot) []Event {
	var evs []Event
	for _, v := range []struct {
		guid [16]byte
		name string
		data []byte
	}{
		{efiGlobalVariable, "SecureBoot", []byte{1}},
		{efiGlobalVariable, "PK", sb.PK},
		{efiGlobalVariable, "KEK", sb.KEK},
		{efiImageSecurityDatabase, "db", sb.DB},
		{efiImageSecurityDatabase, "dbx", sb.DBX},
	} {
		evs = append(evs, Event{PCR: SecureBootPolicy, Type: EvEFIVariableDriverConfig, Description: "variable " + v.name,
			Digest: digest(b, variableData(v.guid, v.name, v.data))})
	}
	evs = append(evs, Event{PCR: SecureBootPolicy, Type: EvSeparator, Description: "separator", Digest: digest(b, make([]byte, 4))})
	return append(evs, Event{PCR: SecureBootPolicy, Type: EvEFIVariableAuthority, Description: "authority db (the UKI's verifier)",
		Digest: digest(b, variableData(efiImageSecurityDatabase, "db", sb.Authority))})
}

// SignerCertificate returns the first certificate (DER) of the first
// Authenticode signature of a signed PE image: the signer's, as cocobuild
// and sbsign include it.
func SignerCertificate(img []byte) ([]byte, error) {
	f, err := pe.Parse(img)
	if err != nil {
		return nil, err
	}
	certs, err := f.Certificates()
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, errors.New("the image is not signed")
	}
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(certs[0].Data, &ci); err != nil {
		return nil, fmt.Errorf("the signature is no PKCS#7 ContentInfo: %w", err)
	}
	var sd struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		ContentInfo      asn1.RawValue
		Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, fmt.Errorf("the signature's SignedData: %w", err)
	}
	var first asn1.RawValue
	if len(sd.Certificates.Bytes) == 0 {
		return nil, errors.New("the signature holds no certificate")
	}
	if _, err := asn1.Unmarshal(sd.Certificates.Bytes, &first); err != nil {
		return nil, fmt.Errorf("the signature's certificates: %w", err)
	}
	return first.FullBytes, nil
}
