package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

func TestInspectCpio(t *testing.T) {
	cpioTool := testenv.Tool(t, "cpio", "cpio")
	plain := testenv.ReadVector(t, "inputs/tiny-initrd.cpio")
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	files := map[string][]byte{"plain.cpio": plain, "initrd.cpio.gz": gz.Bytes()}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// What GNU cpio extracts is what inspect must describe.
	extract := filepath.Join(dir, "x")
	os.Mkdir(extract, 0o755)
	cmd := exec.Command(cpioTool, "-i", "-d", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = extract, bytes.NewReader(plain)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}

	var reports []inspectReport
	for _, name := range []string{"plain.cpio", "initrd.cpio.gz"} {
		code, stdout, stderr := runCLI(t, "inspect", "--json", filepath.Join(dir, name))
		if code != 0 {
			t.Fatalf("inspect --json %s: exit %d: %s", name, code, stderr)
		}
		var rep inspectReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("inspect --json output: %v\n%s", err, stdout)
		}
		sum := sha256.Sum256(files[name])
		if rep.Type != "initramfs" || rep.SHA256 != hex.EncodeToString(sum[:]) || rep.Size != int64(len(files[name])) {
			t.Errorf("%s: type %q sha256 %s size %d, want initramfs %x %d", name, rep.Type, rep.SHA256, rep.Size, sum, len(files[name]))
		}
		reports = append(reports, rep)
	}
	if diff := cmp.Diff(reports[0].Cpio.Entries, reports[1].Cpio.Entries); diff != "" {
		t.Errorf("entries of the plain and gzip archives differ (-plain +gzip):\n%s", diff)
	}
	if got := reports[1].Cpio.Segments; !cmp.Equal(got, []string{"gzip"}) {
		t.Errorf("segments %v, want [gzip]", got)
	}
	files0 := 0
	for _, e := range reports[0].Cpio.Entries {
		if e.Type != "file" {
			continue
		}
		files0++
		b, err := os.ReadFile(filepath.Join(extract, e.Name))
		if err != nil {
			t.Fatalf("%s: listed by inspect, not extracted by cpio: %v", e.Name, err)
		}
		sum := sha256.Sum256(b)
		if e.SHA256 != hex.EncodeToString(sum[:]) || e.Size != uint64(len(b)) {
			t.Errorf("%s: inspect says sha256 %s size %d; cpio extracted %x, %d bytes", e.Name, e.SHA256, e.Size, sum, len(b))
		}
	}
	if files0 == 0 {
		t.Error("inspect found no regular file in the vector archive")
	}

	code, stdout, _ := runCLI(t, "inspect", filepath.Join(dir, "initrd.cpio.gz"))
	if code != 0 || !strings.Contains(stdout, "initramfs, ") || !strings.Contains(stdout, "archives: gzip") {
		t.Errorf("inspect text: exit %d:\n%s", code, stdout)
	}
	for _, e := range reports[0].Cpio.Entries {
		if e.SHA256 != "" && !strings.Contains(stdout, e.SHA256+" "+e.Name) {
			t.Errorf("inspect text lacks %q:\n%s", e.SHA256+" "+e.Name, stdout)
		}
	}
}

func TestInspectBzImage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vmlinuz")
	if err := os.WriteFile(p, testenv.FakeBzImage("6.6.6-test", 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "inspect", "--json", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep inspectReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Type != "bzimage" || rep.Kernel == nil || rep.Kernel.Release != "6.6.6-test" || rep.Kernel.BootProtocol != "2.15" || !rep.Kernel.PE {
		t.Errorf("inspect --json of a bzImage: %s", stdout)
	}
	code, stdout, _ = runCLI(t, "inspect", p)
	if code != 0 || !strings.Contains(stdout, "release        6.6.6-test") {
		t.Errorf("inspect text of a bzImage: exit %d:\n%s", code, stdout)
	}
}

func TestInspectErrors(t *testing.T) {
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("neither cpio nor kernel"), 0o644)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"inspect"}, 2, "one FILE"},
		{[]string{"inspect", "a", "b"}, 2, "one FILE"},
		{[]string{"inspect", filepath.Join(t.TempDir(), "missing")}, 2, "no such file"}, // FILE names no file: a wrong argument
		{[]string{"inspect", junk}, 1, "neither an initramfs"},
	}
	for _, tc := range tests {
		code, _, stderr := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// TestInspectSignedKernel inspects Debian's signed cloud kernel (a real
// bzImage with an EFI stub): the PE sections must be those objdump reads,
// and the Authenticode SHA-256 the one osslsigncode computes, in the JSON
// and in the text.
func TestInspectSignedKernel(t *testing.T) {
	osslsigncode := testenv.Tool(t, "osslsigncode", "osslsigncode")
	objdump := testenv.Tool(t, "objdump", "binutils")
	p := testenv.VectorFile(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64")

	// osslsigncode verify fails on the chain (Debian's CA is not trusted
	// here) but prints the digest it computed.
	out, _ := exec.Command(osslsigncode, "verify", "-in", p).CombinedOutput()
	m := regexp.MustCompile(`Calculated message digest\s*:\s*([0-9A-Fa-f]{64})`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("osslsigncode verify printed no calculated SHA-256 digest:\n%s", out)
	}
	wantSHA256 := strings.ToLower(string(m[1]))
	// objdump -h: name, size (of the raw data), VMA (image base 0 + RVA), LMA, file offset.
	out, err := exec.Command(objdump, "-h", p).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump -h: %v\n%s", err, out)
	}
	var wantSections []string
	for _, f := range regexp.MustCompile(`(?m)^\s+\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s`).FindAllStringSubmatch(string(out), -1) {
		size, _ := strconv.ParseUint(f[2], 16, 64)
		vma, _ := strconv.ParseUint(f[3], 16, 64)
		off, _ := strconv.ParseUint(f[4], 16, 64)
		wantSections = append(wantSections, fmt.Sprintf("%s vaddr %#x raw %#x+%#x", f[1], vma, off, size))
	}
	if len(wantSections) == 0 {
		t.Fatalf("no sections in objdump -h output:\n%s", out)
	}

	code, stdout, stderr := runCLI(t, "inspect", "--json", p)
	if code != 0 {
		t.Fatalf("inspect --json: exit %d: %s", code, stderr)
	}
	var rep inspectReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Kernel == nil {
		t.Fatalf("inspect --json: no kernel: %s", stdout)
	}
	var gotSections []string
	for _, s := range rep.Kernel.Sections {
		gotSections = append(gotSections, fmt.Sprintf("%s vaddr %#x raw %#x+%#x", s.Name, s.VirtualAddress, s.PointerToRawData, s.SizeOfRawData))
	}
	if diff := cmp.Diff(wantSections, gotSections); diff != "" {
		t.Errorf("PE sections (-objdump +inspect):\n%s", diff)
	}
	checks := []struct{ what, got, want string }{
		{"authenticode sha256", rep.Kernel.Authenticode["sha256"], wantSHA256},
		{"release", rep.Kernel.Release, "6.1.0-56-cloud-amd64"},
		{"signatures", fmt.Sprint(rep.Kernel.Signatures), "1"},
		{"efi stub", fmt.Sprint(rep.Kernel.PE), "true"},
		{"sha384 length", fmt.Sprint(len(rep.Kernel.Authenticode["sha384"])), "96"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("inspect --json: %s %s, want %s", c.what, c.got, c.want)
		}
	}

	code, stdout, stderr = runCLI(t, "inspect", p)
	if code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"sha256  " + wantSHA256, "sha384  " + rep.Kernel.Authenticode["sha384"], "Authenticode digests (1 signature)",
		".text     0x00005000", "EFI stub       yes"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect text lacks %q:\n%s", want, stdout)
		}
	}
}

// TestInspectFirmware: inspect reports what each firmware can vouch for, in
// text and --json (the facts of ../shared/vectors/README.md).
func TestInspectFirmware(t *testing.T) {
	tests := []struct {
		file                        string
		snp, tdxRTMRs, verifies, sb bool
		text                        []string
	}{
		{"debian-sid_OVMF.amdsev.fd", true, false, true, false, []string{
			"edk2 version        2026.08+ds-2",
			"  SNP_KERNEL_HASHES  GPA 0x810000, 0x1000 bytes",
			"SEV hashes table    GPA 0x810c00, 0x400 bytes",
			"checks direct boot  yes: QemuKernelLoaderFsDxe carries",
			"measures into RTMRs no: no TdTcg2Dxe",
			"vouches for         SNP direct boot yes, SEV/SEV-ES direct boot yes, TDX RTMRs no"}},
		{"debian-sid_OVMF.fd", false, true, false, false, []string{
			"SEV hashes table    GPA 0x810c00, 0x400 bytes",
			"checks direct boot  no: QemuKernelLoaderFsDxe lacks",
			"measures into RTMRs yes: module TdTcg2Dxe",
			"Secure Boot         off, nothing enrolled"}},
		{"debian-sid_OVMF.inteltdx.ms.fd", false, true, false, true, []string{
			"Secure Boot         on, PK, KEK, db, dbx enrolled",
			"  db   CN=Microsoft Corporation UEFI CA 2011,",
			"  dbx  443 SHA-256 hashes"}},
		{"debian12_OVMF.fd", false, false, false, false, []string{
			"edk2 version        not recorded",
			"SEV hashes table    none",
			"measures into RTMRs no"}},
		{"debian12_OVMF_CODE_4M.fd", false, false, false, false, []string{
			"SEV metadata        none", "TDX metadata        none",
			"Secure Boot         the image has no variable store"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			p := testenv.VectorFile(t, "inputs/"+tc.file)
			code, stdout, stderr := runCLI(t, "inspect", "--json", p)
			if code != 0 {
				t.Fatalf("inspect --json: exit %d: %s", code, stderr)
			}
			var rep inspectReport
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Type != "firmware" || rep.Firmware == nil {
				t.Fatalf("inspect --json: type %q, want firmware", rep.Type)
			}
			fw := rep.Firmware
			got := fmt.Sprintf("snp %v tdx %v verifies %v secure boot %v", fw.Vouches.SNPDirectBoot, fw.Vouches.TDXRTMRs, fw.VerifiesDirectBoot, fw.SecureBoot.Enabled)
			want := fmt.Sprintf("snp %v tdx %v verifies %v secure boot %v", tc.snp, tc.tdxRTMRs, tc.verifies, tc.sb)
			if got != want {
				t.Errorf("inspect --json: got %s, want %s", got, want)
			}
			code, stdout, stderr = runCLI(t, "inspect", p)
			if code != 0 {
				t.Fatalf("inspect: exit %d: %s", code, stderr)
			}
			if !strings.Contains(stdout, ": firmware, ") {
				t.Errorf("inspect text does not say firmware:\n%s", stdout)
			}
			for _, w := range tc.text {
				if !strings.Contains(stdout, w) {
					t.Errorf("inspect text lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
	code, _, stderr := runCLI(t, "inspect", testenv.VectorFile(t, "inputs/cca-fw.bin"))
	if code != exitFailure || !strings.Contains(stderr, "nor a firmware image (not a UEFI firmware image") {
		t.Errorf("inspect cca-fw.bin: exit %d, %q; want exit %d saying it is not a firmware image", code, stderr, exitFailure)
	}
}
