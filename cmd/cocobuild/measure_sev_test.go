package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/measure/sev"
)

// shellWords splits a command line the way a POSIX shell would for the
// simple quoting the vectors use: single quotes, double quotes, backslashes.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unterminated ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`+"`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				t.Fatalf("unterminated \" in %q", s)
			}
			inWord = true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func TestShellWords(t *testing.T) {
	got := shellWords(t, `a 'b c' "d \"e\"" f\ g '' h`)
	want := []string{"a", "b c", `d "e"`, "f g", "", "h"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("shellWords = %q, want %q", got, want)
	}
}

// runSEV runs the CLI in-process and returns its exit code, stdout and stderr.
func runSEV(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestMeasureSEVVectors runs each vector's sev-snp-measure command through
// `cocobuild measure sev` in the directory the vector's commands were run
// in (snp.json's name inputs/… and /dev/null from the vectors directory;
// snp-amdsev.json's ran in inputs/) and compares stdout with what
// sev-snp-measure printed. With --json, the full AmdSev firmware's digests
// cover kernel, initrd and cmdline whenever a kernel is given.
func TestMeasureSEVVectors(t *testing.T) {
	dir := testenv.Vectors(t)
	for _, file := range []struct{ name, dir string }{
		{"snp.json", dir},
		{"snp-amdsev.json", filepath.Join(dir, "inputs")},
	} {
		t.Run(file.name, func(t *testing.T) {
			var f struct {
				Vectors []struct {
					ID       string  `json:"id"`
					Command  string  `json:"command"`
					Expected string  `json:"expected"`
					Kernel   *string `json:"kernel"`
				} `json:"vectors"`
			}
			if err := json.Unmarshal(testenv.ReadVector(t, file.name), &f); err != nil {
				t.Fatal(err)
			}
			if len(f.Vectors) == 0 {
				t.Fatalf("%s has no vectors", file.name)
			}
			t.Chdir(file.dir)
			for _, v := range f.Vectors {
				t.Run(v.ID, func(t *testing.T) {
					words := shellWords(t, v.Command)
					if len(words) == 0 || words[0] != "sev-snp-measure" {
						t.Fatalf("command %q does not start with sev-snp-measure", v.Command)
					}
					args := append([]string{"measure", "sev"}, words[1:]...)
					code, stdout, stderr := runSEV(t, args...)
					if code != 0 {
						t.Fatalf("cocobuild %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
					}
					if want := v.Expected + "\n"; stdout != want {
						t.Errorf("cocobuild %s\nstdout %q\n  want %q", strings.Join(args, " "), stdout, want)
					}
					if file.name != "snp-amdsev.json" {
						return
					}
					code, stdout, stderr = runSEV(t, append([]string{"--json"}, args...)...)
					if code != 0 {
						t.Fatalf("cocobuild --json %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
					}
					var got struct {
						Measurement string       `json:"measurement"`
						Covers      sev.Coverage `json:"covers"`
					}
					if err := json.Unmarshal([]byte(stdout), &got); err != nil {
						t.Fatalf("output is not JSON: %v\n%s", err, stdout)
					}
					direct := v.Kernel != nil
					want := sev.Coverage{Firmware: true, Kernel: direct, Initrd: direct, Cmdline: direct}
					if got.Measurement != v.Expected || got.Covers != want {
						t.Errorf("cocobuild --json %s: got %s covering %+v, want %s covering %+v", strings.Join(args, " "), got.Measurement, got.Covers, v.Expected, want)
					}
				})
			}
		})
	}
}

func TestMeasureSEVJSON(t *testing.T) {
	t.Chdir(testenv.Vectors(t))
	code, stdout, stderr := runSEV(t, "--json", "measure", "sev", "--mode", "snp", "--ovmf", "inputs/ovmf_AmdSev_suffix.bin",
		"--vcpus", "2", "--vcpu-type", "EPYC-Milan", "--kernel", "inputs/tiny-kernel.bin", "--append", "console=ttyS0",
		"--output-format", "base64")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var got struct {
		Mode        string       `json:"mode"`
		Measurement string       `json:"measurement"`
		Digest      string       `json:"digest"`
		VCPUs       int          `json:"vcpus"`
		VCPUSig     string       `json:"vcpu_sig"`
		VMM         string       `json:"vmm_type"`
		Variant     string       `json:"variant"`
		Covers      sev.Coverage `json:"covers"`
		Append      *string      `json:"append"`
		Hashes      map[string]string
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	raw, err := base64.StdEncoding.DecodeString(got.Measurement)
	if err != nil || len(raw) != sev.DigestSize {
		t.Errorf("measurement %q is not a base64 SNP digest", got.Measurement)
	}
	if got.Mode != "snp" || got.VCPUs != 2 || got.VCPUSig != "0xa00f11" || got.VMM != "QEMU" ||
		!strings.Contains(got.Variant, "QEMU/KVM") || got.Append == nil || *got.Append != "console=ttyS0" {
		t.Errorf("JSON parameters = %+v", got)
	}
	// The last 4 KiB of an AmdSev build has the hashes table but not the
	// modules that show the blobs are checked: the digest is computed, and
	// it covers the firmware only (TestMeasureSEVCoverageFollowsTheFirmware
	// has the full image).
	if want := (sev.Coverage{Firmware: true}); got.Covers != want {
		t.Errorf("covers = %+v, want %+v", got.Covers, want)
	}
}

func TestMeasureSEVErrors(t *testing.T) {
	t.Chdir(testenv.Vectors(t))
	snp := []string{"measure", "sev", "--mode", "snp", "--vcpus", "1", "--vcpu-type", "EPYC-v4"}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no mode", []string{"measure", "sev", "--ovmf", "inputs/debian12_OVMF.fd"}, exitUsage, "--mode"},
		{"no ovmf", []string{"measure", "sev", "--mode", "sev"}, exitUsage, "--ovmf"},
		{"svsm mode", []string{"measure", "sev", "--mode", "snp:svsm", "--ovmf", "inputs/debian12_OVMF.fd"}, exitUsage, "not modelled"},
		{"bad mode", []string{"measure", "sev", "--mode", "tdx", "--ovmf", "inputs/debian12_OVMF.fd"}, exitUsage, "tdx"},
		{"missing file", append(snp, "--ovmf", "inputs/nope.fd"), exitUsage, "nope.fd"},
		{"no vcpus", []string{"measure", "sev", "--mode", "snp", "--ovmf", "inputs/debian12_OVMF.fd", "--vcpu-type", "EPYC-v4"}, exitUsage, "missing --vcpus"},
		{"no vcpu type", []string{"measure", "sev", "--mode", "snp", "--ovmf", "inputs/debian12_OVMF.fd", "--vcpus", "1"}, exitUsage, "vCPU type"},
		{"unknown vcpu type", []string{"measure", "sev", "--mode", "snp", "--ovmf", "inputs/debian12_OVMF.fd", "--vcpus", "1", "--vcpu-type", "EPYC-X"}, exitUsage, "EPYC-Genoa"},
		{"vcpu type typo", []string{"measure", "sev", "--mode", "snp", "--ovmf", "inputs/debian12_OVMF.fd", "--vcpus", "1", "--vcpu-type", "epyc-milan"}, exitUsage, `--vcpu-type: unknown vCPU type "epyc-milan" (did you mean "EPYC-Milan"?)`},
		{"vcpu type alternatives", []string{"measure", "sev", "--mode", "snp", "--ovmf", "inputs/debian12_OVMF.fd", "--vcpus", "1", "--vcpu-type", "EPYC-X"}, exitUsage, "EPYC-Turin; or give --vcpu-sig, or --vcpu-family, --vcpu-model and --vcpu-stepping"},
		{"partial fms", []string{"measure", "sev", "--mode", "snp", "--vcpus", "1", "--ovmf", "inputs/debian12_OVMF.fd", "--vcpu-family", "25"}, exitUsage, "all three"},
		{"vcpu type and partial fms", append(snp, "--ovmf", "inputs/debian12_OVMF.fd", "--vcpu-family", "25"), exitUsage, "--vcpu-type EPYC-v4 and --vcpu-family/--vcpu-model/--vcpu-stepping conflict"},
		{"initrd without kernel", append(snp, "--ovmf", "inputs/debian12_OVMF.fd", "--initrd", "inputs/tiny-initrd.cpio"), exitUsage, "--kernel required"},
		{"append without kernel", append(snp, "--ovmf", "inputs/debian12_OVMF.fd", "--append", "x"), exitUsage, "--kernel required"},
		{"bad vmm", append(snp, "--ovmf", "inputs/debian12_OVMF.fd", "--vmm-type", "azure"), exitUsage, "azure"},
		{"bad output format", append(snp, "--ovmf", "inputs/debian12_OVMF.fd", "--output-format", "b32"), exitUsage, "b32"},
		{"dump vmsa in sev", []string{"measure", "sev", "--mode", "sev", "--ovmf", "inputs/debian12_OVMF.fd", "--dump-vmsa"}, exitUsage, "VMSAs"},
		{"ovmf hash outside snp", []string{"measure", "sev", "--mode", "seves", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", "inputs/debian12_OVMF.fd", "--snp-ovmf-hash", strings.Repeat("00", 48)}, exitUsage, "snp mode"},
		{"snp without metadata", append(snp, "--ovmf", "inputs/debian12_OVMF_CODE_4M.fd"), exitFailure, "SEV metadata"},
		{"kernel with hashes GPA 0", append(snp, "--ovmf", "inputs/debian12_OVMF.fd", "--kernel", "inputs/tiny-kernel.bin"), exitFailure, "GPA 0"},
		{"sev kernel with hashes GPA 0", []string{"measure", "sev", "--mode", "sev", "--ovmf", "inputs/debian12_OVMF.fd", "--kernel", "inputs/tiny-kernel.bin"}, exitFailure, "GPA 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runSEV(t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d (stdout %q, stderr %q)", code, tc.wantCode, stdout, stderr)
			}
			if !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("stderr %q does not mention %q", stderr, tc.wantErr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing on error", stdout)
			}
		})
	}
}

func TestMeasureSEVNotesAndVerbose(t *testing.T) {
	t.Chdir(testenv.Vectors(t))
	code, stdout, stderr := runSEV(t, "measure", "sev", "-v", "--mode", "seves", "--ovmf", "inputs/debian12_OVMF.fd", "--vcpus", "1", "--vcpu-type", "EPYC-v4")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !regexp.MustCompile(`^Calculated SEV_ES guest measurement: [0-9a-f]{64}\n$`).MatchString(stdout) {
		t.Errorf("verbose stdout %q, want sev-snp-measure's \"Calculated SEV_ES guest measurement: <hex>\"", stdout)
	}
	if !strings.Contains(stderr, "note:") || !strings.Contains(stderr, "no kernel") {
		t.Errorf("stderr %q does not say the digest covers no kernel", stderr)
	}
}

func TestMeasureSEVDumpVMSA(t *testing.T) {
	fw := testenv.VectorFile(t, "inputs/debian12_OVMF.fd")
	dir := t.TempDir()
	t.Chdir(dir)
	code, stdout, stderr := runSEV(t, "measure", "sev", "--mode", "snp", "--ovmf", fw, "--vcpus", "3", "--vcpu-type", "EPYC-Milan", "--dump-vmsa")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	r, err := sev.Measure(sev.Params{Mode: sev.ModeSNP, Firmware: testenv.ReadVector(t, "inputs/debian12_OVMF.fd"), VCPUs: 3, VCPUType: "EPYC-Milan", GuestFeatures: 1, DumpVMSA: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(stdout); want == "" {
		t.Fatal("no digest printed")
	}
	for i, want := range r.VMSAs {
		got, err := os.ReadFile(filepath.Join(dir, "vmsa"+string(rune('0'+i))+".bin"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("vmsa%d.bin differs from the package's VMSA", i)
		}
	}
}

func TestMeasureSEVIDBlock(t *testing.T) {
	keys, err := filepath.Abs("../../measure/sev/testdata")
	if err != nil {
		t.Fatal(err)
	}
	u := testenv.ReadVector(t, "snp-upstream-tests.json")
	var up struct {
		S struct {
			ID struct {
				M     string `json:"measurement_b64"`
				Block string `json:"expected_id_block_b64_prefix"`
			} `json:"id_block_vector"`
		} `json:"sev-snp-measure"`
	}
	if err := json.Unmarshal(u, &up); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(keys, "snp-create-id-block.out"))
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runSEV(t, "measure", "sev", "id-block", "--measurement", up.S.ID.M,
		"--idkey", filepath.Join(keys, "id_key_p384.pem"), "--authorkey", filepath.Join(keys, "author_key_p384.pem"))
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	// Same shape and deterministic parts as snp-create-id-block's output;
	// the signatures inside id-auth are randomised.
	line := regexp.MustCompile(`^id-block=([A-Za-z0-9+/=]+),id-auth=([A-Za-z0-9+/=]+)\nid_key_hash: (\S+)\nauthor_key: (\S+)\n$`)
	g, w := line.FindStringSubmatch(stdout), line.FindStringSubmatch(string(want))
	if g == nil || w == nil {
		t.Fatalf("output %q does not have snp-create-id-block's shape (reference %q)", stdout, want)
	}
	if g[1] != up.S.ID.Block || g[1] != w[1] || g[3] != w[3] || g[4] != w[4] {
		t.Errorf("id-block/key digests = %s %s %s, want %s %s %s", g[1], g[3], g[4], w[1], w[3], w[4])
	}
	block, _ := base64.StdEncoding.DecodeString(g[1])
	auth, _ := base64.StdEncoding.DecodeString(g[2])
	if err := sev.VerifyIDBlock(block, auth); err != nil {
		t.Errorf("printed ID block does not verify: %v", err)
	}

	code, _, stderr = runSEV(t, "measure", "sev", "id-block", "--measurement", "abcd", "--idkey", filepath.Join(keys, "id_key_p384.pem"))
	if code != exitUsage || !strings.Contains(stderr, "48") {
		t.Errorf("short measurement: exit %d, stderr %q; want usage error about 48 bytes", code, stderr)
	}
	code, _, stderr = runSEV(t, "measure", "sev", "id-block", "--measurement", up.S.ID.M, "--idkey", filepath.Join(keys, "key_p256.pem"))
	if code != exitUsage || !strings.Contains(stderr, "P-384") {
		t.Errorf("P-256 key: exit %d, stderr %q; want usage error asking for P-384", code, stderr)
	}
}

// TestMeasureSEVSEVESFeatures runs --seves-features against the digests
// sev-snp-measure's seves code computed with those SEV_FEATURES
// (measure/sev/testdata/seves-features.json), and checks that
// --guest-features stays ignored in seves mode, as sev-snp-measure ignores it.
func TestMeasureSEVSEVESFeatures(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "measure", "sev", "testdata", "seves-features.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []struct {
			SEVFeatures string `json:"sev_features"`
			VCPUs       int    `json:"vcpus"`
			VCPUType    string `json:"vcpu_type"`
			VMM         string `json:"vmm"`
			Firmware    string `json:"firmware"`
			Kernel      string `json:"kernel"`
			Initrd      string `json:"initrd"`
			Append      string `json:"append"`
			Expected    string `json:"expected"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) == 0 {
		t.Fatal("seves-features.json has no vectors")
	}
	t.Chdir(testenv.Vectors(t))
	for i, v := range f.Vectors {
		args := []string{"measure", "sev", "--mode", "seves", "--ovmf", v.Firmware, "--vcpus", fmt.Sprint(v.VCPUs), "--vmm-type", v.VMM,
			"--guest-features", "0x21"}
		if v.VCPUType != "" {
			args = append(args, "--vcpu-type", v.VCPUType)
		}
		if v.SEVFeatures != "0x0" { // 0x0 is the default
			args = append(args, "--seves-features", v.SEVFeatures)
		}
		if v.Kernel != "" {
			args = append(args, "--kernel", v.Kernel, "--initrd", v.Initrd, "--append", v.Append)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			code, stdout, stderr := runSEV(t, args...)
			if code != 0 {
				t.Fatalf("cocobuild %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
			}
			if got, want := stdout, v.Expected+"\n"; got != want {
				t.Errorf("cocobuild %s\n got %q\nwant %q", strings.Join(args, " "), got, want)
			}
		})
	}
	for _, c := range []struct {
		name, mode, value, want string
	}{
		{"SNPActive in seves", "seves", "0x21", "SNPActive"},
		{"seves features in snp", "snp", "0x20", "only apply in seves mode"},
		{"not a number", "seves", "debugswap", "--seves-features"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runSEV(t, "measure", "sev", "--mode", c.mode, "--ovmf", "inputs/debian12_OVMF.fd", "--vcpus", "1",
				"--vcpu-type", "EPYC-v4", "--seves-features", c.value)
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, no stdout, stderr mentioning %q", code, stdout, stderr, exitUsage, c.want)
			}
		})
	}
}

// TestMeasureSEVCoverageFollowsTheFirmware: with a kernel, the digest
// covers it only when the firmware checks it against the hashes table.
// sid's generic OVMF.fd has a hashes table and no check (the vectors
// README's trap); OVMF.amdsev.fd checks.
func TestMeasureSEVCoverageFollowsTheFirmware(t *testing.T) {
	for _, tc := range []struct {
		fw   string
		want map[string]any
	}{
		{"inputs/debian-sid_OVMF.fd", map[string]any{"firmware": true, "kernel": false, "initrd": false, "cmdline": false}},
		{"inputs/debian-sid_OVMF.amdsev.fd", map[string]any{"firmware": true, "kernel": true, "initrd": true, "cmdline": true}},
	} {
		code, stdout, stderr := runCLI(t, "--json", "measure", "sev", "--mode", "snp", "--vcpus", "1", "--vcpu-type", "EPYC-v4",
			"--ovmf", testenv.VectorFile(t, tc.fw), "--kernel", testenv.VectorFile(t, "inputs/tiny-kernel.bin"), "--append", "console=ttyS0")
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", tc.fw, code, stderr)
		}
		var out struct {
			Covers map[string]any `json:"covers"`
			Notes  []string       `json:"notes"`
		}
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, out.Covers); diff != "" {
			t.Errorf("%s: covers (-want +got):\n%s", tc.fw, diff)
		}
		if checks := tc.want["kernel"] == true; !checks && !strings.Contains(strings.Join(out.Notes, "\n"), "does not check them against the SEV hashes table") {
			t.Errorf("%s: notes %q do not say why the kernel is not covered", tc.fw, out.Notes)
		}
	}
}
