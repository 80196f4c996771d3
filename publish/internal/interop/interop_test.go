package interop_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/hex"
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

func fixture(t *testing.T, alg sign.Algorithm) (*publish.Release, *sign.Signer, map[string][]byte) {
	t.Helper()
	m := &publish.Manifest{
		Cocobuild: "test", Recipe: publish.Recipe{Name: "r", SHA256: hex.EncodeToString(bytes.Repeat([]byte{1}, 32))},
		Artifacts: []publish.ManifestArtifact{{Name: "disk.guest", Kind: "disk", Path: "disk/guest.qcow2", SHA256: hex.EncodeToString(bytes.Repeat([]byte{2}, 32)), Size: 1}},
		Measurements: []publish.ManifestMeasurement{
			{TEE: "snp", Name: "snp/a", Values: map[string]any{"launch_measurement": hex.EncodeToString(bytes.Repeat([]byte{3}, 48))}},
			{TEE: "tdx", Name: "tdx/a", Values: map[string]any{"mrtd": hex.EncodeToString(bytes.Repeat([]byte{4}, 48)),
				"rtmr1": hex.EncodeToString(bytes.Repeat([]byte{5}, 48))}},
		},
	}
	r, err := publish.NewRelease(m, publish.Options{Name: "r", Version: "1.0.0", Expires: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)})
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

func TestBundleVerifiesWithSigstoreGo(t *testing.T) {
	for _, alg := range []sign.Algorithm{sign.ECDSAP256, sign.Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			r, s, files := fixture(t, alg)
			var b bundle.Bundle
			if err := b.UnmarshalJSON(files[publish.StatementFile]); err != nil {
				t.Fatal(err)
			}
			pub, err := sign.ParsePublicKey(files[publish.PublicKeyFile])
			if err != nil {
				t.Fatal(err)
			}
			sv, err := signature.LoadVerifier(pub.Key, crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			trusted := root.NewTrustedPublicKeyMaterialFromMapping(map[string]*root.ExpiringKey{
				s.Public().Hint(): root.NewExpiringKey(sv, time.Time{}, time.Time{}),
			})
			v, err := verify.NewVerifier(trusted, verify.WithNoObserverTimestamps())
			if err != nil {
				t.Fatal(err)
			}
			digest, _ := hex.DecodeString(r.Subjects[0].SHA256)
			res, err := v.Verify(&b, verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), verify.WithKey()))
			if err != nil {
				t.Fatalf("sigstore-go rejects the bundle: %v", err)
			}
			if got := res.Statement.GetPredicateType(); got != publish.PredicateType {
				t.Errorf("predicate type %q, want %q", got, publish.PredicateType)
			}
			// A digest that is no subject is refused.
			other := bytes.Repeat([]byte{9}, 32)
			if _, err := v.Verify(&b, verify.NewPolicy(verify.WithArtifactDigest("sha256", other), verify.WithKey())); err == nil {
				t.Error("sigstore-go accepted an artifact digest that is not a subject")
			}
			// Another key is refused.
			o, _ := sign.Generate(alg)
			ov, _ := signature.LoadVerifier(o.Public().Key, crypto.SHA256)
			wrong := root.NewTrustedPublicKeyMaterialFromMapping(map[string]*root.ExpiringKey{
				s.Public().Hint(): root.NewExpiringKey(ov, time.Time{}, time.Time{}),
			})
			wv, _ := verify.NewVerifier(wrong, verify.WithNoObserverTimestamps())
			if _, err := wv.Verify(&b, verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), verify.WithKey())); err == nil {
				t.Error("sigstore-go accepted the bundle with another key")
			}
		})
	}
}

func TestRVPSSignatureVerifiesLikeCosignVerifyBlob(t *testing.T) {
	for _, alg := range []sign.Algorithm{sign.ECDSAP256, sign.Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			_, _, files := fixture(t, alg)
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
		})
	}
}

func TestCoRIMDecodesAndVerifiesWithVeraison(t *testing.T) {
	for _, alg := range []sign.Algorithm{sign.ECDSAP256, sign.Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			r, s, files := fixture(t, alg)
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
