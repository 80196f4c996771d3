package interop_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/veraison/corim/comid"
	"github.com/veraison/corim/corim"

	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/sign"
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
	m := &publish.Manifest{
		Cocobuild: "test", Recipe: publish.Recipe{Name: "r", SHA256: hex.EncodeToString(bytes.Repeat([]byte{1}, 32))},
		Artifacts: []publish.ManifestArtifact{{Name: "disk.guest", Kind: "disk", Path: "disk/guest.qcow2", SHA256: hex.EncodeToString(bytes.Repeat([]byte{2}, 32)), Size: 1}},
		Measurements: []publish.ManifestMeasurement{
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
	r, err := publish.NewRelease(m, publish.Options{Name: "r", Version: "1.0.0", Expires: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC),
		AllowPartialCoverage: partial})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.Generate(alg)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := publish.Sign(context.Background(), r, s, publish.AllFormats)
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
				var sc corim.SignedCorim
				if err := sc.FromCOSE(data); err != nil {
					t.Fatalf("%s: %v", tee, err)
				}
				if err := sc.Verify(s.Public().Key); err != nil {
					t.Fatalf("%s: %v", tee, err)
				}
				o, _ := sign.Generate(alg)
				if err := sc.Verify(o.Public().Key); err == nil {
					t.Errorf("%s: verified with another key", tee)
				}
				if got := sc.UnsignedCorim.RimValidity.NotAfter; !got.Equal(r.Expires) {
					t.Errorf("%s: not-after %s, want %s", tee, got, r.Expires)
				}
				if len(sc.UnsignedCorim.Tags) != 1 {
					t.Fatalf("%s: %d tags, want 1 CoMID", tee, len(sc.UnsignedCorim.Tags))
				}
				var c comid.Comid
				if err := c.FromCBOR(sc.UnsignedCorim.Tags[0][3:]); err != nil {
					t.Fatal(err)
				}
				if err := c.Valid(); err != nil {
					t.Errorf("%s: veraison finds the CoMID invalid: %v", tee, err)
				}
				// The coverage note is an extension key of the measurement
				// values: there with partial coverage, and veraison reads
				// the values around it as before (checked below).
				if got := bytes.Contains(sc.UnsignedCorim.Tags[0], coverageKeyCBOR); got != partial {
					t.Errorf("%s: coverage extension key %x in the CoMID: %v, want %v", tee, coverageKeyCBOR, got, partial)
				}
				rv := (*c.Triples.ReferenceValues)[0]
				switch tee {
				case "snp":
					if got := rv.Environment.Class.ClassID.String(); got != publish.SNPClassOID {
						t.Errorf("snp class-id %s, want %s", got, publish.SNPClassOID)
					}
					k, err := rv.Measurements[0].Key.GetKeyUint()
					if err != nil || k != 641 {
						t.Errorf("snp mkey %d (%v), want 641 (MEASUREMENT)", k, err)
					}
					d := (*rv.Measurements[0].Val.Digests)[0]
					if d.HashAlgID != 7 || hex.EncodeToString(d.HashValue) != r.Entries[0].Values["launch_measurement"] {
						t.Errorf("snp digest %d:%x, want sha-384 of the launch measurement", d.HashAlgID, d.HashValue)
					}
					if p := (*sc.UnsignedCorim.Profiles)[0]; p.IsURI() {
						if s, _ := p.Get(); s != publish.SNPCoRIMProfile {
							t.Errorf("profile %s, want %s", s, publish.SNPCoRIMProfile)
						}
					}
				case "tdx":
					j, err := rv.Measurements[0].Val.IntegrityRegisters.MarshalJSON()
					if err != nil {
						t.Fatal(err)
					}
					for _, reg := range []string{`"mrtd"`, `"rtmr1"`} {
						if !bytes.Contains(j, []byte(reg)) {
							t.Errorf("tdx integrity registers %s lack %s", j, reg)
						}
					}
				}
			}
		})
	}
}
