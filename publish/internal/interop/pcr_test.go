package interop_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/veraison/corim/corim"
	"github.com/veraison/swid"

	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/publish/sign"
	"github.com/cocobuild/cocobuild/tee/vtpm"
)

// pcrHex is a distinct SHA-256 PCR value.
func pcrHex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

// TestPCRCoRIMDecodesWithVeraison signs a release of the three vTPM TEE
// names' PCR entries and reads each CoRIM back with veraison/corim: the
// profile is the name's, each PCR an integrity register indexed by its
// number holding one SHA-256 digest; publish.Verify then reads them back as
// the statement's values.
func TestPCRCoRIMDecodesWithVeraison(t *testing.T) {
	names := []string{"tpm", "az-snp-vtpm", "az-tdx-vtpm"}
	m := &manifest.Manifest{
		Cocobuild: "test", Recipe: manifest.Recipe{Name: "r", SHA256: hex.EncodeToString(bytes.Repeat([]byte{1}, 32))},
		Artifacts: []manifest.Artifact{{Name: "disk.guest", Kind: "disk", Path: "disk/guest.qcow2", SHA256: hex.EncodeToString(bytes.Repeat([]byte{2}, 32)), Size: 1}},
	}
	want := map[string]map[string]string{}
	for _, n := range names {
		v := map[string]string{"pcr4": pcrHex(n + "4"), "pcr7": pcrHex(n + "7"), "pcr9": pcrHex(n + "9"), "pcr11": pcrHex(n + "11")}
		want[n] = v
		vals := map[string]any{}
		for k, x := range v {
			vals[k] = x
		}
		m.Measurements = append(m.Measurements, manifest.Measurement{TEE: n, Name: n + "/a",
			Params: map[string]any{"covers": coverage(false, true, true, true)}, Values: vals})
	}
	r, err := publish.NewRelease(m, publish.Options{TEEs: testTEEs, Name: "r", Version: "1.0.0", Expires: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC),
		AllowPartialCoverage: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.Generate(sign.ECDSAP256)
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
	for _, n := range names {
		data, ok := files[publish.CoRIMFile(n)]
		if !ok {
			t.Fatalf("no %s among the release's documents", publish.CoRIMFile(n))
		}
		sc, err := corim.UnmarshalAndValidateSignedCorimFromCBOR(data)
		if err != nil {
			t.Fatalf("%s: veraison/corim rejects the CoRIM: %v", n, err)
		}
		if err := sc.Verify(s.Public().Key); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		u := sc.UnsignedCorim
		if got, _ := u.Profile.Get(); got != vtpm.CoRIMProfileBase+n {
			t.Errorf("%s: profile %s, want %s", n, got, vtpm.CoRIMProfileBase+n)
		}
		cm, err := corim.UnmarshalComidFromCBOR(u.Tags[0].Content, u.Profile)
		if err != nil {
			t.Fatal(err)
		}
		rv := cm.Triples.ReferenceValues.Values
		if len(rv) != 1 {
			t.Fatalf("%s: %d reference triples, want 1", n, len(rv))
		}
		if got := rv[0].Environment.Class.Model; got == nil || *got != n {
			t.Errorf("%s: class model %v, want %q", n, got, n)
		}
		// Read the registers as veraison/corim decoded them: uint indexes,
		// one SHA-256 digest each.
		got := map[string]string{}
		for k, ds := range rv[0].Measurements.Values[0].Val.IntegrityRegisters.IndexMap {
			i, ok := k.(uint64)
			if !ok {
				t.Errorf("%s: register index %v (%T), want a uint", n, k, k)
				continue
			}
			if len(ds) != 1 || ds[0].HashAlgID != swid.Sha256 {
				t.Errorf("%s: PCR %d holds %v, want one sha-256 digest", n, i, ds)
				continue
			}
			got[fmt.Sprintf("pcr%d", i)] = hex.EncodeToString(ds[0].HashValue)
		}
		if d := cmp.Diff(want[n], got); d != "" {
			t.Errorf("%s: PCRs in the CoRIM (-want +got):\n%s", n, d)
		}
		cv, err := publish.VerifyCoRIM(data, s.Public(), testTEEs)
		if err != nil {
			t.Fatalf("%s: publish.VerifyCoRIM: %v", n, err)
		}
		if d := cmp.Diff([]map[string]string{want[n]}, cv.Triples); d != "" {
			t.Errorf("%s: VerifyCoRIM's values (-want +got):\n%s", n, d)
		}
	}
	v, err := publish.Verify(context.Background(), docs, s.Public(), publish.VerifyOptions{TEEs: testTEEs, Now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatalf("publish.Verify: %v", err)
	}
	for _, n := range names {
		if !bytes.Contains([]byte(fmt.Sprint(v.Checked)), []byte(publish.CoRIMFile(n))) {
			t.Errorf("Verify did not check %s: %q", publish.CoRIMFile(n), v.Checked)
		}
	}
}
