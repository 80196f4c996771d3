package publish

import (
	"bytes"
	"testing"

	"github.com/cocobuild/cocobuild/publish/sign"
)

// TestUnsignedCoRIM: the unsigned CoRIM is the payload that EncodeCoRIM
// signs, whatever the key, and nil for a TEE the release has no entry of.
func TestUnsignedCoRIM(t *testing.T) {
	r := testRelease(t, "1.0.0")
	has := map[string]bool{}
	for _, e := range r.Entries {
		has[e.TEE] = true
	}
	for _, tee := range testTEEs.CoRIMNames() {
		if !has[tee] {
			continue // the nil case is below
		}
		got, err := UnsignedCoRIM(r, testTEEs, tee)
		if err != nil {
			t.Fatalf("%s: %v", tee, err)
		}
		for _, alg := range []sign.Algorithm{sign.ECDSAP256, sign.Ed25519} {
			signed, err := EncodeCoRIM(r, testTEEs, tee, testSigner(t, alg))
			if err != nil {
				t.Fatal(err)
			}
			want, err := CoRIMPayload(signed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) || len(got) == 0 {
				t.Errorf("%s, %s key: UnsignedCoRIM gives %d bytes, the signed CoRIM's payload is %d other bytes", tee, alg, len(got), len(want))
			}
		}
	}
	snpOnly := *r
	snpOnly.Entries = nil
	for _, e := range r.Entries {
		if e.TEE == "snp" {
			snpOnly.Entries = append(snpOnly.Entries, e)
		}
	}
	if got, err := UnsignedCoRIM(&snpOnly, testTEEs, "tdx"); got != nil || err != nil {
		t.Errorf("UnsignedCoRIM of a release without TDX entries = %d bytes, %v; want nil, nil", len(got), err)
	}
	if _, err := CoRIMPayload([]byte("not CBOR")); err == nil {
		t.Errorf("CoRIMPayload of garbage: no error")
	}
}
