package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	model "github.com/cocobuild/cocobuild/measure/sgx"
	"github.com/cocobuild/cocobuild/measure/sgx/sgxtest"
)

// sgxKey is an RSA-3072 test key of exponent 3.
const sgxKey = "../../measure/sgx/testdata/key3.pem"

func runSGX(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"measure", "sgx"}, args...), strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

type sgxJSON struct {
	MREnclave string `json:"mrenclave"`
	MRSigner  string `json:"mrsigner"`
	Enclave   *struct {
		Pages    uint64          `json:"pages"`
		PageList *model.PageList `json:"page_list"`
	} `json:"enclave"`
	SigStruct *struct {
		EnclaveHash string `json:"enclave_hash"`
		MRSigner    string `json:"mrsigner"`
		SignatureOK bool   `json:"signature_ok"`
		ISVSVN      uint16 `json:"isvsvn"`
		Attributes  string `json:"attributes"`
	} `json:"sigstruct"`
}

func runSGXJSON(t *testing.T, args ...string) sgxJSON {
	t.Helper()
	code, out, errOut := runSGX(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("measure sgx %v: exit %d, stderr:\n%s", args, code, errOut)
	}
	var j sgxJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("measure sgx %v: output is not JSON: %v\n%s", args, err, out)
	}
	return j
}

// TestMeasureSGXELFAndPages checks that the command measures a
// selftest-layout ELF as the model does, and that the page list --json
// prints for it, given the ELF's bytes, measures the same.
func TestMeasureSGXELFAndPages(t *testing.T) {
	dir := t.TempDir()
	img := sgxtest.SelftestLike()
	elfPath := filepath.Join(dir, "encl.elf")
	if err := os.WriteFile(elfPath, img, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := model.SelftestLayout(img, 0x3000)
	if err != nil {
		t.Fatal(err)
	}
	mr, err := l.MREnclave()
	if err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(mr[:])

	j := runSGXJSON(t, "--elf", elfPath, "--heap", "12KiB")
	if j.MREnclave != want || j.Enclave == nil || j.Enclave.Pages != 12 {
		t.Fatalf("measure sgx --elf --heap 12KiB: mrenclave %s, enclave %+v; want %s and 12 pages", j.MREnclave, j.Enclave, want)
	}
	if code, out, errOut := runSGX(t, "--elf", elfPath, "--heap", "0x3000"); code != 0 || out != "MRENCLAVE: "+want+"\n" {
		t.Errorf("measure sgx --heap 0x3000: exit %d, stdout %q, stderr %q; want MRENCLAVE: %s", code, out, errOut, want)
	}

	pl := j.Enclave.PageList
	for i := range pl.Runs {
		if pl.Runs[i].Measure {
			pl.Runs[i].File = "encl.elf"
			pl.Runs[i].FileOffset = 0x1000 + pl.Runs[i].Offset
		}
	}
	doc, err := json.Marshal(pl)
	if err != nil {
		t.Fatal(err)
	}
	pages := filepath.Join(dir, "pages.json")
	if err := os.WriteFile(pages, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := runSGXJSON(t, "--pages", pages); got.MREnclave != want {
		t.Errorf("measure sgx --pages %s: mrenclave %s, want the ELF's %s", doc, got.MREnclave, want)
	}
}

// TestMeasureSGXSignAndCheck signs a SIGSTRUCT with --sign and checks it
// with --sigstruct: the right enclave passes, another heap size and a
// changed byte fail.
func TestMeasureSGXSignAndCheck(t *testing.T) {
	dir := t.TempDir()
	elfPath := filepath.Join(dir, "encl.elf")
	if err := os.WriteFile(elfPath, sgxtest.SelftestLike(), 0o644); err != nil {
		t.Fatal(err)
	}
	ss := filepath.Join(dir, "encl.sigstruct")
	signed := runSGXJSON(t, "--elf", elfPath, "--key", sgxKey, "--sign", ss, "--isv-svn", "3", "--attributes", "0x6")
	if signed.MRSigner == "" || signed.SigStruct == nil || signed.SigStruct.EnclaveHash != signed.MREnclave ||
		signed.SigStruct.ISVSVN != 3 || signed.SigStruct.Attributes != "0x6" {
		t.Fatalf("measure sgx --sign: %+v %+v", signed, signed.SigStruct)
	}

	checked := runSGXJSON(t, "--elf", elfPath, "--sigstruct", ss, "--key", sgxKey)
	if checked.MREnclave != signed.MREnclave || checked.MRSigner != signed.MRSigner || !checked.SigStruct.SignatureOK {
		t.Errorf("measure sgx --sigstruct: %+v, want mrenclave %s, mrsigner %s", checked, signed.MREnclave, signed.MRSigner)
	}
	alone := runSGXJSON(t, "--sigstruct", ss)
	if alone.MREnclave != signed.MREnclave || alone.MRSigner != signed.MRSigner {
		t.Errorf("measure sgx --sigstruct alone: %+v", alone)
	}

	// MRSIGNER from the public key alone.
	b, err := os.ReadFile(sgxKey)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	priv, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := runSGXJSON(t, "--elf", elfPath, "--key", pub); got.MRSigner != signed.MRSigner {
		t.Errorf("MRSIGNER from the public key = %s, from the private key %s", got.MRSigner, signed.MRSigner)
	}

	raw, err := os.ReadFile(ss)
	if err != nil {
		t.Fatal(err)
	}
	raw[1026] ^= 1 // ISVSVN
	tampered := filepath.Join(dir, "tampered.sigstruct")
	if err := os.WriteFile(tampered, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--elf", elfPath, "--heap", "8KiB", "--sigstruct", ss}, "signs another enclave"},
		{[]string{"--elf", elfPath, "--sigstruct", tampered}, "does not verify"},
		{[]string{"--elf", elfPath, "--key", pub, "--sign", filepath.Join(dir, "x")}, "needs a private key"},
	} {
		code, _, errOut := runSGX(t, tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("measure sgx %v: exit %d, stderr %q; want a failure with %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestMeasureSGXUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "give the enclave"},
		{[]string{"--elf", "a", "--pages", "b"}, 2, "alternatives"},
		{[]string{"--pages", "b", "--heap", "4KiB"}, 2, "--heap is for --elf"},
		{[]string{"--elf", "a", "--sign", "out"}, 2, "--sign needs"},
		{[]string{"--elf", "a", "--xfrm", "7"}, 2, "give --sign"},
		{[]string{"--elf", "/nonexistent/encl.elf"}, 2, "--elf"},
		{[]string{"--elf", "a", "--heap", "lots"}, 2, "--heap"},
		{[]string{"--elf", sgxKey}, 1, "selftest's layout"},
	} {
		code, _, errOut := runSGX(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("measure sgx %v: exit %d, stderr %q; want exit %d with %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	code, out, _ := runSGX(t, "--help")
	if code != 0 || !strings.Contains(out, "cocobuild measure sgx --elf test_encl.elf") || !strings.Contains(out, "Occlum") {
		t.Errorf("measure sgx --help: exit %d, no example or no word of what is not covered:\n%s", code, out)
	}
}
