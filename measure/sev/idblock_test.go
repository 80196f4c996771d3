package sev

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/binary"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-sev-guest/abi"
)

func readKey(t *testing.T, name string) *ecdsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseIDKeyPEM(b)
	if err != nil {
		t.Fatalf("ParseIDKeyPEM(%s): %v", name, err)
	}
	return k
}

func defaultPolicy(t *testing.T) abi.SnpPolicy {
	t.Helper()
	p, err := abi.ParseSnpPolicy(DefaultIDPolicy)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("bad base64 %q: %v", s, err)
	}
	return b
}

// pythonIDBlock parses what snp-create-id-block printed for the test keys.
func pythonIDBlock(t *testing.T) (block, auth, idDigest, authorDigest []byte) {
	t.Helper()
	out, err := os.ReadFile("testdata/snp-create-id-block.out")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^id-block=([^,]+),id-auth=(\S+)\nid_key_hash: (\S+)\nauthor_key: (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("unexpected snp-create-id-block output %q", out)
	}
	return b64(t, string(m[1])), b64(t, string(m[2])), b64(t, string(m[3])), b64(t, string(m[4]))
}

// TestIDBlockMatchesSevSNPMeasure builds the ID block of sev-snp-measure's
// test_id_block (snp-upstream-tests.json) with the test keys and compares it
// with snp-create-id-block's output for the same inputs: block and key
// digests byte for byte, ID auth apart from the randomised signatures.
func TestIDBlockMatchesSevSNPMeasure(t *testing.T) {
	u := loadUpstream(t)
	ld := b64(t, u.SevSNPMeasure.IDBlock.Measurement)
	wantBlock, wantAuth, wantID, wantAuthor := pythonIDBlock(t)
	if upstream := b64(t, u.SevSNPMeasure.IDBlock.Block); !bytes.Equal(upstream, wantBlock) {
		t.Fatalf("test data is stale: snp-create-id-block.out block %x, upstream test %x", wantBlock, upstream)
	}
	got, err := NewIDBlock(IDBlockParams{LaunchDigest: ld, Policy: defaultPolicy(t),
		IDKey: readKey(t, "id_key_p384.pem"), AuthorKey: readKey(t, "author_key_p384.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Block, wantBlock) {
		t.Errorf("ID block = %x, want %x", got.Block, wantBlock)
	}
	if !bytes.Equal(got.IDKeyDigest, wantID) || !bytes.Equal(got.AuthorKeyDigest, wantAuthor) {
		t.Errorf("key digests = %x, %x; want %x, %x", got.IDKeyDigest, got.AuthorKeyDigest, wantID, wantAuthor)
	}
	// Everything but the two signatures is deterministic.
	mask := func(a []byte) []byte {
		c := bytes.Clone(a)
		clear(c[idAuthBlockSig : idAuthBlockSig+abi.SignatureSize])
		clear(c[idAuthIDKeySig : idAuthIDKeySig+abi.SignatureSize])
		return c
	}
	if !bytes.Equal(mask(got.Auth), mask(wantAuth)) {
		t.Errorf("ID auth (signatures masked) differs from snp-create-id-block's:\n got %x\nwant %x", mask(got.Auth), mask(wantAuth))
	}
	if err := VerifyIDBlock(got.Block, got.Auth); err != nil {
		t.Errorf("our ID block does not verify: %v", err)
	}
	if err := VerifyIDBlock(wantBlock, wantAuth); err != nil {
		t.Errorf("snp-create-id-block's ID block does not verify with our reader: %v", err)
	}
}

func TestIDBlockFields(t *testing.T) {
	policy := defaultPolicy(t)
	policy.Debug = true
	p := IDBlockParams{LaunchDigest: bytes.Repeat([]byte{0xab}, 48), GuestSVN: 7, Policy: policy,
		FamilyID: [16]byte{1, 2}, ImageID: [16]byte{3, 4}, IDKey: readKey(t, "id_key_p384.pem")}
	got, err := NewIDBlock(p)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	if v, svn, pol := le.Uint32(got.Block[0x50:]), le.Uint32(got.Block[0x54:]), le.Uint64(got.Block[0x58:]); v != 1 || svn != 7 || pol != 0xb0000 {
		t.Errorf("version, SVN, policy = %d, %d, %#x; want 1, 7, 0xb0000", v, svn, pol)
	}
	if got.Block[0x30] != 1 || got.Block[0x40] != 3 {
		t.Errorf("family/image IDs not at 0x30/0x40: %x", got.Block)
	}
	if got.AuthorKeyDigest != nil || le.Uint32(got.Auth[idAuthAuthorKeyAlgo:]) != 0 {
		t.Errorf("without an author key: digest %x, algo %d; want none", got.AuthorKeyDigest, le.Uint32(got.Auth[idAuthAuthorKeyAlgo:]))
	}
	if err := VerifyIDBlock(got.Block, got.Auth); err != nil {
		t.Errorf("VerifyIDBlock: %v", err)
	}
	tampered := bytes.Clone(got.Block)
	tampered[0] ^= 1
	if err := VerifyIDBlock(tampered, got.Auth); err == nil {
		t.Error("VerifyIDBlock accepted a tampered block")
	}
}

func TestIDBlockErrors(t *testing.T) {
	id := readKey(t, "id_key_p384.pem")
	ld := make([]byte, 48)
	tests := []struct {
		name string
		p    IDBlockParams
		want string
	}{
		{"short digest", IDBlockParams{LaunchDigest: ld[:32], IDKey: id, Policy: defaultPolicy(t)}, "32 bytes"},
		{"no ID key", IDBlockParams{LaunchDigest: ld, Policy: defaultPolicy(t)}, "ID key"},
	}
	for _, tc := range tests {
		if _, err := NewIDBlock(tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	p256, err := os.ReadFile("testdata/key_p256.pem")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseIDKeyPEM(p256); err == nil || !strings.Contains(err.Error(), "P-384") {
		t.Errorf("ParseIDKeyPEM(P-256 key) error %v, want one asking for P-384", err)
	}
	if _, err := ParseIDKeyPEM([]byte("not a key")); err == nil {
		t.Error("ParseIDKeyPEM accepted garbage")
	}
}
