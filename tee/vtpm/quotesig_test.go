package vtpm

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/cocobuild/cocobuild/tee"
)

// TestQuoteSignatureSwtpm: quotes a real TPM (swtpm) signs with AKs that
// tpm2_createak makes (ECDSA P-256, RSASSA and RSAPSS RSA-2048 keys)
// verify with the AK as tpm2_createak -u writes it (TPM2B_PUBLIC) and as
// tpm2_readpublic -f pem writes it; they do not verify with another AK or
// after a byte of the quote changed; Check vouches for the signature and
// compares the nonce. The TPM (tpm2_verifysignature) verifies each
// signature, and tpm2_checkquote the ECDSA and RSASSA quotes.
func TestQuoteSignatureSwtpm(t *testing.T) {
	s := startSwtpm(t)
	s.run("tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub")
	for _, c := range []struct{ name, alg, scheme, want string }{
		{"ecc", "ecc", "ecdsa", "ECDSA SHA-256"},
		{"rsassa", "rsa", "rsassa", "RSASSA-PKCS1-v1_5 SHA-256"},
		{"rsapss", "rsa", "rsapss", "RSASSA-PSS SHA-256"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := c.name + "."
			s.run("tpm2_createak", "-C", "ek.ctx", "-c", p+"ak.ctx", "-G", c.alg, "-g", "sha256", "-s", c.scheme, "-u", p+"ak.pub")
			s.run("tpm2_readpublic", "-c", p+"ak.ctx", "-f", "pem", "-o", p+"ak.pem")
			s.run("tpm2_quote", "-c", p+"ak.ctx", "-l", "sha256:0,4,7", "-q", "abcdef01", "-g", "sha256", "--scheme", c.scheme, "-m", p+"q.msg", "-s", p+"q.sig", "-o", p+"pcrs.bin")
			// The oracles: the TPM verifies its signature
			// (tpm2_verifysignature), tpm2_checkquote the quote (5.4
			// verifies no RSAPSS: "Error validating signed message").
			s.run("tpm2_verifysignature", "-c", p+"ak.ctx", "-g", "sha256", "-m", p+"q.msg", "-s", p+"q.sig")
			if c.scheme != "rsapss" {
				s.run("tpm2_checkquote", "-u", p+"ak.pub", "-m", p+"q.msg", "-s", p+"q.sig", "-f", p+"pcrs.bin", "-g", "sha256", "-q", "abcdef01")
			}
			msg, sigb := s.read(p+"q.msg"), s.read(p+"q.sig")
			sig, err := ParseQuoteSignature(sigb)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"ak.pub", "ak.pem"} {
				ak, err := ParseAttestationKey(s.read(p + f))
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				got, err := VerifyQuoteSignature(ak, msg, sig)
				if err != nil || got != c.want {
					t.Errorf("%s: VerifyQuoteSignature = %q, %v; want %q", f, got, err, c.want)
				}
				bad := bytes.Clone(msg)
				bad[len(bad)-1] ^= 1
				if _, err := VerifyQuoteSignature(ak, bad, sig); err == nil {
					t.Errorf("%s: a changed quote verifies", f)
				}
			}
			ev, _, err := TEE{}.ParseEvidence(msg)
			if err != nil {
				t.Fatal(err)
			}
			entries := []tee.CheckEntry{{Name: "any", Values: map[string]string{}}}
			for _, n := range []struct {
				nonce []byte
				match string
			}{{[]byte{0xab, 0xcd, 0xef, 0x01}, ""}, {[]byte{0xab, 0xcd, 0xef, 0x02}, "not the verifier's abcdef02"}} {
				res, err := TEE{}.Check(context.Background(), ev, tee.CheckInput{Entries: entries, PCRValues: s.read(p + "pcrs.bin"),
					Quote: &tee.QuoteCheck{Signature: sigb, AK: s.read(p + "ak.pem"), AKName: "ak.pem", Nonce: n.nonce}})
				if err != nil {
					t.Fatal(err)
				}
				if !res.SignatureChecked || len(res.Signature) != 1 || !strings.Contains(res.Signature[0], c.want+" signature verifies with ak.pem") {
					t.Errorf("nonce %x: signature checked %v, %q", n.nonce, res.SignatureChecked, res.Signature)
				}
				if n.match != "" && (len(res.Reasons) != 1 || !strings.Contains(res.Reasons[0], n.match)) {
					t.Errorf("nonce %x: reasons %q, want one containing %q", n.nonce, res.Reasons, n.match)
				}
				if n.match == "" && len(res.Reasons) == 1 && strings.Contains(res.Reasons[0], "nonce") {
					t.Errorf("nonce %x: reasons %q", n.nonce, res.Reasons)
				}
			}
		})
	}
	// Another AK: the ECC quote does not verify with the RSA key, nor
	// with another ECC key; Check says so and vouches for nothing.
	msg, sigb := s.read("ecc.q.msg"), s.read("ecc.q.sig")
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&other.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ev, _, _ := TEE{}.ParseEvidence(msg)
	for name, ak := range map[string][]byte{"rsa": s.read("rsassa.ak.pub"), "other ecc": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})} {
		res, err := TEE{}.Check(context.Background(), ev, tee.CheckInput{Entries: []tee.CheckEntry{{Name: "any"}}, PCRValues: s.read("ecc.pcrs.bin"),
			Quote: &tee.QuoteCheck{Signature: sigb, AK: ak}})
		if err != nil {
			t.Fatal(err)
		}
		if res.SignatureChecked || res.Match || len(res.Reasons) != 1 || !strings.Contains(res.Reasons[0], "signature does not verify") {
			t.Errorf("%s AK: checked %v, match %v, reasons %q; want the signature refused", name, res.SignatureChecked, res.Match, res.Reasons)
		}
	}
	// A key that is not a restricted signing key (the owner hierarchy's
	// storage key) is no AK; a signature without an AK is a usage error.
	s.run("tpm2_createprimary", "-C", "o", "-G", "ecc", "-c", "srk.ctx")
	s.run("tpm2_readpublic", "-c", "srk.ctx", "-o", "srk.pub")
	if _, err := ParseAttestationKey(s.read("srk.pub")); err == nil || !strings.Contains(err.Error(), "not a restricted signing key") {
		t.Errorf("ParseAttestationKey(storage key) = %v, want refused", err)
	}
	if _, err := (TEE{}).Check(context.Background(), ev, tee.CheckInput{Entries: []tee.CheckEntry{{Name: "any"}}, PCRValues: s.read("ecc.pcrs.bin"),
		Quote: &tee.QuoteCheck{Signature: sigb}}); !errors.Is(err, tee.ErrUnreadable) {
		t.Errorf("a signature without an AK: %v, want unreadable", err)
	}
	// --verify-evidence without a signature and AK is refused.
	res, err := TEE{}.Check(context.Background(), ev, tee.CheckInput{Entries: []tee.CheckEntry{{Name: "any"}}, PCRValues: s.read("ecc.pcrs.bin"), Signature: &tee.SignatureCheck{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Match || len(res.Reasons) != 1 || !strings.Contains(res.Reasons[0], "needs --signature and --ak") {
		t.Errorf("--verify-evidence without an AK: match %v, reasons %q", res.Match, res.Reasons)
	}
}

// FuzzQuote: the quote, PCR values, attestation key and signature parsers
// return errors on any input, never panic.
func FuzzQuote(f *testing.F) {
	a := tpm2.TPMSAttest{Magic: tpm2.TPMGeneratedValue, Type: tpm2.TPMSTAttestQuote,
		ExtraData: tpm2.TPM2BData{Buffer: []byte{1, 2}},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: []byte{0x10, 0, 0}}}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: make([]byte, 32)}})}
	sig := tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
		Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: []byte{1}}, SignatureS: tpm2.TPM2BECCParameter{Buffer: []byte{2}}})}
	pub := tpm2.New2B(tpm2.TPMTPublic{Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{Restricted: true, SignEncrypt: true},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{CurveID: tpm2.TPMECCNistP256,
			Scheme: tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA, Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})}}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{X: tpm2.TPM2BECCParameter{Buffer: []byte{1}}, Y: tpm2.TPM2BECCParameter{Buffer: []byte{2}}})})
	f.Add(tpm2.Marshal(a), make([]byte, 32), tpm2.Marshal(pub), tpm2.Marshal(sig))
	f.Fuzz(func(t *testing.T, attest, pcrs, ak, sig []byte) {
		ev, ok, err := TEE{}.ParseEvidence(attest)
		if ok && err == nil {
			_, _ = ParsePCRValues(ev.(*Quote), pcrs)
		}
		key, err := ParseAttestationKey(ak)
		s, serr := ParseQuoteSignature(sig)
		if err == nil && serr == nil {
			_, _ = VerifyQuoteSignature(key, attest, s)
		}
	})
}
