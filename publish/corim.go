package publish

import (
	"bytes"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"

	cbor "github.com/fxamacker/cbor/v2"
	"github.com/veraison/corim/comid"
	"github.com/veraison/corim/corim"
	"github.com/veraison/eat"
	cose "github.com/veraison/go-cose"
	"github.com/veraison/swid"

	"github.com/cocobuild/cocobuild/publish/sign"
)

// CoRIM identifiers. The SNP CoMID follows the AMD SEV-SNP CoRIM profile
// draft (draft-deeglaze-amd-sev-snp-corim-profile): environment class-id
// 1.3.6.1.4.1.3704.3.1 (attestation by chip), the MEASUREMENT field as mkey
// 641 with a SHA-384 digest. TDX has no settled profile: its CoMID holds
// MRTD and RTMR0-3 as integrity registers named "mrtd", "rtmr0", ...
const (
	SNPCoRIMProfile  = "tag:amd.com,2025:snp-corim-profile"
	SNPClassOID      = "1.3.6.1.4.1.3704.3.1"
	SNPMeasurementMk = 641
	TDXVendor        = "Intel Corporation"
	TDXModel         = "TDX"
	CoRIMMediaType   = "application/rim+cbor"
	hashSHA384       = 7 // IANA named-information sha-384
)

// corimTag is the CBOR tag 501 of an unsigned CoRIM (tagged-unsigned-corim-map),
// which veraison/corim's ToCBOR does not write.
var corimTag = []byte{0xd9, 0x01, 0xf5}

// CoRIMTEEs are the TEEs that get a CoRIM.
var CoRIMTEEs = []string{"snp", "tdx"}

// coseSigner signs COSE_Sign1 messages deterministically with a sign.Signer.
type coseSigner struct{ s *sign.Signer }

func (c coseSigner) Algorithm() cose.Algorithm {
	if c.s.Public().Algorithm() == sign.Ed25519 {
		return cose.AlgorithmEdDSA
	}
	return cose.AlgorithmES256
}

// Sign ignores rand: the signature is deterministic.
func (c coseSigner) Sign(_ io.Reader, content []byte) ([]byte, error) {
	sig, err := c.s.Sign(content)
	if err != nil || c.Algorithm() == cose.AlgorithmEdDSA {
		return sig, err
	}
	// COSE wants ECDSA signatures as r||s, each the size of the curve.
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		return nil, fmt.Errorf("ECDSA signature: %w", err)
	}
	out := make([]byte, 64)
	rs.R.FillBytes(out[:32])
	rs.S.FillBytes(out[32:])
	return out, nil
}

// EncodeCoRIM returns the signed CoRIM (COSE_Sign1, tag 18, whose payload is
// the tag-501 unsigned CoRIM) of the release's entries for one TEE, or nil
// when the release has none.
func EncodeCoRIM(r *Release, tee string, s *sign.Signer) ([]byte, error) {
	var entries []Entry
	for _, e := range r.Entries {
		if e.TEE == tee {
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 {
		return nil, nil
	}
	c := comid.NewComid().SetTagIdentity(r.Name+"/"+tee+"/"+r.Version, 0)
	if c == nil {
		return nil, errors.New("CoMID tag identity rejected")
	}
	if c = c.AddEntity(r.Namespace, nil, comid.RoleTagCreator); c == nil {
		return nil, errors.New("CoMID entity rejected")
	}
	for _, e := range entries {
		rv, err := referenceTriple(tee, e)
		if err != nil {
			return nil, fmt.Errorf("reference value %s/%s: %w", e.TEE, e.Name, err)
		}
		if c = c.AddReferenceValue(*rv); c == nil {
			return nil, fmt.Errorf("reference value %s/%s rejected by the CoMID", e.TEE, e.Name)
		}
	}
	if err := c.Valid(); err != nil {
		return nil, fmt.Errorf("CoMID: %w", err)
	}
	notBefore := r.Issued
	u := corim.NewUnsignedCorim().SetID(r.Name + "/" + tee + "/" + r.Version).AddComid(*c)
	if u != nil && tee == "snp" {
		u = u.AddProfile(SNPCoRIMProfile)
	}
	if u != nil {
		u = u.SetRimValidity(r.Expires, &notBefore)
	}
	if u == nil {
		return nil, errors.New("unsigned CoRIM rejected its contents")
	}
	if err := u.Valid(); err != nil {
		return nil, fmt.Errorf("unsigned CoRIM: %w", err)
	}
	payload, err := u.ToCBOR()
	if err != nil {
		return nil, err
	}
	meta := corim.NewMeta().SetSigner(r.Namespace, nil)
	if meta != nil {
		meta = meta.SetValidity(r.Expires, &notBefore)
	}
	if meta == nil {
		return nil, errors.New("CoRIM meta rejected")
	}
	metaCBOR, err := meta.ToCBOR()
	if err != nil {
		return nil, err
	}
	cs := coseSigner{s}
	msg := cose.NewSign1Message()
	msg.Payload = append(append([]byte{}, corimTag...), payload...)
	msg.Headers.Protected.SetAlgorithm(cs.Algorithm())
	msg.Headers.Protected[cose.HeaderLabelContentType] = corim.ContentType
	msg.Headers.Protected[corim.HeaderLabelCorimMeta] = metaCBOR
	if err := msg.Sign(nil, nil, cs); err != nil {
		return nil, fmt.Errorf("signing the CoRIM: %w", err)
	}
	return msg.MarshalCBOR()
}

func referenceTriple(tee string, e Entry) (*comid.ReferenceValue, error) {
	switch tee {
	case "snp":
		d, err := hexValue(e.Values["launch_measurement"], 48)
		if err != nil {
			return nil, fmt.Errorf("launch_measurement: %w", err)
		}
		m, err := comid.NewUintMeasurement(uint64(SNPMeasurementMk))
		if err != nil {
			return nil, err
		}
		m.AddDigest(hashSHA384, d)
		addCoverage(m, e.Coverage)
		class := comid.NewClassOID(SNPClassOID)
		if class == nil {
			return nil, errors.New("SNP class OID rejected")
		}
		return &comid.ReferenceValue{Environment: comid.Environment{Class: class},
			Measurements: *comid.NewMeasurements().AddMeasurement(m)}, nil
	case "tdx":
		regs := comid.NewIntegrityRegisters()
		var keys []string
		for k := range e.Values {
			if k == "mrtd" || len(k) == 5 && k[:4] == "rtmr" && k[4] >= '0' && k[4] <= '3' {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		if len(keys) == 0 || keys[0] != "mrtd" {
			return nil, errors.New("no mrtd value")
		}
		for _, k := range keys {
			d, err := hexValue(e.Values[k], 48)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if err := regs.AddDigest(k, *comid.NewHashEntry(hashSHA384, d)); err != nil {
				return nil, err
			}
		}
		vendor, model := TDXVendor, TDXModel
		m := &comid.Measurement{Val: comid.Mval{IntegrityRegisters: regs}}
		addCoverage(m, e.Coverage)
		return &comid.ReferenceValue{Environment: comid.Environment{Class: &comid.Class{Vendor: &vendor, Model: &model}},
			Measurements: *comid.NewMeasurements().AddMeasurement(m)}, nil
	}
	return nil, fmt.Errorf("no CoRIM mapping for TEE %q", tee)
}

// CoRIMCoverageKey is the measurement-values-map extension key under which
// a CoMID measurement of a partial-coverage entry says what it covers and
// lacks: a map {"covers": [text], "lacks": [text]}. CoRIM lets
// measurement-values-map grow by extension keys; parsers that do not know
// one skip it or keep it aside (veraison/corim, which the tests run, drops
// it; veraison/corim-rs, under Trustee's CoRIM extractor, collects unknown
// keys into its flattened extensions map, and the extractor reads only the
// fields it names), so the digests read as before and the note travels
// with them. Negative keys are outside the range the CoRIM draft assigns.
const CoRIMCoverageKey = -70001

// coverageExt is the extension registered on a measurement's values.
type coverageExt struct {
	Coverage *coverageCBOR `cbor:"-70001,keyasint,omitempty" json:"cocobuild-coverage,omitempty"`
}

type coverageCBOR struct {
	Covers []string `cbor:"covers" json:"covers"`
	Lacks  []string `cbor:"lacks" json:"lacks"`
}

// addCoverage notes a partial coverage on a measurement.
func addCoverage(m *comid.Measurement, c *Coverage) {
	if !c.Partial() {
		return
	}
	m.Val.RegisterExtensions(&coverageExt{Coverage: &coverageCBOR{Covers: c.Covers, Lacks: c.Lacks}})
}

// rawComid is the part of a CoMID that holds the coverage extension,
// decoded on its own: veraison/corim drops extension keys it was not told
// about before decoding.
type rawComid struct {
	Triples struct {
		Reference []rawTriple `cbor:"0,keyasint"`
	} `cbor:"4,keyasint"`
}

type rawTriple struct {
	_            struct{} `cbor:",toarray"`
	Environment  cbor.RawMessage
	Measurements []struct {
		Val map[int]cbor.RawMessage `cbor:"1,keyasint"`
	}
}

// comidCoverage returns, for each reference triple of a CoMID, the
// coverage noted on its measurements (nil where there is none).
func comidCoverage(data []byte) ([]*Coverage, error) {
	var c rawComid
	if err := cbor.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("reading the coverage notes: %w", err)
	}
	var out []*Coverage
	for i, t := range c.Triples.Reference {
		var cov *Coverage
		for _, m := range t.Measurements {
			raw, ok := m.Val[CoRIMCoverageKey]
			if !ok {
				continue
			}
			var cc coverageCBOR
			if err := cbor.Unmarshal(raw, &cc); err != nil {
				return nil, fmt.Errorf("reference triple %d: coverage note: %w", i, err)
			}
			if cov != nil {
				return nil, fmt.Errorf("reference triple %d: two coverage notes", i)
			}
			cov = &Coverage{Covers: cc.Covers, Lacks: cc.Lacks}
		}
		out = append(out, cov)
	}
	return out, nil
}

func hexValue(s string, n int) ([]byte, error) {
	if !isHex(s, n) {
		return nil, fmt.Errorf("%q is not %d bytes of lowercase hex", s, n)
	}
	return hex.DecodeString(s)
}

// CoRIMValues are the reference values a CoRIM holds: for each reference
// triple, the values by manifest key (launch_measurement, mrtd, rtmr0, ...).
type CoRIMValues struct {
	ID       string
	Profiles []string
	Signer   string
	Triples  []map[string]string
	// Coverage is, for each triple, the coverage noted on it (see
	// CoRIMCoverageKey), or nil.
	Coverage []*Coverage
	Validity corim.Validity
}

// VerifyCoRIM checks a signed CoRIM with veraison/corim against the public
// key and decodes its reference values.
func VerifyCoRIM(data []byte, pub *sign.PublicKey) (*CoRIMValues, error) {
	var sc corim.SignedCorim
	if err := sc.FromCOSE(data); err != nil {
		return nil, fmt.Errorf("signed CoRIM: %w", err)
	}
	if err := sc.Verify(pub.Key); err != nil {
		return nil, fmt.Errorf("signed CoRIM: %w: %w", sign.ErrSignature, err)
	}
	// veraison/corim accepts the payload with or without tag 501; the
	// CoRIM specification wants it.
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(data); err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(msg.Payload, corimTag) {
		return nil, errors.New("signed CoRIM: the payload is not a tagged-unsigned-corim-map (CBOR tag 501)")
	}
	out := &CoRIMValues{ID: sc.UnsignedCorim.GetID(), Signer: sc.Meta.Signer.Name}
	if sc.UnsignedCorim.RimValidity != nil {
		out.Validity = *sc.UnsignedCorim.RimValidity
	}
	if sc.UnsignedCorim.Profiles != nil {
		for _, p := range *sc.UnsignedCorim.Profiles {
			out.Profiles = append(out.Profiles, profileString(p))
		}
	}
	for i, t := range sc.UnsignedCorim.Tags {
		if !bytes.HasPrefix(t, corim.ComidTag) {
			return nil, fmt.Errorf("CoRIM tag %d is not a CoMID", i)
		}
		var c comid.Comid
		if err := c.FromCBOR(t[len(corim.ComidTag):]); err != nil {
			return nil, fmt.Errorf("CoMID %d: %w", i, err)
		}
		if err := c.Valid(); err != nil {
			return nil, fmt.Errorf("CoMID %d: %w", i, err)
		}
		if c.Triples.ReferenceValues == nil {
			continue
		}
		covs, err := comidCoverage(t[len(corim.ComidTag):])
		if err != nil {
			return nil, fmt.Errorf("CoMID %d: %w", i, err)
		}
		if len(covs) != len(*c.Triples.ReferenceValues) {
			return nil, fmt.Errorf("CoMID %d: %d reference triples, %d read for coverage notes", i, len(*c.Triples.ReferenceValues), len(covs))
		}
		out.Coverage = append(out.Coverage, covs...)
		for _, rv := range *c.Triples.ReferenceValues {
			vals := map[string]string{}
			for _, m := range rv.Measurements {
				if m.Val.Digests != nil {
					k, err := m.Key.GetKeyUint()
					if err != nil || k != SNPMeasurementMk {
						return nil, fmt.Errorf("CoMID %d: digests under an unexpected measurement key", i)
					}
					for _, d := range *m.Val.Digests {
						if d.HashAlgID != hashSHA384 {
							return nil, fmt.Errorf("CoMID %d: digest algorithm %d, want sha-384", i, d.HashAlgID)
						}
						vals["launch_measurement"] = hex.EncodeToString(d.HashValue)
					}
				}
				if m.Val.IntegrityRegisters != nil {
					regs, err := registers(m.Val.IntegrityRegisters)
					if err != nil {
						return nil, fmt.Errorf("CoMID %d: %w", i, err)
					}
					for k, v := range regs {
						vals[k] = v
					}
				}
			}
			out.Triples = append(out.Triples, vals)
		}
	}
	return out, nil
}

// registers reads the named SHA-384 digests of integrity registers.
func registers(r *comid.IntegrityRegisters) (map[string]string, error) {
	b, err := r.MarshalCBOR()
	if err != nil {
		return nil, err
	}
	var m map[string][]swid.HashEntry
	if err := cbor.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("integrity registers: %w", err)
	}
	out := map[string]string{}
	for k, ds := range m {
		if len(ds) != 1 || ds[0].HashAlgID != hashSHA384 {
			return nil, fmt.Errorf("integrity register %s: want one sha-384 digest", k)
		}
		out[k] = hex.EncodeToString(ds[0].HashValue)
	}
	return out, nil
}

func profileString(p eat.Profile) string {
	s, err := p.Get()
	if err != nil {
		return ""
	}
	return s
}
