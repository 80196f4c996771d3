package uki_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

const stubPath = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// need returns the path of a file a Debian package installs, failing in
// CI and skipping elsewhere when it is missing.
func need(t *testing.T, path, pkg string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if testenv.InCI() {
			t.Fatalf("%s not found: apt-get install %s", path, pkg)
		}
		t.Skipf("%s not found: apt-get install %s", path, pkg)
	}
	return path
}

// TestUKIOnESPMeasuredAsSystemdMeasure builds a UKI from Debian 12's stub,
// puts it on a disk's ESP and measures its PCR 11. Oracles: objdump and
// objcopy (binutils) read the sections, systemd-measure computes PCR 11
// from what objcopy extracted, sbverify lists the image, mtools reads
// \EFI\BOOT\BOOTX64.EFI back from the disk.
func TestUKIOnESPMeasuredAsSystemdMeasure(t *testing.T) {
	stub := need(t, stubPath, "systemd-boot-efi")
	measure := need(t, "/usr/lib/systemd/systemd-measure", "systemd")
	objcopy := testenv.Tool(t, "objcopy", "binutils")
	sbverify := testenv.Tool(t, "sbverify", "sbsigntool")
	mcopy := testenv.Tool(t, "mcopy", "mtools")
	dir := t.TempDir()
	files := map[string][]byte{
		"stub":   nil,
		"linux":  testenv.FakeBzImage("6.12.0-uki", 300000),
		"initrd": bytes.Repeat([]byte("initrd "), 20000),
		"fw":     testenv.ReadVector(t, "inputs/debian12_OVMF.fd"),
	}
	var err error
	if files["stub"], err = os.ReadFile(stub); err != nil {
		t.Fatal(err)
	}
	var inputs strings.Builder
	for _, name := range []string{"stub", "linux", "initrd", "fw"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&inputs, "input %q {\n  file   = %q\n  sha256 = %q\n}\n\n", name, p, sha(files[name]))
	}
	src := "recipe {\n  name = \"uki\"\n}\n\n" + inputs.String() + `
uki "guest" {
  stub    = input.stub
  kernel  = input.linux
  initrd  = input.initrd
  cmdline = ["console=ttyS0", "panic=-1"]
  osrel   = "ID=cocobuild\nVERSION_ID=1\n"
  uname   = "6.12.0-uki"
}

disk "boot" {
  partition "esp" {
    size  = "40MiB"
    files = { "/EFI/BOOT/BOOTX64.EFI" = uki.guest }
  }
}

measure "tpm" {
  firmware = input.fw
  uki      = uki.guest
}
`
	rdir := filepath.Join(dir, "recipe")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rdir, "r.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	res, err := testkinds.Load(t, rdir, filepath.Join(dir, "cache"), input.Options{}).Build(context.Background(), out, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(out, "uki", "guest", "uki.efi")

	// systemd-measure on the sections objcopy extracts: Debian 12's stub
	// (252) measures .linux, .osrel, .cmdline and .initrd, not .uname.
	args := []string{"calculate", "--bank=sha256", "--phase="}
	for _, s := range []string{"linux", "osrel", "cmdline", "initrd"} {
		p := filepath.Join(dir, "sec-"+s)
		if o, err := exec.Command(objcopy, "-O", "binary", "--only-section=."+s, img, p).CombinedOutput(); err != nil {
			t.Fatalf("objcopy .%s: %v\n%s", s, err, o)
		}
		args = append(args, "--"+s+"="+p)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sec-linux")); !bytes.Equal(b, files["linux"]) {
		t.Errorf("objcopy's .linux: %d bytes, not the kernel's %d", len(b), len(files["linux"]))
	}
	o, err := exec.Command(measure, args...).Output()
	if err != nil {
		t.Fatalf("systemd-measure %q: %v", args, err)
	}
	want := strings.TrimPrefix(strings.TrimSpace(string(o)), "11:sha256=")
	var got string
	for _, m := range res.Manifest.Measurements {
		if m.TEE == "tpm" {
			got = fmt.Sprint(m.Values["pcr11"])
			// The fake kernel is no PE image: PCR 4 (its Authenticode
			// digest) cannot be computed, and the entry says why.
			if _, ok := m.Values["pcr4"]; ok || m.Params["not_computable"] == nil {
				t.Errorf("values %v, params.not_computable %v: want no pcr4 and the reason", m.Values, m.Params["not_computable"])
			}
		}
	}
	if got != want {
		t.Errorf("measure tpm pcr11 = %s, want systemd-measure's on the UKI's sections %s", got, want)
	}

	if o, _ := exec.Command(sbverify, "--list", img).CombinedOutput(); !strings.Contains(string(o), "No signature table present") {
		t.Errorf("sbverify --list: %s, want an unsigned image it reads", o)
	}

	// \EFI\BOOT\BOOTX64.EFI on the ESP is the UKI.
	var first int64
	for _, a := range res.Manifest.Artifacts {
		if a.Kind == "disk" {
			b, _ := json.Marshal(a.Extra["partitions"])
			var parts []struct {
				Name     string `json:"name"`
				FirstLBA int64  `json:"first_lba"`
			}
			if err := json.Unmarshal(b, &parts); err != nil {
				t.Fatal(err)
			}
			for _, p := range parts {
				if p.Name == "esp" {
					first = p.FirstLBA
				}
			}
		}
	}
	if first == 0 {
		t.Fatalf("no esp partition in the manifest's disk artifact: %+v", res.Manifest.Artifacts)
	}
	back := filepath.Join(dir, "BOOTX64.EFI")
	raw := filepath.Join(out, "disk", "boot", "disk.raw")
	if o, err := exec.Command(mcopy, "-n", "-i", fmt.Sprintf("%s@@%d", raw, first*512), "::/EFI/BOOT/BOOTX64.EFI", back).CombinedOutput(); err != nil {
		t.Fatalf("mcopy: %v\n%s", err, o)
	}
	a, _ := os.ReadFile(back)
	b, _ := os.ReadFile(img)
	if !bytes.Equal(a, b) || len(a) == 0 {
		t.Errorf("the ESP's BOOTX64.EFI (%d bytes) is not the UKI (%d bytes)", len(a), len(b))
	}
}
