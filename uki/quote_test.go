package uki_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/publish"
)

// serializedPCRs writes the SHA-256 PCRs 0-23 (values, 24 digests) as
// tpm2_quote -o writes them (its default, -F serialized: the C structures
// of a little-endian host; tee/vtpm ParsePCRValues reads them): a
// TPML_PCR_SELECTION (a count and 16 TPMS_PCR_SELECTION of 8 bytes: hash,
// sizeofSelect, pcrSelect[4], padding), a UINT32 count of TPML_DIGEST,
// each a count and 8 TPM2B_DIGEST of 66 bytes. Written for tpm2_checkquote
// 5.4, which fails on the -F values form of more than 8 PCRs with -l
// ("Failed to hash PCR values related to quote!"); the bytes are those
// tpm2_quote -o writes for the same values (compared by hand with swtpm).
func serializedPCRs(values []byte) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 1)
	b = le.AppendUint16(b, 0x000b) // TPM_ALG_SHA256
	b = append(b, 3, 0xff, 0xff, 0xff, 0, 0)
	b = append(b, make([]byte, 15*8)...)
	b = le.AppendUint32(b, 3)
	for set := range 3 {
		b = le.AppendUint32(b, 8)
		for i := range 8 {
			b = le.AppendUint16(b, 32)
			b = append(b, values[(set*8+i)*32:(set*8+i+1)*32]...)
			b = append(b, make([]byte, 32)...)
		}
	}
	return b
}

// checkQuote checks the guest's TPM quote of a real boot (b) with the
// built cocobuild binary against the release of the same build: a match
// with the AK as tpm2-tools' PEM and as its TPM2B_PUBLIC; a release whose
// PCR 4 differs (the same recipe with failed_boot_options = 0), a wrong
// AK, a wrong nonce and altered PCR values are each refused and named.
// tpm2_checkquote is the oracle: it accepts the same quote, signature, AK,
// nonce and PCR values, and refuses the wrong AK and nonce too.
func checkQuote(t *testing.T, b ukiBoot) {
	checkquote := testenv.Tool(t, "tpm2_checkquote", "tpm2-tools")
	tpm2print := testenv.Tool(t, "tpm2_print", "tpm2-tools")
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	attest, sig, akPub := write("quote.msg", b.con.quote["attest"]), write("quote.sig", b.con.quote["signature"]), write("ak.pub", b.con.quote["akpub"])
	var values []byte
	for n := range 24 {
		v, err := hex.DecodeString(b.con.pcrs["sha256"][n])
		if err != nil || len(v) != 32 {
			t.Fatalf("guest PCR sha256:%d = %q", n, b.con.pcrs["sha256"][n])
		}
		values = append(values, v...)
	}
	pcrs, serialized := write("pcrs.values", values), write("pcrs.bin", serializedPCRs(values))
	changed := bytes.Clone(values)
	changed[9*32] ^= 1
	pcrsChanged := write("pcrs-changed.values", changed)
	nonce := hex.EncodeToString(b.nonce)
	otherNonce := strings.Repeat("00", len(b.nonce))

	// The AK as tpm2_readpublic -f pem writes it: tpm2_print converts the
	// guest's TPM2B_PUBLIC.
	pemOut, err := exec.Command(tpm2print, "-t", "TPM2B_PUBLIC", "-f", "pem", akPub).Output()
	if err != nil {
		t.Fatalf("tpm2_print -f pem: %v", err)
	}
	akPEM := write("ak.pem", pemOut)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&other.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	wrongAK := filepath.Join(dir, "wrong-ak.pem")
	writePEM(t, wrongAK, "PUBLIC KEY", der)

	// The oracle.
	for _, c := range []struct {
		name, ak, nonce string
		ok              bool
	}{{"TPM2B_PUBLIC", akPub, nonce, true}, {"PEM", akPEM, nonce, true}, {"wrong AK", wrongAK, nonce, false}, {"wrong nonce", akPub, otherNonce, false}} {
		o, err := exec.Command(checkquote, "-u", c.ak, "-m", attest, "-s", sig, "-f", serialized, "-g", "sha256", "-q", c.nonce).CombinedOutput()
		if (err == nil) != c.ok {
			t.Errorf("tpm2_checkquote, %s: %v (want success %v)\n%s", c.name, err, c.ok, o)
		}
	}

	// The CLI, built, against the release of the same build and of the
	// same recipe with another PCR 4.
	bin := filepath.Join(dir, "cocobuild")
	gb := exec.Command("go", "build", "-o", bin, "github.com/cocobuild/cocobuild/cmd/cocobuild")
	if o, err := gb.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/cocobuild: %v\n%s", err, o)
	}
	if o, err := exec.Command(bin, "keygen", "--dev", "--cache-dir", b.cache).CombinedOutput(); err != nil {
		t.Fatalf("cocobuild keygen --dev: %v\n%s", err, o)
	}
	m4, out4 := b.rebuild("failed0", 0)
	release, release4 := filepath.Join(b.out, "publish", "ukiboot"), filepath.Join(out4, "publish", "ukiboot")
	key := []string{"--allow-dev-key", "--key", filepath.Join(publish.DevKeyDir(b.cache), "cosign.pub")}
	ok := []string{"--evidence", attest, "--pcrs", pcrs, "--signature", sig, "--nonce", nonce}
	for _, c := range []struct {
		name     string
		args     []string
		target   string
		code     int
		want     []string
		unwanted []string
	}{
		{"PEM AK", append(ok, "--ak", akPEM), release, 0,
			[]string{"signature: the quote's ECDSA SHA-256 signature verifies with " + akPEM + " (PEM public key)", "MATCH: the evidence matches tpm", "of release ukiboot 0.1.0",
				"tpm_pcr4", "tpm_pcr11", "not vouched for: the attestation key is taken as given"},
			[]string{"evidence signature not checked"}},
		{"JSON", append(ok, "--ak", akPEM, "--json"), release, 0,
			[]string{`"ok": true`, `"signature_checked": true`, `"got": "` + nonce + `"`, "the verifier's nonce: compared with --nonce"}, nil},
		{"TPM2B_PUBLIC AK, serialized PCRs", []string{"--evidence", attest, "--pcrs", serialized, "--signature", sig, "--nonce", nonce, "--ak", akPub}, release, 0, []string{"verifies with " + akPub + " (TPM2B_PUBLIC, restricted signing key)", "MATCH"}, nil},
		{"no AK", []string{"--evidence", attest, "--pcrs", pcrs}, release, 0,
			[]string{"MATCH", "not vouched for: the quote's signature (by the TPM's attestation key) is not checked", "evidence signature not checked"}, nil},
		{"PCR 4 of another release", append(ok, "--ak", akPEM), release4, 1,
			[]string{"MISMATCH against tpm", "PCR 4 differs: it holds the boot applications' Authenticode digests", "tpm_pcr4", "DIFFERS: published " + fmt.Sprint(m4.Values["pcr4"])},
			[]string{"PCR 11 differs", "PCR 7 differs", "PCR 9 differs"}},
		{"wrong AK", append(ok, "--ak", wrongAK), release, 1,
			[]string{"signature: FAILED with " + wrongAK, "the quote's signature does not verify with " + wrongAK}, []string{"\nMATCH:"}},
		{"wrong nonce", []string{"--evidence", attest, "--pcrs", pcrs, "--signature", sig, "--ak", akPEM, "--nonce", otherNonce}, release, 1,
			[]string{"the quote's nonce (extra_data) is " + nonce + ", not the verifier's " + otherNonce}, []string{"\nMATCH:"}},
		{"PCR 9 value altered", []string{"--evidence", attest, "--pcrs", pcrsChanged, "--signature", sig, "--ak", akPEM}, release, 1,
			[]string{"they are not the values the TPM quoted"}, []string{"\nMATCH:"}},
		{"signature without AK", []string{"--evidence", attest, "--pcrs", pcrs, "--signature", sig}, release, 2,
			[]string{"needs both --signature"}, nil},
		{"AK that is no key", append(ok, "--ak", attest), release, 2, []string{"--ak " + attest}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			args := append(append(append([]string{"check"}, key...), c.args...), c.target)
			o, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code {
				t.Errorf("cocobuild %s: exit %d, want %d\n%s", strings.Join(args, " "), code, c.code, o)
			}
			for _, w := range c.want {
				if !strings.Contains(string(o), w) {
					t.Errorf("output lacks %q:\n%s", w, o)
				}
			}
			for _, w := range c.unwanted {
				if strings.Contains(string(o), w) {
					t.Errorf("output has %q:\n%s", w, o)
				}
			}
		})
	}
}
