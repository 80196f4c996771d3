package uki_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
)

// TestSignedUKIWithSBAT builds a uki block with the recipe's own db key
// and SBAT lines. Oracles: sbverify --cert accepts the image with the db
// certificate (and not another); objcopy reads the .sbat section: the
// stub's lines, then the recipe's; objdump lists one .sbat. A rebuild in
// another cache gives the same bytes.
func TestSignedUKIWithSBAT(t *testing.T) {
	stub := need(t, stubPath, "systemd-boot-efi")
	sbverify := testenv.Tool(t, "sbverify", "sbsigntool")
	objcopy := testenv.Tool(t, "objcopy", "binutils")
	objdump := testenv.Tool(t, "objdump", "binutils")
	dir := t.TempDir()
	cert, key := testDBKey(t, "recipe db")
	other, _ := testDBKey(t, "other db")
	writePEM(t, filepath.Join(dir, "db.crt"), "CERTIFICATE", cert.Raw)
	writePEM(t, filepath.Join(dir, "other.crt"), "CERTIFICATE", other.Raw)
	writePEM(t, filepath.Join(dir, "db.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	stubB, err := os.ReadFile(stub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "stub"), stubB, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "linux"), testenv.FakeBzImage("6.12.0-uki", 100000), 0o644); err != nil {
		t.Fatal(err)
	}
	var inputs strings.Builder
	for _, name := range []string{"stub", "linux", "db.crt", "db.key"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&inputs, "input %q {\n  file   = %q\n  sha256 = %q\n}\n\n", strings.ReplaceAll(name, ".", "_"), filepath.Join(dir, name), sha(b))
	}
	src := "recipe {\n  name = \"uki\"\n}\n\n" + inputs.String() + `
uki "guest" {
  stub    = input.stub
  kernel  = input.linux
  cmdline = "console=ttyS0"
  osrel   = "ID=cocobuild\n"
  sbat    = "cocobuild.guest,1,cocobuild,guest,1,https://github.com/cocobuild/cocobuild\n"
  db_key  = input.db_key
  db_cert = input.db_crt
}
`
	rdir := filepath.Join(dir, "recipe")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rdir, "r.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var imgs [][]byte
	for i := range 2 {
		out := filepath.Join(dir, fmt.Sprint("out", i))
		if _, err := testkinds.Load(t, rdir, filepath.Join(dir, fmt.Sprint("cache", i)), input.Options{}).Build(context.Background(), out, 2, nil); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, "uki", "guest", "uki.efi"))
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, b)
	}
	if !bytes.Equal(imgs[0], imgs[1]) {
		t.Error("two builds gave different images")
	}
	img := filepath.Join(dir, "out0", "uki", "guest", "uki.efi")
	if o, err := exec.Command(sbverify, "--cert", filepath.Join(dir, "db.crt"), img).CombinedOutput(); err != nil || !strings.Contains(string(o), "Signature verification OK") {
		t.Errorf("sbverify --cert db.crt: %v\n%s", err, o)
	}
	if o, err := exec.Command(sbverify, "--cert", filepath.Join(dir, "other.crt"), img).CombinedOutput(); err == nil {
		t.Errorf("sbverify accepted another certificate:\n%s", o)
	}
	p := filepath.Join(dir, "sbat")
	if o, err := exec.Command(objcopy, "-O", "binary", "--only-section=.sbat", img, p).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, o)
	}
	got, _ := os.ReadFile(p)
	want := "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n" + "systemd,1,The systemd Developers,systemd,252,https://systemd.io/\n" +
		"systemd.debian,1,Debian GNU/Linux,systemd,252.39-1~deb12u2,https://bugs.debian.org/\n" +
		"cocobuild.guest,1,cocobuild,guest,1,https://github.com/cocobuild/cocobuild\n"
	if string(got) != want {
		t.Errorf(".sbat = %q, want %q", got, want)
	}
	o, err := exec.Command(objdump, "-h", img).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump -h: %v\n%s", err, o)
	}
	if n := strings.Count(string(o), " .sbat "); n != 1 {
		t.Errorf("objdump -h lists %d .sbat sections, want 1:\n%s", n, o)
	}
	for _, s := range []string{".text", ".sdmagic", ".osrel", ".cmdline", ".linux"} {
		if !strings.Contains(string(o), " "+s+" ") {
			t.Errorf("objdump -h lists no %s", s)
		}
	}
}
