package uki_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/measure/pe"
	"github.com/cocobuild/cocobuild/uki"
)

// testDBKey is a self-signed RSA-2048 db certificate and its key.
func testDBKey(t *testing.T, cn string) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x5eedbeef), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSignVerifiesWithSbverify: a UKI of Debian's stub signed by Sign
// verifies with sbsigntool's sbverify against the db certificate, and not
// against another; its Authenticode digest is the unsigned image's (padded
// to 8 bytes) and the one sbsign signs; signing twice gives the same bytes.
func TestSignVerifiesWithSbverify(t *testing.T) {
	sbverify := testenv.Tool(t, "sbverify", "sbsigntool")
	sbsign := testenv.Tool(t, "sbsign", "sbsigntool")
	stub, err := os.ReadFile(need(t, stubPath, "systemd-boot-efi"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := uki.Assemble(stub, []uki.Section{{Name: ".osrel", Data: []byte("ID=test\n")}, {Name: ".cmdline", Data: []byte("console=ttyS0")},
		{Name: ".linux", Data: bytes.Repeat([]byte("kernel"), 1000)}})
	if err != nil {
		t.Fatal(err)
	}
	cert, key := testDBKey(t, "cocobuild test db")
	other, _ := testDBKey(t, "another db")
	signed, err := uki.Sign(img, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	again, err := uki.Sign(img, cert, key)
	if err != nil || !bytes.Equal(signed, again) {
		t.Errorf("signing twice: %d and %d bytes, equal %v (%v)", len(signed), len(again), bytes.Equal(signed, again), err)
	}
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	writePEM(t, p("db.crt"), "CERTIFICATE", cert.Raw)
	writePEM(t, p("other.crt"), "CERTIFICATE", other.Raw)
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, p("db.key"), "PRIVATE KEY", kd)
	for n, b := range map[string][]byte{"uki.efi": img, "signed.efi": signed} {
		if err := os.WriteFile(p(n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(sbverify, "--cert", p("db.crt"), p("signed.efi")).CombinedOutput(); err != nil || !strings.Contains(string(out), "Signature verification OK") {
		t.Errorf("sbverify --cert db.crt: %v\n%s", err, out)
	}
	if out, err := exec.Command(sbverify, "--cert", p("other.crt"), p("signed.efi")).CombinedOutput(); err == nil {
		t.Errorf("sbverify accepted the image with another certificate:\n%s", out)
	}
	// sbsign, the reference signer, signs the same digest.
	if out, err := exec.Command(sbsign, "--key", p("db.key"), "--cert", p("db.crt"), "--output", p("sbsign.efi"), p("uki.efi")).CombinedOutput(); err != nil {
		t.Fatalf("sbsign: %v\n%s", err, out)
	}
	ref, err := os.ReadFile(p("sbsign.efi"))
	if err != nil {
		t.Fatal(err)
	}
	padded := append(bytes.Clone(img), make([]byte, (8-len(img)%8)%8)...)
	want, err := pe.Authenticode(padded, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	for n, b := range map[string][]byte{"ours": signed, "sbsign's": ref} {
		got, err := pe.Authenticode(b, crypto.SHA256)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s signed image: Authenticode %x (%v), want the unsigned image's %x", n, got, err, want)
		}
	}
	if !bytes.Equal(signed[:len(padded)], ref[:len(padded)]) {
		t.Log("the image before the certificate table differs from sbsign's (data directory or checksum)")
	}
	if bytes.Equal(signed, ref) {
		t.Log("byte-identical to sbsign's")
	}
	if _, err := uki.Sign(signed, cert, key); err == nil {
		t.Error("a signed image was signed again")
	}
	if _, err := uki.Sign(img, other, key); err == nil {
		t.Error("signed with a key that is not the certificate's")
	}
}
