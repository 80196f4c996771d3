package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// hostileInputs makes the inputs of issue 17 in a fresh directory: a FIFO
// (which blocks a reader forever), and sparse files just over each size
// limit and far over it (8 GiB), small on disk. /dev/zero is used as is.
func hostileInputs(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	in := map[string]string{"fifo": filepath.Join(dir, "fifo"), "zero": "/dev/zero"}
	if err := syscall.Mkfifo(in["fifo"], 0o644); err != nil {
		t.Fatal(err)
	}
	for name, size := range map[string]int64{
		"firmware-65MiB": 65 << 20, "firmware-8GiB": 8 << 30,
		"kernel-513MiB": 513 << 20, "initrd-3GiB": 3 << 30,
	} {
		in[name] = filepath.Join(dir, name)
		if err := os.WriteFile(in[name], nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(in[name], size); err != nil {
			t.Fatal(err)
		}
	}
	return in
}

// TestMeasureHostileInputs: a FIFO, /dev/zero and sparse files over the
// limits, given to every file flag of measure sev, measure sev id-block and
// measure tdx, fail at once (exit 2), name the flag and, for a size, the
// limit and the --limit that raises it, and write nothing.
func TestMeasureHostileInputs(t *testing.T) {
	vec := testenv.Vectors(t)
	in := hostileInputs(t)
	fw := filepath.Join(vec, "inputs/debian12_OVMF.fd")
	tdxFW := filepath.Join(vec, "inputs/debian-sid_OVMF.fd")
	kernel := filepath.Join(vec, "inputs/tiny-kernel.bin")
	snp := []string{"measure", "sev", "--mode", "snp", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--dump-vmsa"}
	acpiFIFO := t.TempDir()
	for _, name := range []string{"table-loader", "rsdp"} {
		if err := os.WriteFile(filepath.Join(acpiFIFO, name), []byte{0}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(acpiFIFO, "tables"), 0o644); err != nil {
		t.Fatal(err)
	}
	notRegular := []string{"is a named pipe, not a regular file", "is a device, not a regular file"}
	tests := []struct {
		name string
		args []string
		want []string // all of these, or (for notRegular) one of them
	}{
		{"sev ovmf fifo", append(snp, "--ovmf", in["fifo"]), []string{"--ovmf: ", in["fifo"], notRegular[0]}},
		{"sev ovmf /dev/zero", append(snp, "--ovmf", in["zero"]), []string{"--ovmf: /dev/zero", notRegular[1]}},
		{"sev ovmf 65MiB", append(snp, "--ovmf", in["firmware-65MiB"]), []string{"--ovmf: ", "65MiB is over the firmware limit of 64MiB", "--limit firmware=65MiB"}},
		{"sev ovmf 8GiB", append(snp, "--ovmf", in["firmware-8GiB"]), []string{"--ovmf: ", "8GiB is over the firmware limit of 64MiB", "--limit firmware=8GiB"}},
		{"sev ovmf-hash 8GiB", []string{"measure", "sev", "--mode", "snp:ovmf-hash", "--ovmf", in["firmware-8GiB"]}, []string{"--ovmf: ", "over the firmware limit", "--limit firmware=8GiB"}},
		{"sev kernel fifo", append(snp, "--ovmf", fw, "--kernel", in["fifo"]), []string{"--kernel: ", notRegular[0]}},
		{"sev kernel /dev/zero", append(snp, "--ovmf", fw, "--kernel", in["zero"]), []string{"--kernel: /dev/zero", notRegular[1]}},
		{"sev kernel 513MiB", append(snp, "--ovmf", fw, "--kernel", in["kernel-513MiB"]), []string{"--kernel: ", "513MiB is over the kernel limit of 512MiB", "--limit kernel=513MiB"}},
		{"sev initrd fifo", append(snp, "--ovmf", fw, "--kernel", kernel, "--initrd", in["fifo"]), []string{"--initrd: ", notRegular[0]}},
		{"sev initrd 3GiB", append(snp, "--ovmf", fw, "--kernel", kernel, "--initrd", in["initrd-3GiB"]), []string{"--initrd: ", "3GiB is over the initrd limit of 2GiB", "--limit initrd=3GiB"}},
		{"sev initrd 3GiB under a raised firmware limit", append(snp, "--limit", "firmware=128MiB", "--ovmf", fw, "--kernel", kernel, "--initrd", in["initrd-3GiB"]), []string{"--initrd: ", "over the initrd limit"}},
		{"sev lowered firmware limit", append(snp, "--limit", "firmware=1MiB", "--ovmf", fw), []string{"--ovmf: ", "2MiB is over the firmware limit of 1MiB", "--limit firmware=2MiB"}},
		{"id-block idkey fifo", []string{"measure", "sev", "id-block", "--measurement", strings.Repeat("00", 48), "--idkey", in["fifo"]}, []string{"--idkey: ", notRegular[0]}},
		{"id-block authorkey /dev/zero", []string{"measure", "sev", "id-block", "--measurement", strings.Repeat("00", 48), "--idkey", filepath.Join(testenv.ModuleRoot(t), "measure/sev/testdata/id_key_p384.pem"), "--authorkey", in["zero"]}, []string{"--authorkey: /dev/zero", notRegular[1]}},
		{"tdx firmware fifo", []string{"measure", "tdx", "--firmware", in["fifo"]}, []string{"--firmware: ", notRegular[0]}},
		{"tdx firmware /dev/zero", []string{"measure", "tdx", "--firmware", in["zero"]}, []string{"--firmware: /dev/zero", notRegular[1]}},
		{"tdx firmware 8GiB", []string{"measure", "tdx", "--firmware", in["firmware-8GiB"]}, []string{"--firmware: ", "8GiB is over the firmware limit of 64MiB", "--limit firmware=8GiB"}},
		{"tdx kernel 513MiB", []string{"measure", "tdx", "--firmware", tdxFW, "--kernel", in["kernel-513MiB"]}, []string{"--kernel: ", "over the kernel limit of 512MiB", "--limit kernel=513MiB"}},
		{"tdx kernel /dev/zero", []string{"measure", "tdx", "--firmware", tdxFW, "--kernel", in["zero"]}, []string{"--kernel: /dev/zero", notRegular[1]}},
		{"tdx initrd fifo", []string{"measure", "tdx", "--firmware", tdxFW, "--kernel", kernel, "--initrd", in["fifo"]}, []string{"--initrd: ", notRegular[0]}},
		{"tdx acpi table fifo", []string{"measure", "tdx", "--firmware", tdxFW, "--acpi-dir", acpiFIFO}, []string{"--acpi-dir: ", "tables is a named pipe", "the directory needs table-loader, rsdp and tables"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			t.Chdir(work) // --dump-vmsa would write here
			args := tc.args
			if args[1] == "tdx" {
				args = append(args, "--eventlog", filepath.Join(work, "ccel.bin"))
			}
			// A hostile input must be refused before it is read.
			var code int
			var stdout, stderr string
			testenv.Fast(t, time.Second, func() { code, stdout, stderr = runCLI(t, args...) })
			if code != exitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", code, exitUsage, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not say %q", stderr, w)
				}
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if ents, _ := os.ReadDir(work); len(ents) != 0 {
				t.Errorf("the command wrote %s into its directory, want nothing", ents[0].Name())
			}
		})
	}
}

// TestMeasureHugeFirmwareProcess runs cocobuild as a process on an 8 GiB
// sparse firmware, which crashed Go's allocator before, a 2 GiB one, which
// took 20 s and 2 GB to be rejected, and /dev/zero: each fails within 2 s
// and 100 MB of peak memory. A firmware of 48 MiB, under the limit, is
// measured, and its peak shows the RSS check can fail.
func TestMeasureHugeFirmwareProcess(t *testing.T) {
	in := hostileInputs(t)
	dir := t.TempDir()
	big2 := filepath.Join(dir, "firmware-2GiB")
	if err := os.WriteFile(big2, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big2, 2<<30); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"measure", "sev", "--mode", "sev", "--ovmf", in["firmware-8GiB"]},
		{"measure", "sev", "--mode", "sev", "--ovmf", big2},
		{"measure", "tdx", "--firmware", in["firmware-8GiB"]},
		{"measure", "sev", "--mode", "sev", "--ovmf", in["zero"]},
	} {
		t.Run(filepath.Base(args[len(args)-1])+"_"+args[1], func(t *testing.T) {
			rep := runMeasured(t, args...)
			stderr := rep.stderr
			if rep.code != exitUsage {
				t.Errorf("exit %d, want %d", rep.code, exitUsage)
			}
			if !rep.fast(2 * time.Second) {
				t.Errorf("took %v (%v CPU), want under 2s", rep.wall, rep.cpu)
			}
			if rep.maxRSSKiB > 100<<10 {
				t.Errorf("peak RSS %d KiB, want under 100 MB", rep.maxRSSKiB)
			}
			if !strings.Contains(stderr, "--ovmf") && !strings.Contains(stderr, "--firmware") {
				t.Errorf("stderr %q does not name the flag", stderr)
			}
		})
	}
	// The check sees a firmware that is read: 48 MiB of varied bytes
	// (which --allow-unknown-firmware hashes) peak above 48 MB.
	read := filepath.Join(dir, "firmware-48MiB")
	b := make([]byte, 48<<20)
	for i := range b {
		b[i] = byte(i>>12) ^ byte(i)
	}
	if err := os.WriteFile(read, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep := runMeasured(t, "measure", "sev", "--mode", "sev", "--allow-unknown-firmware", "--ovmf", read)
	if rep.code != 0 || rep.maxRSSKiB < 48<<10 {
		t.Errorf("a 48 MiB firmware: exit %d, peak RSS %d KiB (stderr %q); want exit 0 and at least 48 MiB: the RSS measurement does not see what the process reads", rep.code, rep.maxRSSKiB, rep.stderr)
	}
}

// TestMeasureDevNullIsEmpty: /dev/null reads as an empty file (the
// sev-snp-measure vectors pass it as kernel and initrd), the same as an
// empty regular file.
func TestMeasureDevNullIsEmpty(t *testing.T) {
	vec := testenv.Vectors(t)
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"measure", "sev", "--mode", "snp", "--ovmf", filepath.Join(vec, "inputs/ovmf_AmdSev_suffix.bin"), "--vcpus", "1", "--vcpu-type", "EPYC-v4"}
	out := map[string]string{}
	for _, f := range []string{"/dev/null", empty} {
		code, stdout, stderr := runCLI(t, append(base, "--kernel", f, "--initrd", f)...)
		if code != 0 {
			t.Fatalf("--kernel %s --initrd %s: exit %d, stderr %q", f, f, code, stderr)
		}
		out[f] = stdout
	}
	if out["/dev/null"] != out[empty] {
		t.Errorf("digest with /dev/null %q, with an empty file %q, want the same", out["/dev/null"], out[empty])
	}
}

// TestMeasureSEVVCPUConflicts: two ways of giving the vCPU signature are a
// usage error naming both, even when they agree; each alone measures.
func TestMeasureSEVVCPUConflicts(t *testing.T) {
	fw := testenv.VectorFile(t, "inputs/debian12_OVMF.fd")
	base := []string{"measure", "sev", "--mode", "snp", "--ovmf", fw, "--vcpus", "1"}
	fms := []string{"--vcpu-family", "25", "--vcpu-model", "17", "--vcpu-stepping", "0"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"type and sig", []string{"--vcpu-type", "EPYC-v4", "--vcpu-sig", "0xa10f10"}, "--vcpu-type EPYC-v4 and --vcpu-sig 0xa10f10 conflict"},
		{"type and sig that agree", []string{"--vcpu-type", "EPYC-Genoa", "--vcpu-sig", "0xa10f10"}, "--vcpu-type EPYC-Genoa and --vcpu-sig 0xa10f10 conflict"},
		{"sig 0 and type", []string{"--vcpu-sig", "0", "--vcpu-type", "EPYC-v4"}, "--vcpu-type EPYC-v4 and --vcpu-sig 0 conflict"},
		{"type and fms", append([]string{"--vcpu-type", "EPYC-v4"}, fms...), "--vcpu-type EPYC-v4 and --vcpu-family/--vcpu-model/--vcpu-stepping conflict"},
		{"sig and fms", append([]string{"--vcpu-sig", "0xa10f10"}, fms...), "--vcpu-sig 0xa10f10 and --vcpu-family/--vcpu-model/--vcpu-stepping conflict"},
		{"sig and partial fms", []string{"--vcpu-sig", "0xa10f10", "--vcpu-family", "25"}, "conflict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append(base, tc.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, stdout, stderr, exitUsage, tc.want)
			}
		})
	}
	// Each alone: the same Genoa digest three ways.
	digests := map[string]bool{}
	for _, alone := range [][]string{{"--vcpu-type", "EPYC-Genoa"}, {"--vcpu-sig", "0xa10f10"}, fms} {
		code, stdout, stderr := runCLI(t, append(base, alone...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", alone, code, stderr)
		}
		digests[stdout] = true
	}
	if len(digests) != 1 {
		t.Errorf("EPYC-Genoa, 0xa10f10 and 25/17/0 give %d digests, want 1: %v", len(digests), digests)
	}
}

// TestMeasureSEVVMSAGPA: --vmsa-gpa 0 is used as given, and --json reports
// the GPA the digest was computed with, default included.
func TestMeasureSEVVMSAGPA(t *testing.T) {
	fw := testenv.VectorFile(t, "inputs/debian12_OVMF.fd")
	base := []string{"--json", "measure", "sev", "--mode", "snp", "--ovmf", fw, "--vcpus", "1", "--vcpu-type", "EPYC-v4"}
	type out struct {
		Digest  string `json:"digest"`
		VMSAGPA string `json:"vmsa_gpa"`
		Variant string `json:"variant"`
	}
	get := func(extra ...string) out {
		t.Helper()
		code, stdout, stderr := runCLI(t, append(base, extra...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", extra, code, stderr)
		}
		var o out
		if err := json.Unmarshal([]byte(stdout), &o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	def, zero, kvm := get(), get("--vmsa-gpa", "0"), get("--vmsa-gpa", "0xFFFFFFFFF000")
	if def.VMSAGPA != "0xfffffffff000" || zero.VMSAGPA != "0x0" {
		t.Errorf("vmsa_gpa = %q without the flag and %q with --vmsa-gpa 0, want 0xfffffffff000 and 0x0", def.VMSAGPA, zero.VMSAGPA)
	}
	if zero.Digest == def.Digest {
		t.Errorf("--vmsa-gpa 0 gives the default GPA's digest %s", zero.Digest)
	}
	if kvm.Digest != def.Digest {
		t.Errorf("--vmsa-gpa 0xFFFFFFFFF000 gives %s, the default %s, want the same", kvm.Digest, def.Digest)
	}
	if !strings.Contains(zero.Variant, "VMSA GPA 0x0") {
		t.Errorf("variant %q does not say VMSA GPA 0x0", zero.Variant)
	}
	code, _, stderr := runCLI(t, "measure", "sev", "--mode", "seves", "--ovmf", fw, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--vmsa-gpa", "0")
	if code != exitUsage || !strings.Contains(stderr, "only matters in snp mode") {
		t.Errorf("seves with --vmsa-gpa 0: exit %d, stderr %q; want a usage error", code, stderr)
	}
}

// TestMeasureRepeatedFlags: a flag that takes one value, given twice, is a
// usage error naming both values, for every command; flags that collect
// values stay repeatable.
func TestMeasureRepeatedFlags(t *testing.T) {
	vec := testenv.Vectors(t)
	fw := filepath.Join(vec, "inputs/debian12_OVMF.fd")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"measure sev --mode", []string{"measure", "sev", "--mode", "snp", "--mode", "sev", "--ovmf", fw}, "--mode given twice (snp, then sev): give it once"},
		{"measure sev --mode same value", []string{"measure", "sev", "--mode", "sev", "--mode", "sev", "--ovmf", fw}, "--mode given twice (sev, then sev)"},
		{"measure sev --vcpus", []string{"measure", "sev", "--mode", "snp", "--vcpus", "2", "--vcpus=4", "--ovmf", fw}, "--vcpus given twice (2, then 4)"},
		{"measure sev --ovmf", []string{"measure", "sev", "--mode", "sev", "--ovmf", fw, "--ovmf", "other.fd"}, "--ovmf given twice"},
		{"measure sev -v contradicted", []string{"measure", "sev", "--mode", "sev", "--ovmf", fw, "-v", "--verbose=false"}, "--verbose given twice (true, then false)"},
		{"measure tdx --memory", []string{"measure", "tdx", "--firmware", fw, "--memory", "2G", "--memory", "4G"}, "--memory given twice (2G, then 4G): give it once"},
		{"measure tdx go-style", []string{"measure", "tdx", "-firmware", fw, "-page-order", "two-pass", "-page-order=single-pass"}, "--page-order given twice (two-pass, then single-pass)"},
		{"--limit NAME twice", []string{"measure", "sev", "--mode", "sev", "--ovmf", fw, "--limit", "kernel=1GiB", "--limit", "kernel=2GiB"}, "--limit kernel given twice (1GiB, then 2GiB)"},
		{"build -o", []string{"build", "-o", "a", "-o", "b", "recipe"}, "--out given twice (a, then b)"},
		{"inspect --json contradicted", []string{"--json", "inspect", "--json=false", fw}, "--json given twice (true, then false)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, exitUsage, tc.want)
			}
			if strings.Contains(stderr, "invalid argument") {
				t.Errorf("stderr %q calls the second value invalid: the repetition is the error", stderr)
			}
			if !strings.HasPrefix(tc.args[0], "--json") && stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
	// Repeatable flags stay repeatable: -var, --limit with other names, a
	// switch given twice.
	for _, args := range [][]string{
		{"measure", "sev", "--mode", "sev", "--ovmf", fw, "--limit", "kernel=1GiB", "--limit", "firmware=8MiB", "-v", "-v"},
		{"--json", "--json", "measure", "sev", "--mode", "sev", "--ovmf", fw},
	} {
		if code, _, stderr := runCLI(t, args...); code != 0 {
			t.Errorf("%v: exit %d, stderr %q; want success", args, code, stderr)
		}
	}
	// Wrapping the flags leaves --help as it was: zero defaults unshown.
	for _, c := range []string{"run", "build", "verity"} {
		if _, stdout, _ := runCLI(t, c, "--help"); strings.Contains(stdout, "(default 0") || strings.Contains(stdout, "(default false)") {
			t.Errorf("%s --help shows a zero default:\n%s", c, stdout)
		}
	}
	code, _, stderr := runCLI(t, "validate", "-var", "a=1", "-var", "b=2", filepath.Join(t.TempDir(), "none"))
	if strings.Contains(stderr, "given twice") || code == 0 {
		t.Errorf("validate -var a=1 -var b=2: exit %d, stderr %q; want -var repeatable (and the missing recipe reported)", code, stderr)
	}
}

// TestMeasureUnknownFirmware: bytes that are no firmware image are refused
// by every mode unless --allow-unknown-firmware says to hash them (sev and
// snp:ovmf-hash); measure tdx needs TDX metadata.
func TestMeasureUnknownFirmware(t *testing.T) {
	dir := t.TempDir()
	one := filepath.Join(dir, "one-byte.fd")
	if err := os.WriteFile(one, []byte{0x5a}, 0o644); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(dir, "random-page.fd")
	b := make([]byte, 4096)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	if err := os.WriteFile(page, b, 0o644); err != nil {
		t.Fatal(err)
	}
	allow := "--allow-unknown-firmware"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"sev one byte", []string{"measure", "sev", "--mode", "sev", "--ovmf", one}, "not a UEFI firmware image"},
		{"sev a kernel", []string{"measure", "sev", "--mode", "sev", "--ovmf", testenv.VectorFile(t, "inputs/tiny-kernel.bin")}, "not a UEFI firmware image"},
		{"ovmf-hash random page", []string{"measure", "sev", "--mode", "snp:ovmf-hash", "--ovmf", page}, "not a UEFI firmware image"},
		{"seves one byte", []string{"measure", "sev", "--mode", "seves", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", one}, "not a UEFI firmware image"},
		{"snp random page, allowed", []string{"measure", "sev", "--mode", "snp", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", page, allow}, "SEV-ES reset block"},
		{"tdx one byte", []string{"measure", "tdx", "--firmware", one}, "footer table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			if code != exitFailure || !strings.Contains(stderr, tc.want) || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, stdout, stderr, exitFailure, tc.want)
			}
			if !strings.Contains(strings.Join(tc.args, " "), allow) && strings.Contains(tc.want, "UEFI") && !strings.Contains(stderr, allow) {
				t.Errorf("stderr %q does not name %s", stderr, allow)
			}
		})
	}
	sum := sha256.Sum256([]byte{0x5a})
	code, stdout, stderr := runCLI(t, "measure", "sev", "--mode", "sev", "--ovmf", one, allow)
	if want := hex.EncodeToString(sum[:]) + "\n"; code != 0 || stdout != want {
		t.Errorf("sev %s one byte: exit %d, stdout %q, stderr %q; want %q (SHA-256 of the byte)", allow, code, stdout, stderr, want)
	}
	if code, stdout, stderr := runCLI(t, "measure", "sev", "--mode", "snp:ovmf-hash", "--ovmf", page, allow); code != 0 || len(strings.TrimSpace(stdout)) != 96 {
		t.Errorf("snp:ovmf-hash %s on a page: exit %d, stdout %q, stderr %q; want a 48-byte hex digest", allow, code, stdout, stderr)
	}
}

// TestMeasureEscapesUntrustedText: a file name with terminal escapes is
// printed escaped in text output, and kept exact by --json (the error
// message).
func TestMeasureEscapesUntrustedText(t *testing.T) {
	dir := t.TempDir()
	evil := filepath.Join(dir, "fw\x1b]0;pwned\x07\x1b[2J.fd")
	if err := syscall.Mkfifo(evil, 0o644); err != nil {
		t.Fatal(err)
	}
	notFW := filepath.Join(dir, "x\x1b[31m.fd")
	if err := os.WriteFile(notFW, []byte{1}, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"measure", "sev", "--mode", "sev", "--ovmf", evil},
		{"measure", "tdx", "--firmware", evil},
		{"measure", "sev", "--mode", "sev", "--ovmf", notFW},
		{"measure", "sev", "id-block", "--measurement", strings.Repeat("00", 48), "--idkey", notFW},
		{"measure", "sev", "--mode", "snp", "--mode", "\x1b[2J", "--ovmf", notFW},
	} {
		code, stdout, stderr := runCLI(t, args...)
		if code == 0 {
			t.Errorf("%q: exit 0, want an error", args)
		}
		if strings.ContainsAny(stdout+stderr, "\x1b\x07") {
			t.Errorf("%q: output holds a raw terminal escape: stdout %q, stderr %q", args, stdout, stderr)
		}
		if !strings.Contains(stderr, `\x1b`) {
			t.Errorf("%q: stderr %q does not show the escape as \\x1b", args, stderr)
		}
	}
}

// TestMeasureSEVIgnoredFlagsNoted: flags a mode does not use, which
// sev-snp-measure ignores without a word, are named in a note (stderr, and
// --json's notes); the digest is that without them.
func TestMeasureSEVIgnoredFlagsNoted(t *testing.T) {
	fw := testenv.VectorFile(t, "inputs/debian12_OVMF.fd")
	for _, tc := range []struct {
		mode  string
		extra []string
		want  string
	}{
		{"sev", []string{"--vcpus", "4", "--vmm-type", "ec2"}, "SEV measures no VMSAs: --vcpus, --vmm-type ignored"},
		{"snp:ovmf-hash", []string{"--vcpus", "4", "--vcpu-type", "EPYC-v4"}, "snp:ovmf-hash hashes the firmware pages alone: --vcpus, --vcpu-type ignored"},
	} {
		base := []string{"measure", "sev", "--mode", tc.mode, "--ovmf", fw}
		_, plain, _ := runCLI(t, base...)
		code, stdout, stderr := runCLI(t, append(base, tc.extra...)...)
		if code != 0 || stdout != plain || !strings.Contains(stderr, "note: "+tc.want) {
			t.Errorf("%s %v: exit %d, stdout %q (without them %q), stderr %q; want the same digest and a note %q", tc.mode, tc.extra, code, stdout, plain, stderr, tc.want)
		}
		code, stdout, _ = runCLI(t, append([]string{"--json"}, append(base, tc.extra...)...)...)
		var out struct{ Notes []string }
		if err := json.Unmarshal([]byte(stdout), &out); err != nil || code != 0 || !strings.Contains(strings.Join(out.Notes, "\n"), tc.want) {
			t.Errorf("--json %s %v: exit %d, notes %q (%v); want %q", tc.mode, tc.extra, code, out.Notes, err, tc.want)
		}
	}
}

// TestMeasureSEVJSONReportsWhatWasUsed: --json names the vCPU type and
// signature only when the VMSAs carry them (QEMU), and the VMSA GPA and
// guest features the digest used.
func TestMeasureSEVJSONReportsWhatWasUsed(t *testing.T) {
	fw := testenv.VectorFile(t, "inputs/debian12_OVMF.fd")
	for _, tc := range []struct {
		name string
		args []string
		want map[string]any // a value, or nil for a key that must be absent
	}{
		{"QEMU, type", []string{"--vcpu-type", "EPYC-Milan"}, map[string]any{"vcpu_type": "EPYC-Milan", "vcpu_sig": "0xa00f11", "vmm_type": "QEMU", "vmsa_gpa": "0xfffffffff000", "guest_features": "0x1"}},
		{"QEMU, sig", []string{"--vcpu-sig", "0xa00f11"}, map[string]any{"vcpu_type": nil, "vcpu_sig": "0xa00f11"}},
		{"ec2 ignores the type", []string{"--vcpu-type", "EPYC-Milan", "--vmm-type", "ec2"}, map[string]any{"vcpu_type": nil, "vcpu_sig": nil, "vmm_type": "ec2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"--json", "measure", "sev", "--mode", "snp", "--ovmf", fw, "--vcpus", "2"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatal(err)
			}
			for k, want := range tc.want {
				if v, ok := got[k]; want == nil && ok {
					t.Errorf("%s = %v, want no %s (the model did not use one)", k, v, k)
				} else if want != nil && v != want {
					t.Errorf("%s = %v, want %v", k, v, want)
				}
			}
		})
	}
}
