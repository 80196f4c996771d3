package publish

import (
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	cbor "github.com/fxamacker/cbor/v2"
	"github.com/veraison/corim/comid"
	"github.com/veraison/corim/corim"
	"github.com/veraison/eat"
	cose "github.com/veraison/go-cose"
	"github.com/veraison/swid"

	"github.com/cocobuild/cocobuild/publish/sign"
	"github.com/cocobuild/cocobuild/tee"
)

// CoRIM identifiers. Each CoRIM names one profile (key 3: a single
// tagged URI or OID, never an array), in the encoding of veraison/corim;
// the TEE's registration gives it and the reference triples (see
// tee.TEE.CoRIMProfile, CoRIMTriple).
const (
	CoRIMMediaType = "application/rim+cbor"
	hashSHA384     = tee.HashSHA384
)

// CoRIMProfile returns the profile a TEE's CoRIM names, "" for none.
func CoRIMProfile(tees tee.Set, name string) string {
	t, ok := tees.Lookup(name)
	if !ok {
		return ""
	}
	return t.CoRIMProfile(name)
}

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

// UnsignedCoRIM returns the unsigned CoRIM of the release's entries for
// one TEE: the tagged-unsigned-corim-map (CBOR tag 501) that EncodeCoRIM
// signs, or nil when the release has none. It holds no signature and no
// key, so a rebuild can compare it with a release's.
func UnsignedCoRIM(r *Release, tees tee.Set, name string) ([]byte, error) {
	u, err := unsignedCoRIM(r, tees, name)
	if err != nil || u == nil {
		return nil, err
	}
	return u.ToCBOR()
}

// unsignedCoRIM builds the unsigned CoRIM of one TEE, or nil.
func unsignedCoRIM(r *Release, tees tee.Set, name string) (*corim.UnsignedCorim, error) {
	var entries []Entry
	for _, e := range r.Entries {
		if e.TEE == name {
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 {
		return nil, nil
	}
	t, ok := tees.Lookup(name)
	profile := CoRIMProfile(tees, name)
	if !ok || profile == "" {
		return nil, fmt.Errorf("no CoRIM profile for TEE %q", name)
	}
	c := comid.NewComid().SetTagIdentity(r.Name+"/"+name+"/"+r.Version, 0)
	if c == nil {
		return nil, errors.New("CoMID tag identity rejected")
	}
	if c = c.AddEntity(r.Namespace, nil, comid.RoleTagCreator); c == nil {
		return nil, errors.New("CoMID entity rejected")
	}
	for _, e := range entries {
		rv, err := t.CoRIMTriple(name, e.Values, coverageNote(e.Coverage))
		if err != nil {
			return nil, fmt.Errorf("reference value %s/%s: %w", e.TEE, e.Name, err)
		}
		if c = c.AddReferenceValue(rv); c == nil {
			return nil, fmt.Errorf("reference value %s/%s rejected by the CoMID", e.TEE, e.Name)
		}
	}
	if err := c.Valid(); err != nil {
		return nil, fmt.Errorf("CoMID: %w", err)
	}
	notBefore := r.Issued
	u := corim.NewUnsignedCorim().SetID(r.Name + "/" + name + "/" + r.Version).AddComid(c)
	if u != nil {
		u = u.SetProfile(profile)
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
	return u, nil
}

// EncodeCoRIM returns the signed CoRIM (COSE_Sign1, tag 18, whose payload is
// the tag-501 unsigned CoRIM of UnsignedCoRIM) of the release's entries for
// one TEE, or nil when the release has none.
func EncodeCoRIM(r *Release, tees tee.Set, name string, s *sign.Signer) ([]byte, error) {
	u, err := unsignedCoRIM(r, tees, name)
	if err != nil || u == nil {
		return nil, err
	}
	notBefore := r.Issued
	meta := corim.NewMeta().SetSigner(r.Namespace, nil)
	if meta != nil {
		meta = meta.SetValidity(r.Expires, &notBefore)
	}
	if meta == nil {
		return nil, errors.New("CoRIM meta rejected")
	}
	sc := corim.SignedCorim{UnsignedCorim: *u, Meta: *meta}
	b, err := sc.Sign(coseSigner{s})
	if err != nil {
		return nil, fmt.Errorf("signing the CoRIM: %w", err)
	}
	return b, nil
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
const CoRIMCoverageKey = tee.CoRIMCoverageKey

// coverageNote is the coverage note of a partial coverage, else nil.
func coverageNote(c *Coverage) *tee.CoverageNote {
	if !c.Partial() {
		return nil
	}
	return &tee.CoverageNote{Covers: c.Covers, Lacks: c.Lacks}
}

// rawComid is the part of a CoMID that holds the extension keys, decoded on
// its own: veraison/corim drops extension keys it was not told about
// before decoding.
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

// rawExtensions are, for each reference triple of a CoMID, the coverage
// noted on its measurements (nil where there is none) and the other
// extension keys of their measurement-values-maps (the TEE's, such as the
// Intel profile's tee.mrtee), each of which may appear once in a triple.
func rawExtensions(data []byte) ([]*Coverage, []map[int]cbor.RawMessage, error) {
	var c rawComid
	if err := cbor.Unmarshal(data, &c); err != nil {
		return nil, nil, fmt.Errorf("reading the measurement extensions: %w", err)
	}
	var covs []*Coverage
	var exts []map[int]cbor.RawMessage
	for i, t := range c.Triples.Reference {
		var cov *Coverage
		ext := map[int]cbor.RawMessage{}
		for _, m := range t.Measurements {
			for k, raw := range m.Val {
				if k >= 0 || k == CoRIMCoverageKey {
					continue // the base CoRIM's keys, which veraison/corim reads
				}
				if _, dup := ext[k]; dup {
					return nil, nil, fmt.Errorf("reference triple %d: extension key %d twice", i, k)
				}
				ext[k] = raw
			}
			raw, ok := m.Val[CoRIMCoverageKey]
			if !ok {
				continue
			}
			var cc tee.CoverageNote
			if err := cbor.Unmarshal(raw, &cc); err != nil {
				return nil, nil, fmt.Errorf("reference triple %d: coverage note: %w", i, err)
			}
			if cov != nil {
				return nil, nil, fmt.Errorf("reference triple %d: two coverage notes", i)
			}
			cov = &Coverage{Covers: cc.Covers, Lacks: cc.Lacks}
		}
		covs = append(covs, cov)
		exts = append(exts, ext)
	}
	return covs, exts, nil
}

// CoRIMValues are the reference values a CoRIM holds: for each reference
// triple, the values by manifest key (launch_measurement, mrtd, rtmr0, ...).
type CoRIMValues struct {
	ID string
	// Profile is the CoRIM's profile (a URI or an OID).
	Profile string
	Signer  string
	Triples []map[string]string
	// Coverage is, for each triple, the coverage noted on it (see
	// CoRIMCoverageKey), or nil.
	Coverage []*Coverage
	Validity corim.Validity
}

// VerifyCoRIM checks a signed CoRIM with veraison/corim against the public
// key and decodes its reference values, as the TEE of its profile reads
// them.
func VerifyCoRIM(data []byte, pub *sign.PublicKey, tees tee.Set) (*CoRIMValues, error) {
	sc := corim.NewSignedCorim()
	if err := sc.FromCOSE(data); err != nil {
		return nil, fmt.Errorf("signed CoRIM: %w", err)
	}
	if err := sc.Verify(pub.Key); err != nil {
		return nil, fmt.Errorf("signed CoRIM: %w: %w", sign.ErrSignature, err)
	}
	u := sc.UnsignedCorim
	out := &CoRIMValues{ID: u.GetID(), Signer: sc.Meta.Signer.Name}
	if u.RimValidity != nil {
		out.Validity = *u.RimValidity
	}
	if u.Profile != nil {
		out.Profile = profileString(*u.Profile)
	}
	var reg tee.TEE
	var name string
	for _, n := range tees.CoRIMNames() {
		if t, ok := tees.Lookup(n); ok && t.CoRIMProfile(n) == out.Profile {
			reg, name = t, n
			break
		}
	}
	if reg == nil {
		return nil, fmt.Errorf("CoRIM profile %q is that of no TEE cocobuild publishes for (%s)", out.Profile, strings.Join(tees.CoRIMNames(), ", "))
	}
	for i, t := range u.Tags {
		if t.Number != corim.ComidTag {
			return nil, fmt.Errorf("CoRIM tag %d is not a CoMID (tag %d, want %d)", i, t.Number, corim.ComidTag)
		}
		c := comid.NewComid()
		if err := c.FromCBOR(t.Content); err != nil {
			return nil, fmt.Errorf("CoMID %d: %w", i, err)
		}
		if err := c.Valid(); err != nil {
			return nil, fmt.Errorf("CoMID %d: %w", i, err)
		}
		if c.Triples.ReferenceValues == nil {
			continue
		}
		covs, exts, err := rawExtensions(t.Content)
		if err != nil {
			return nil, fmt.Errorf("CoMID %d: %w", i, err)
		}
		rvs := c.Triples.ReferenceValues.Values
		if len(covs) != len(rvs) {
			return nil, fmt.Errorf("CoMID %d: %d reference triples, %d read for their extensions", i, len(rvs), len(covs))
		}
		out.Coverage = append(out.Coverage, covs...)
		for j, rv := range rvs {
			vals := map[string]string{}
			rd := tee.CoRIMReading{Digests: map[uint64][]swid.HashEntry{}, Extensions: exts[j]}
			for _, m := range rv.Measurements.Values {
				if m.Val.Digests != nil {
					if m.Key == nil {
						return nil, fmt.Errorf("CoMID %d: digests under no measurement key", i)
					}
					k, err := m.Key.GetKeyUint()
					if err != nil {
						return nil, fmt.Errorf("CoMID %d: digests under an unexpected measurement key", i)
					}
					rd.Digests[k] = append(rd.Digests[k], *m.Val.Digests...)
				}
				if m.Val.IntegrityRegisters != nil {
					regs, err := registers(m.Val.IntegrityRegisters, &rd)
					if err != nil {
						return nil, fmt.Errorf("CoMID %d: %w", i, err)
					}
					for k, v := range regs {
						vals[k] = v
					}
				}
			}
			tv, err := reg.CoRIMValues(name, rd)
			if err != nil {
				return nil, fmt.Errorf("CoMID %d: %w", i, err)
			}
			for k, v := range tv {
				vals[k] = v
			}
			out.Triples = append(out.Triples, vals)
		}
	}
	return out, nil
}

// registers reads the integrity registers: those named by text (TDX's
// "rtmr0" …) must hold one SHA-384 digest each and are returned by name;
// those indexed by uint (TPM PCRs) go to the TEE as they are, in
// rd.Registers, for it to check their algorithms.
func registers(r *comid.IntegrityRegisters, rd *tee.CoRIMReading) (map[string]string, error) {
	out := map[string]string{}
	for k, ds := range r.IndexMap {
		switch k := k.(type) {
		case string:
			if len(ds) != 1 || ds[0].HashAlgID != hashSHA384 {
				return nil, fmt.Errorf("integrity register %s: want one sha-384 digest", k)
			}
			out[k] = hex.EncodeToString(ds[0].HashValue)
		case uint64, uint:
			i := toUint64(k)
			if rd.Registers == nil {
				rd.Registers = map[uint64][]swid.HashEntry{}
			}
			if _, dup := rd.Registers[i]; dup {
				return nil, fmt.Errorf("integrity register %d twice", i)
			}
			rd.Registers[i] = append([]swid.HashEntry(nil), ds...)
		default:
			return nil, fmt.Errorf("integrity register index %v is neither text nor uint", k)
		}
	}
	return out, nil
}

func toUint64(k any) uint64 {
	if u, ok := k.(uint); ok {
		return uint64(u)
	}
	return k.(uint64)
}

func profileString(p eat.Profile) string {
	s, err := p.Get()
	if err != nil {
		return ""
	}
	return s
}
