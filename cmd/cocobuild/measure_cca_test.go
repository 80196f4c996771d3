package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// runCCA runs `cocobuild measure cca args...` from dir.
func runCCA(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	t.Chdir(dir)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"measure", "cca"}, args...), strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestMeasureCCAVectors runs every vector of cca.json through the command
// line exactly as realm-measurements was run (its options, -k/-i/-f, the
// DTB, then the VMM and its arguments, from the inputs directory) and
// compares the output lines with the tool's.
func TestMeasureCCAVectors(t *testing.T) {
	var f struct {
		Vectors []struct {
			ID       string            `json:"id"`
			Host     []string          `json:"host"`
			VMMArgs  []string          `json:"vmm_args"`
			Kernel   *string           `json:"kernel"`
			Initrd   *string           `json:"initrd"`
			Firmware *string           `json:"firmware"`
			DTB      string            `json:"dtb"`
			Expected map[string]string `json:"expected"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(testenv.ReadVector(t, "cca.json"), &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) < 5 {
		t.Fatalf("cca.json: %d vectors, want 5", len(f.Vectors))
	}
	dir := testenv.VectorFile(t, "inputs")
	for _, v := range f.Vectors {
		args := append([]string(nil), v.Host...)
		for _, o := range []struct {
			flag string
			path *string
		}{{"-k", v.Kernel}, {"-i", v.Initrd}, {"-f", v.Firmware}, {"--dtb", &v.DTB}} {
			if o.path != nil {
				args = append(args, o.flag, strings.TrimPrefix(*o.path, "inputs/"))
			}
		}
		args = append(args, v.VMMArgs...)
		code, out, errOut := runCCA(t, dir, args...)
		if code != 0 {
			t.Errorf("%s: exit %d, stderr %s", v.ID, code, errOut)
			continue
		}
		want := fmt.Sprintf("RIM: %s\nREM0: %s\nREM1: %s\nREM2: %s\nREM3: %s\n", v.Expected["rim"], v.Expected["rem0"], v.Expected["rem1"], v.Expected["rem2"], v.Expected["rem3"])
		if out != want {
			t.Errorf("%s: stdout\n%s\nwant (realm-measurements)\n%s", v.ID, out, want)
		}
	}
}

// TestMeasureCCAOutputs checks --print-b64, --json, the notes, --help and
// the exit codes.
func TestMeasureCCAOutputs(t *testing.T) {
	dir := testenv.VectorFile(t, "inputs")
	const rim = "cc3372c28d033b33ec3c2fafbbc0e19ec50b4d848d4ae357e1619089f131b8be"
	kvm := []string{"--num-wps", "6", "--num-bps", "6", "-k", "cca-linux.bin", "-i", "cca-initrd.bin", "--dtb", "cca/kvmtool-k-i-2cpu-1G.dtb"}
	vmm := []string{"kvmtool", "--realm", "-c", "2", "-m", "1G", "-k", "cca-linux.bin", "-i", "cca-initrd.bin"}

	code, out, errOut := runCCA(t, dir, append(append(append([]string(nil), kvm...), "--print-b64"), vmm...)...)
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "RIM: "))
	if code != 0 || fmt.Sprintf("%x", raw) != rim+strings.Repeat("0", 64) {
		t.Errorf("--print-b64: exit %d, stdout %q, stderr %q; want the RIM %s in base64, 64 bytes as realm-measurements prints it", code, out, errOut, rim)
	}
	if !strings.Contains(errOut, "note: 2 vCPUs: only the boot vCPU's REC") {
		t.Errorf("stderr %q lacks the note on the vCPUs", errOut)
	}

	code, out, errOut = runCCA(t, dir, append(append(append([]string(nil), kvm...), "--json"), vmm...)...)
	var j struct {
		RIM       string   `json:"rim"`
		RIMBase64 string   `json:"rim_base64"`
		Hash      string   `json:"measurement_algorithm"`
		Measured  []string `json:"measured"`
		Steps     []struct {
			Call string `json:"call"`
		} `json:"steps"`
	}
	if code != 0 {
		t.Fatalf("--json: exit %d, %s", code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if b, _ := base64.StdEncoding.DecodeString(j.RIMBase64); j.RIM != rim || fmt.Sprintf("%x", b) != rim || j.Hash != "sha256" ||
		strings.Join(j.Measured, ",") != "kernel,initrd,DTB" || len(j.Steps) != 6 {
		t.Errorf("--json: rim %s (base64 %s), %s, measured %v, %d steps; want rim %s at its 32 bytes, sha256, kernel,initrd,DTB, 6 steps",
			j.RIM, j.RIMBase64, j.Hash, j.Measured, len(j.Steps), rim)
	}

	// QEMU's options also take two dashes (as QEMU does): cocobuild's
	// one-dash long flags (-kernel is measure tdx's --kernel) reach it so.
	qemu := []string{"--num-wps", "6", "--num-bps", "6", "--ipa-bits", "52", "-k", "cca-linux.bin", "--dtb", "cca/qemu-k-i-2cpu-1G-sha256.dtb",
		"qemu", "-object", "rme-guest,id=rme0,measurement-algorithm=sha256", "-cpu", "host", "-smp", "2", "-m", "1G"}
	for _, k := range []string{"-kernel", "--kernel"} {
		code, out, errOut = runCCA(t, dir, append(append([]string(nil), qemu...), k, "Image")...)
		if code != 0 || !strings.HasPrefix(out, "RIM: e8862e21b8eb6b4bdeeff244dc59d2935c26d92c52d346f06e224fe712267a6") {
			t.Errorf("qemu %s Image: exit %d, stdout %q, stderr %q; want realm-measurements' RIM e8862e21…", k, code, out, errOut)
		}
	}

	// Without --dtb, the DTB is generated: realm-measurements' own, byte
	// for byte, written by --output-dtb.
	gen := filepath.Join(t.TempDir(), "gen.dtb")
	noDTB := []string{"--num-wps", "6", "--num-bps", "6", "-k", "cca-linux.bin", "-i", "cca-initrd.bin", "--output-dtb", gen}
	code, out, errOut = runCCA(t, dir, append(noDTB, vmm...)...)
	if code != 0 || !strings.HasPrefix(out, "RIM: "+rim) {
		t.Errorf("kvmtool without --dtb: exit %d, stdout %q, stderr %q; want RIM %s", code, out, errOut, rim)
	}
	if b, err := os.ReadFile(gen); err != nil || !bytes.Equal(b, testenv.ReadVector(t, "inputs/cca/kvmtool-k-i-2cpu-1G.dtb")) {
		t.Errorf("--output-dtb: %v, or not the DTB realm-measurements generated", err)
	}

	code, out, _ = runCCA(t, dir, "--help")
	if code != 0 || !strings.Contains(out, "cocobuild measure cca --num-bps 6") || !strings.Contains(out, "realm-measurements") {
		t.Errorf("--help: exit %d, stdout %q; want the help with its example", code, out)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--num-wps", "6", "kvmtool", "--realm", "-c", "1", "-m", "512"}, 1, "--num-bps"},
		{[]string{"--num-wps", "6", "--dtb", "cca/kvmtool-fw-1cpu-512M.dtb", "kvmtool", "--realm", "-c", "1", "-m", "512"}, 1, "--num-bps"},
		{[]string{"--bogus", "kvmtool"}, 2, "unknown option --bogus"},
		{[]string{"--num-wps", "6"}, 2, "no VMM"},
		{[]string{"--dtb-template", "x.dtb", "kvmtool"}, 2, "patching a DTB template is not modelled"},
		{[]string{"--num-wps", "6", "--num-bps", "6", "--dtb", "cca-fw.bin", "qemu", "-m", "1G"}, 1, "not a device tree blob"},
		{[]string{"-k", "missing-file", "kvmtool"}, 2, "--kernel"},
		{[]string{"--limit", "bogus", "kvmtool"}, 2, "--limit"},
		{[]string{"--limit", "kernel=100", "--num-wps", "6", "--num-bps", "6", "-k", "cca-linux.bin", "--dtb", "cca/kvmtool-k-i-2cpu-1G.dtb", "kvmtool", "--realm", "-c", "2", "-m", "1G", "-k", "K"}, 2, "limit"},
	} {
		code, _, errOut := runCCA(t, dir, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}
