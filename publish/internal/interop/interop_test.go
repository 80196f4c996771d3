package interop_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	cbor "github.com/fxamacker/cbor/v2"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/veraison/corim/comid"
	"github.com/veraison/corim/corim"
	"github.com/veraison/corim/extensions"
	"github.com/veraison/corim/profiles/tdx"
	"github.com/veraison/eat"
	cose "github.com/veraison/go-cose"

	"github.com/cocobuild/cocobuild/internal/tees"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/sign"
	teesev "github.com/cocobuild/cocobuild/tee/sev"
)

// These tests check the formats with the consumers' own libraries, not with
// the package's verifier: sigstore-go (what cosign v3 uses to verify
// bundles), sigstore's signature package (what cosign verify-blob uses for a
// detached signature) and veraison/corim.

// fixtureCases are the key algorithms, each with full and with partial
// coverage.
var fixtureCases = []fixtureCase{{sign.ECDSAP256, false}, {sign.Ed25519, false}, {sign.ECDSAP256, true}, {sign.Ed25519, true}}

type fixtureCase struct {
	alg     sign.Algorithm
	partial bool
}

func (c fixtureCase) name() string {
	if c.partial {
		return string(c.alg) + "/partial"
	}
	return string(c.alg)
}

// coverageKeyCBOR is publish.CoRIMCoverageKey as a CBOR negative integer
// (major type 1, 4-byte argument -1-key).
var coverageKeyCBOR = []byte{0x3a, 0x00, 0x01, 0x11, 0x70}

func coverage(firmware, kernel, initrd, cmdline bool) map[string]any {
	return map[string]any{"firmware": firmware, "kernel": kernel, "initrd": initrd, "cmdline": cmdline}
}

// fixture signs a release of one SNP and one TDX entry in every format;
// partial makes both cover the firmware only (allowed).
func fixture(t *testing.T, alg sign.Algorithm, partial bool) (*publish.Release, *sign.Signer, map[string][]byte) {
	t.Helper()
	m := &manifest.Manifest{
		Cocobuild: "test", Recipe: manifest.Recipe{Name: "r", SHA256: hex.EncodeToString(bytes.Repeat([]byte{1}, 32))},
		Artifacts: []manifest.Artifact{{Name: "disk.guest", Kind: "disk", Path: "disk/guest.qcow2", SHA256: hex.EncodeToString(bytes.Repeat([]byte{2}, 32)), Size: 1}},
		Measurements: []manifest.Measurement{
			{TEE: "snp", Name: "snp/a", Params: map[string]any{"covers": coverage(true, true, true, true)},
				Values: map[string]any{"launch_measurement": hex.EncodeToString(bytes.Repeat([]byte{3}, 48))}},
			{TEE: "tdx", Name: "tdx/a", Params: map[string]any{"covers": coverage(true, true, true, true)},
				Values: map[string]any{"mrtd": hex.EncodeToString(bytes.Repeat([]byte{4}, 48)), "rtmr1": hex.EncodeToString(bytes.Repeat([]byte{5}, 48))}},
		},
	}
	if partial {
		// As measured on a firmware that checks nothing it boots: firmware only.
		for _, mm := range m.Measurements {
			mm.Params["covers"] = coverage(true, false, false, false)
		}
	}
	r, err := publish.NewRelease(m, publish.Options{TEEs: testTEEs, Name: "r", Version: "1.0.0", Expires: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC),
		AllowPartialCoverage: partial})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := publish.Sign(context.Background(), r, s, publish.AllFormats, testTEEs)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, d := range docs {
		files[d.Name] = d.Data
	}
	return r, s, files
}

// keyVerifier is a sigstore-go verifier that trusts pub for bundles keyed
// by hint, with no transparency log or timestamps: what cosign v3 does for
// --key … --insecure-ignore-tlog.
func keyVerifier(t *testing.T, hint string, pub *sign.PublicKey) *verify.Verifier {
	t.Helper()
	sv, err := signature.LoadVerifier(pub.Key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.NewVerifier(root.NewTrustedPublicKeyMaterialFromMapping(map[string]*root.ExpiringKey{
		hint: root.NewExpiringKey(sv, time.Time{}, time.Time{}),
	}), verify.WithNoObserverTimestamps())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// loadBundle reads the sigstore bundle of a release's documents as
// sigstore-go does.
func loadBundle(t *testing.T, files map[string][]byte, name string) *bundle.Bundle {
	t.Helper()
	var b bundle.Bundle
	if err := b.UnmarshalJSON(files[name]); err != nil {
		t.Fatalf("%s is not a sigstore bundle: %v", name, err)
	}
	return &b
}

func TestBundleVerifiesWithSigstoreGo(t *testing.T) {
	for _, c := range fixtureCases {
		alg, partial := c.alg, c.partial
		t.Run(c.name(), func(t *testing.T) {
			r, s, files := fixture(t, alg, partial)
			b := loadBundle(t, files, publish.StatementFile)
			pub, err := sign.ParsePublicKey(files[publish.PublicKeyFile])
			if err != nil {
				t.Fatal(err)
			}
			v := keyVerifier(t, s.Public().Hint(), pub)
			digest, _ := hex.DecodeString(r.Subjects[0].SHA256)
			res, err := v.Verify(b, verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), verify.WithKey()))
			if err != nil {
				t.Fatalf("sigstore-go rejects the bundle: %v", err)
			}
			if got := res.Statement.GetPredicateType(); got != publish.PredicateType {
				t.Errorf("predicate type %q, want %q", got, publish.PredicateType)
			}
			// The predicate sigstore-go hands a policy says what each value covers.
			pred := res.Statement.GetPredicate().AsMap()
			if got := pred["partial_coverage"] == true; got != partial {
				t.Errorf("predicate partial_coverage = %v, want %v", pred["partial_coverage"], partial)
			}
			for _, e := range pred["reference_values"].([]any) {
				cov, _ := e.(map[string]any)["coverage"].(map[string]any)
				wantLacks := "<nil>"
				if partial {
					wantLacks = "[kernel cmdline]"
				}
				if got := fmt.Sprint(cov["lacks"]); got != wantLacks || fmt.Sprint(cov["covers"]) == "<nil>" {
					t.Errorf("predicate entry coverage %v: lacks %s, want %s", cov, got, wantLacks)
				}
			}
			// A digest that is no subject is refused.
			other := bytes.Repeat([]byte{9}, 32)
			if _, err := v.Verify(b, verify.NewPolicy(verify.WithArtifactDigest("sha256", other), verify.WithKey())); err == nil {
				t.Error("sigstore-go accepted an artifact digest that is not a subject")
			}
			// Another key is refused.
			o, _ := sign.Generate(alg)
			if _, err := keyVerifier(t, s.Public().Hint(), o.Public()).Verify(b, verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), verify.WithKey())); err == nil {
				t.Error("sigstore-go accepted the bundle with another key")
			}
		})
	}
}

// TestRVPSSignatureVerifiesLikeCosignVerifyBlob checks rvps.json.sig as
// cosign verify-blob --signature does and rvps.json.sigstore.json as cosign
// v3's verify-blob --bundle does: each verifies, and a changed message or
// another key does not.
func TestRVPSSignatureVerifiesLikeCosignVerifyBlob(t *testing.T) {
	for _, c := range fixtureCases {
		alg, partial := c.alg, c.partial
		t.Run(c.name(), func(t *testing.T) {
			_, s, files := fixture(t, alg, partial)
			// cosign verify-blob --key: the PEM public key, a base64 signature
			// file, the blob; with signature.LoadVerifier(key, SHA256).
			pub, err := sign.ParsePublicKey(files[publish.PublicKeyFile])
			if err != nil {
				t.Fatal(err)
			}
			v, err := signature.LoadVerifier(pub.Key, crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := base64.StdEncoding.DecodeString(string(files[publish.RVPSSigFile]))
			if err != nil {
				t.Fatal(err)
			}
			if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(files[publish.RVPSFile])); err != nil {
				t.Fatalf("the detached signature does not verify: %v", err)
			}
			bad := append([]byte(nil), files[publish.RVPSFile]...)
			bad[len(bad)-3] ^= 1
			if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(bad)); err == nil {
				t.Error("a changed message verified")
			}
			// cosign v3's verify-blob --bundle: rvps.json.sigstore.json
			// checked by sigstore-go with the artifact given, the public
			// key, no transparency log.
			b := loadBundle(t, files, publish.RVPSBundleFile)
			kv := keyVerifier(t, s.Public().Hint(), s.Public())
			msg := files[publish.RVPSFile]
			if _, err := kv.Verify(b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(msg)), verify.WithKey())); err != nil {
				t.Fatalf("sigstore-go rejects %s: %v", publish.RVPSBundleFile, err)
			}
			bad = append([]byte(nil), msg...)
			bad[len(bad)/2] ^= 1
			if _, err := kv.Verify(b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(bad)), verify.WithKey())); err == nil {
				t.Error("sigstore-go accepted the bundle for a changed rvps.json")
			}
			o, err := sign.Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := keyVerifier(t, s.Public().Hint(), o.Public()).Verify(b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(msg)), verify.WithKey())); err == nil {
				t.Error("sigstore-go accepted the bundle with another key")
			}
		})
	}
}

// snpSchemeRules are the reference-value rules Veraison's SEV-SNP scheme
// (services scheme/sevsnp, corim.go) registers with veraison/corim for the
// profile tag:amd.com,2024:snp-corim-profile: a class whose class-id is an
// OID, an instance of type bytes (the scheme looks reference values up by
// the launch measurement as a bytes instance) and measurements under uint
// mkeys. The scheme module is not a dependency of cocobuild, so its rules
// are registered here, through the same extension point.
type snpSchemeRules struct{}

func (*snpSchemeRules) ValidTriples(t *comid.Triples) error {
	if t.ReferenceValues == nil {
		return nil
	}
	for i, rv := range t.ReferenceValues.Values {
		env := rv.Environment
		switch {
		case env.Class == nil || env.Class.ClassID == nil:
			return fmt.Errorf("reference value %d: missing class ID", i)
		case env.Class.ClassID.Type() != comid.OIDType:
			return fmt.Errorf("reference value %d: class ID: expected OID, got %s", i, env.Class.ClassID.Type())
		case env.Instance == nil:
			return fmt.Errorf("reference value %d: missing instance", i)
		case env.Instance.Type() != comid.BytesType:
			return fmt.Errorf("reference value %d: instance: expected bytes, got %s", i, env.Instance.Type())
		}
		for j, m := range rv.Measurements.Values {
			if m.Key == nil || m.Key.Type() != comid.UintType {
				return fmt.Errorf("reference value %d measurement %d: mkey must be a uint", i, j)
			}
		}
	}
	return nil
}

func init() {
	p, err := eat.NewProfile(teesev.CoRIMProfile)
	if err != nil {
		panic(err)
	}
	if err := corim.RegisterProfile(p, extensions.NewMap().Add(comid.ExtTriples, &snpSchemeRules{})); err != nil {
		panic(err)
	}
}

// rawCoRIM is the unsigned CoRIM as plain CBOR: the profile (key 3) and
// the tags (key 1), to check their encoding byte for byte.
type rawCoRIM struct {
	Tags    []cbor.RawMessage `cbor:"1,keyasint"`
	Profile cbor.RawMessage   `cbor:"3,keyasint"`
}

func TestCoRIMDecodesAndVerifiesWithVeraison(t *testing.T) {
	for _, c := range fixtureCases {
		alg, partial := c.alg, c.partial
		t.Run(c.name(), func(t *testing.T) {
			r, s, files := fixture(t, alg, partial)
			for _, tee := range []string{"snp", "tdx"} {
				data := files[publish.CoRIMFile(tee)]
				if !bytes.HasPrefix(data, []byte{0xd2}) {
					t.Errorf("%s: not a tag-18 COSE_Sign1 (starts %x)", tee, data[:2])
				}
				// veraison/corim's own entry point: decode with the
				// profile's extensions registered, then validate the
				// CoRIM and every CoMID (the profile's rules included).
				sc, err := corim.UnmarshalAndValidateSignedCorimFromCBOR(data)
				if err != nil {
					t.Fatalf("%s: veraison/corim rejects the CoRIM: %v", tee, err)
				}
				if err := sc.Verify(s.Public().Key); err != nil {
					t.Fatalf("%s: %v", tee, err)
				}
				o, _ := sign.Generate(alg)
				if err := sc.Verify(o.Public().Key); err == nil {
					t.Errorf("%s: verified with another key", tee)
				}
				u := sc.UnsignedCorim
				if got := u.RimValidity.NotAfter; !got.Equal(r.Expires) {
					t.Errorf("%s: not-after %s, want %s", tee, got, r.Expires)
				}
				if u.Profile == nil {
					t.Fatalf("%s: no profile", tee)
				}
				if got, _ := u.Profile.Get(); got != publish.CoRIMProfile(testTEEs, tee) {
					t.Errorf("%s: profile %s, want %s", tee, got, publish.CoRIMProfile(testTEEs, tee))
				}
				// The encoding on the wire: one profile, as this
				// veraison/corim writes and reads it (a text string for a
				// URI, the OID's bytes for an OID; never an array), and
				// each tag a CoMID as tag 506 wrapping a byte string.
				payload, err := publish.UnsignedCoRIM(r, testTEEs, tee)
				if err != nil {
					t.Fatal(err)
				}
				var raw rawCoRIM
				if err := cbor.Unmarshal(payload[3:], &raw); err != nil {
					t.Fatal(err)
				}
				wantMajor := map[string]byte{"snp": 3, "tdx": 2}[tee] // text string, byte string
				if len(raw.Profile) == 0 || raw.Profile[0]>>5 != wantMajor {
					t.Errorf("%s: profile %x is not one CBOR item of major type %d", tee, []byte(raw.Profile), wantMajor)
				}
				if len(raw.Tags) != 1 {
					t.Fatalf("%s: %d tags, want 1 CoMID", tee, len(raw.Tags))
				}
				var ct cbor.RawTag
				var content []byte
				if err := cbor.Unmarshal(raw.Tags[0], &ct); err != nil || ct.Number != 506 || cbor.Unmarshal(ct.Content, &content) != nil {
					t.Errorf("%s: tag %x is not a tag-506 byte string (%v)", tee, []byte(raw.Tags[0])[:4], err)
				}
				cm, err := corim.UnmarshalComidFromCBOR(u.Tags[0].Content, u.Profile)
				if err != nil {
					t.Fatal(err)
				}
				// The coverage note is an extension key of the measurement
				// values: there with partial coverage only.
				if got := bytes.Contains(u.Tags[0].Content, coverageKeyCBOR); got != partial {
					t.Errorf("%s: coverage extension key %x in the CoMID: %v, want %v", tee, coverageKeyCBOR, got, partial)
				}
				rv := cm.Triples.ReferenceValues.Values[0]
				switch tee {
				case "snp":
					e := r.Entries[0]
					if got := rv.Environment.Class.ClassID.String(); got != teesev.ClassOID {
						t.Errorf("snp class-id %s, want %s", got, teesev.ClassOID)
					}
					if got := hex.EncodeToString(rv.Environment.Instance.Bytes()); got != e.Values["launch_measurement"] {
						t.Errorf("snp instance %s, want the launch measurement %s", got, e.Values["launch_measurement"])
					}
					m := rv.Measurements.Values[0]
					k, err := m.Key.GetKeyUint()
					if err != nil || k != 641 {
						t.Errorf("snp mkey %d (%v), want 641 (MEASUREMENT)", k, err)
					}
					d := (*m.Val.Digests)[0]
					if d.HashAlgID != 7 || hex.EncodeToString(d.HashValue) != e.Values["launch_measurement"] {
						t.Errorf("snp digest %d:%x, want sha-384 of the launch measurement", d.HashAlgID, d.HashValue)
					}
				case "tdx":
					e := r.Entries[1]
					ext, ok := rv.Measurements.Values[0].Val.GetExtensions().(*tdx.MValExtensions)
					if !ok || ext.TeeMrTee == nil {
						t.Fatalf("tdx: no tee.mrtee read by the Intel profile's extensions (%T)", rv.Measurements.Values[0].Val.GetExtensions())
					}
					j, err := ext.TeeMrTee.MarshalJSON()
					if err != nil {
						t.Fatal(err)
					}
					mrtd, _ := hex.DecodeString(e.Values["mrtd"])
					if want := base64.RawURLEncoding.EncodeToString(mrtd); !bytes.Contains(j, []byte(want)) {
						t.Errorf("tdx tee.mrtee %s lacks the MRTD %s", j, want)
					}
					rj, err := rv.Measurements.Values[0].Val.IntegrityRegisters.MarshalJSON()
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Contains(rj, []byte(`"rtmr1"`)) {
						t.Errorf("tdx integrity registers %s lack rtmr1", rj)
					}
				}
			}
		})
	}
}

func TestUnsignedCoRIMIsTheSignedPayload(t *testing.T) {
	r, _, files := fixture(t, sign.Ed25519, false)
	for _, tee := range []string{"snp", "tdx"} {
		u, err := publish.UnsignedCoRIM(r, testTEEs, tee)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := corim.UnmarshalAndValidateUnsignedCorimFromCBOR(u); err != nil {
			t.Errorf("%s: veraison/corim rejects the unsigned CoRIM: %v", tee, err)
		}
		var msg cose.Sign1Message
		if err := msg.UnmarshalCBOR(files[publish.CoRIMFile(tee)]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(msg.Payload, u) {
			t.Errorf("%s: the unsigned CoRIM is not the signed CoRIM's payload", tee)
		}
	}
}

// TestSNPSchemeRulesRefuseWhatVeraisonRefuses checks that the rules the
// tests register can fail: an environment without an instance, as
// cocobuild wrote it before, is refused.
func TestSNPSchemeRulesRefuseWhatVeraisonRefuses(t *testing.T) {
	m := comid.MustNewUintMeasurement(uint64(641))
	m.AddDigest(7, bytes.Repeat([]byte{3}, 48))
	tr := comid.Triples{ReferenceValues: comid.NewValueTriples().Add(&comid.ValueTriple{
		Environment:  comid.Environment{Class: comid.NewClassOID(teesev.ClassOID)},
		Measurements: *comid.NewMeasurements().Add(m)})}
	if err := (&snpSchemeRules{}).ValidTriples(&tr); err == nil || !strings.Contains(err.Error(), "missing instance") {
		t.Errorf("got %v, want a missing instance error", err)
	}
}

// testTEEs are the TEEs cocobuild registers.
var testTEEs = tees.All()
