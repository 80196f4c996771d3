package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-eventlog/register"
	"github.com/google/go-eventlog/tcg"

	"github.com/cocobuild/cocobuild/internal/testenv"
)

// runTDX runs `cocobuild measure tdx args...` and returns the exit code and
// the output streams.
func runTDX(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"measure", "tdx"}, args...), strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// tdxJSON is the part of the --json output the tests read.
type tdxJSON struct {
	MRTD          string            `json:"mrtd"`
	RTMR0         *string           `json:"rtmr0"`
	RTMR1         *string           `json:"rtmr1"`
	RTMR2         *string           `json:"rtmr2"`
	RTMR3         *string           `json:"rtmr3"`
	NotComputable map[string]string `json:"not_computable"`
	Events        []struct {
		MRIndex     int    `json:"mr_index"`
		RTMR        int    `json:"rtmr"`
		Type        string `json:"type"`
		Description string `json:"description"`
		Digest      string `json:"digest"`
	} `json:"events"`
	Variant map[string]any `json:"variant"`
	Kernel  *struct {
		SHA384 string `json:"authenticode_sha384"`
		SHA256 string `json:"authenticode_sha256"`
	} `json:"kernel"`
}

func runTDXJSON(t *testing.T, args ...string) tdxJSON {
	t.Helper()
	code, out, errOut := runTDX(t, append(args, "--json")...)
	if code != 0 {
		t.Fatalf("measure tdx %v: exit %d, stderr:\n%s", args, code, errOut)
	}
	var j tdxJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("measure tdx %v: output is not JSON: %v\n%s", args, err, out)
	}
	return j
}

func (j tdxJSON) eventDigests(rtmr int) []string {
	var out []string
	for _, e := range j.Events {
		if e.RTMR == rtmr {
			out = append(out, e.Digest)
		}
	}
	return out
}

// tdxVector is one entry of tdx.json.
type tdxVector struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Inputs []struct {
		File string `json:"file"`
		Path string `json:"path"`
	} `json:"inputs"`
	Params   map[string]any `json:"params"`
	Expected map[string]any `json:"expected"`
}

func tdxVectors(t *testing.T, kindPrefix string) []tdxVector {
	t.Helper()
	var f struct {
		Vectors []tdxVector `json:"vectors"`
	}
	if err := json.Unmarshal(testenv.ReadVector(t, "tdx.json"), &f); err != nil {
		t.Fatalf("tdx.json: %v", err)
	}
	var out []tdxVector
	for _, v := range f.Vectors {
		if strings.HasPrefix(v.Kind, kindPrefix) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		t.Fatalf("tdx.json has no %q vectors", kindPrefix)
	}
	return out
}

func memFlag(t *testing.T, v tdxVector) string {
	t.Helper()
	b, ok := v.Params["guest_memory_bytes"].(float64)
	if !ok || uint64(b)%(1<<20) != 0 {
		t.Fatalf("%s: guest_memory_bytes %v is not a whole number of MiB", v.ID, v.Params["guest_memory_bytes"])
	}
	return fmt.Sprintf("%dM", uint64(b)>>20)
}

func TestMeasureTDXMRTDVectors(t *testing.T) {
	for _, v := range tdxVectors(t, "MRTD") {
		order := "single-pass"
		if strings.Contains(v.ID, "two-pass") {
			order = "two-pass"
		}
		t.Run(v.ID, func(t *testing.T) {
			j := runTDXJSON(t, "--firmware", testenv.VectorFile(t, v.Inputs[0].Path), "--page-order", order)
			if want := v.Expected["mrtd"]; j.MRTD != want {
				t.Errorf("mrtd = %s, want %s", j.MRTD, want)
			}
			if j.Variant["page_order"] != order {
				t.Errorf("variant.page_order = %v, want %s", j.Variant["page_order"], order)
			}
		})
	}
}

func TestMeasureTDXDirectBootVectors(t *testing.T) {
	fw := testenv.VectorFile(t, "inputs/debian12_OVMF.fd")
	cases := []struct {
		qemu, sep, rtmr1Key, eventsKey, kernelKey string
	}{
		{"10.2", "current", "rtmr1_qemu_ge_10_2_unpatched_kernel", "rtmr1_events_qemu_ge_10_2", "kernel_authenticode_sha384_unpatched"},
		{"9.2", "current", "rtmr1_qemu_lt_10_2_patched_kernel", "rtmr1_events_qemu_lt_10_2", "kernel_authenticode_sha384_qemu_patched"},
		{"8.2.2", "legacy", "rtmr1_qemu_lt_10_2_patched_kernel_legacy_tdvf_separator_in_rtmr0", "", "kernel_authenticode_sha384_qemu_patched"},
		{"10.2", "legacy", "rtmr1_qemu_ge_10_2_unpatched_kernel_legacy_tdvf_separator_in_rtmr0", "", "kernel_authenticode_sha384_unpatched"},
	}
	for _, v := range tdxVectors(t, "RTMR1+RTMR2") {
		if got := v.Params["acpi_data_size_assumed"]; got != "0x28000" {
			t.Fatalf("%s assumes ACPI data size %v; the CLI models QEMU's 0x28000", v.ID, got)
		}
		args := []string{"--firmware", fw, "--append", v.Params["cmdline_as_passed_to_qemu_append"].(string), "--memory", memFlag(t, v)}
		for _, in := range v.Inputs {
			switch {
			case strings.HasPrefix(in.File, "vmlinuz"):
				args = append(args, "--kernel", testenv.VectorFile(t, in.Path))
			case in.File == v.Params["initrd"]:
				args = append(args, "--initrd", testenv.VectorFile(t, in.Path))
			}
		}
		for _, c := range cases {
			t.Run(v.ID+"/qemu-"+c.qemu+"-"+c.sep, func(t *testing.T) {
				j := runTDXJSON(t, append(args, "--qemu-version", c.qemu, "--tdvf-separator", c.sep)...)
				check := func(name string, got *string, want any) {
					t.Helper()
					if got == nil || *got != want {
						t.Errorf("%s = %v, want %v", name, got, want)
					}
				}
				check("rtmr1", j.RTMR1, v.Expected[c.rtmr1Key])
				check("rtmr2", j.RTMR2, v.Expected["rtmr2_linux_ge_6_9_efistub"])
				check("rtmr3", j.RTMR3, strings.Repeat("0", 96))
				if j.Kernel == nil || j.Kernel.SHA384 != v.Expected[c.kernelKey] {
					t.Errorf("kernel = %+v, want authenticode_sha384 %v", j.Kernel, v.Expected[c.kernelKey])
				}
				if c.eventsKey != "" {
					if got, want := fmt.Sprint(j.eventDigests(1)), fmt.Sprint(v.Expected[c.eventsKey]); got != want {
						t.Errorf("rtmr1 events = %s, want %s", got, want)
					}
				}
				if got, want := fmt.Sprint(j.eventDigests(2)), fmt.Sprint(v.Expected["rtmr2_events"]); got != want {
					t.Errorf("rtmr2 events = %s, want %s", got, want)
				}
				if j.RTMR0 != nil || j.NotComputable["rtmr0"] == "" {
					t.Errorf("rtmr0 = %v, not_computable = %v; want rtmr0 absent with a reason (no --acpi-dir)", j.RTMR0, j.NotComputable)
				}
				if j.Variant["qemu_version"] != c.qemu || j.Variant["tdvf_separator"] != c.sep {
					t.Errorf("variant = %v, want qemu %s separator %s", j.Variant, c.qemu, c.sep)
				}
			})
		}
	}
}

func TestMeasureTDXRTMR0ComponentVectors(t *testing.T) {
	keys := []struct{ key, desc string }{
		{"td_hob_sha384", "TD HOB"},
		{"cfv_sha384", "CFV"},
		{"var_SecureBoot_empty_sha384", "Secure Boot variable 8be4df61-93ca-11d2-aa0d-00e098032b8c:SecureBoot "},
		{"var_PK_empty_sha384", "Secure Boot variable 8be4df61-93ca-11d2-aa0d-00e098032b8c:PK "},
		{"var_KEK_empty_sha384", "Secure Boot variable 8be4df61-93ca-11d2-aa0d-00e098032b8c:KEK "},
		{"var_db_empty_sha384", "Secure Boot variable d719b2cb-3d3a-4596-a3bc-dad00e67656f:db "},
		{"var_dbx_empty_sha384", "Secure Boot variable d719b2cb-3d3a-4596-a3bc-dad00e67656f:dbx "},
		{"separator_sha384", "separator"},
		{"bootorder_0000_sha384", "boot variable BootOrder"},
		{"boot0000_uiapp_sha384", "boot variable Boot0000"},
	}
	for _, v := range tdxVectors(t, "RTMR0 event digests") {
		t.Run(v.ID, func(t *testing.T) {
			j := runTDXJSON(t, "--firmware", testenv.VectorFile(t, v.Inputs[0].Path), "--memory", memFlag(t, v))
			for _, k := range keys {
				got := ""
				for _, e := range j.Events {
					if e.RTMR == 0 && e.MRIndex == 1 && strings.HasPrefix(e.Description, k.desc) {
						got = e.Digest
						break
					}
				}
				if want := v.Expected[k.key]; got != want {
					t.Errorf("%s (event %q) = %q, want %v", k.key, k.desc, got, want)
				}
			}
		})
	}
}

// writeACPIDir writes QEMU-shaped ACPI blobs: a table-loader allocating
// etc/acpi/tables and etc/acpi/rsdp.
func writeACPIDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	loader := make([]byte, 2*128)
	for i, name := range []string{"etc/acpi/tables", "etc/acpi/rsdp"} {
		binary.LittleEndian.PutUint32(loader[128*i:], 1) // ALLOCATE
		copy(loader[128*i+4:], name)
	}
	for name, b := range map[string][]byte{"table-loader": loader, "rsdp": []byte("RSD PTR "), "tables": bytes.Repeat([]byte("SSDT"), 64)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMeasureTDXEventLogReplays(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "ccel.bin")
	j := runTDXJSON(t, "--firmware", testenv.VectorFile(t, "inputs/debian12_OVMF.fd"),
		"--kernel", testenv.VectorFile(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64"),
		"--initrd", testenv.VectorFile(t, "inputs/tiny-initrd.cpio"), "--append", "console=ttyS0 quiet",
		"--acpi-dir", writeACPIDir(t), "--eventlog", logPath)
	if j.RTMR0 == nil || len(j.NotComputable) != 0 {
		t.Fatalf("with --acpi-dir and --kernel every RTMR should be computable; not_computable = %v", j.NotComputable)
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatalf("reading --eventlog output: %v", err)
	}
	var bank register.RTMRBank
	for i, s := range []*string{j.RTMR0, j.RTMR1, j.RTMR2, j.RTMR3} {
		d, err := hex.DecodeString(*s)
		if err != nil {
			t.Fatalf("rtmr%d: %v", i, err)
		}
		bank.RTMRs = append(bank.RTMRs, register.RTMR{Index: i, Digest: d})
	}
	events, err := tcg.ParseAndReplay(log, bank.MRs(), tcg.ParseOpts{})
	if err != nil {
		t.Fatalf("the --eventlog file does not replay to the printed RTMRs: %v", err)
	}
	if len(events) != len(j.Events) {
		t.Errorf("replayed %d events, JSON lists %d", len(events), len(j.Events))
	}
	bank.RTMRs[0].Digest[0] ^= 1
	if _, err := tcg.ParseAndReplay(log, bank.MRs(), tcg.ParseOpts{}); err == nil {
		t.Errorf("the event log replays against an RTMR0 with one bit flipped")
	}
}

func TestMeasureTDXPlainOutput(t *testing.T) {
	code, out, errOut := runTDX(t, "--firmware", testenv.VectorFile(t, "inputs/debian12_OVMF.fd"),
		"--kernel", testenv.VectorFile(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64"), "--append", "console=ttyS0", "--memory", "2048")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var names []string
	for _, l := range lines {
		name, val, ok := strings.Cut(l, ": ")
		if _, err := hex.DecodeString(val); !ok || err != nil || len(val) != 96 {
			t.Errorf("line %q is not `name: <96 hex digits>`", l)
		}
		names = append(names, name)
	}
	if got, want := strings.Join(names, ","), "mrtd,rtmr1,rtmr2,rtmr3"; got != want {
		t.Errorf("registers printed = %s, want %s (rtmr0 needs --acpi-dir)", got, want)
	}
	if !strings.Contains(errOut, "rtmr0 not computable") {
		t.Errorf("stderr does not say why rtmr0 is missing:\n%s", errOut)
	}
	if !strings.Contains(out, "rtmr1: 7c8fc1156aa7d170c971af918b68aa22cda486113fbf513d3031b2dc792fc78a") {
		t.Errorf("--memory 2048 (MiB) with defaults should give the vectors' QEMU >= 10.2 RTMR1; got\n%s", out)
	}
}

func TestMeasureTDXErrors(t *testing.T) {
	fw := testenv.VectorFile(t, "inputs/debian12_OVMF.fd")
	notFirmware := testenv.VectorFile(t, "inputs/tiny-initrd.cpio")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no firmware", nil, exitUsage, "--firmware is required"},
		{"bad page order", []string{"--firmware", fw, "--page-order", "three-pass"}, exitUsage, "page order"},
		{"bad memory", []string{"--firmware", fw, "--memory", "lots"}, exitUsage, "--memory"},
		{"bad qemu version", []string{"--firmware", fw, "--qemu-version", "ten"}, exitUsage, "--qemu-version"},
		{"bad separator", []string{"--firmware", fw, "--tdvf-separator", "middle"}, exitUsage, "--tdvf-separator"},
		{"append without kernel", []string{"--firmware", fw, "--append", "quiet"}, exitUsage, "need --kernel"},
		{"missing firmware file", []string{"--firmware", filepath.Join(t.TempDir(), "none.fd")}, exitUsage, "--firmware"},
		{"missing acpi files", []string{"--firmware", fw, "--acpi-dir", t.TempDir()}, exitUsage, "table-loader"},
		{"not a TDVF image", []string{"--firmware", notFirmware}, exitFailure, "TDVF"},
		{"kernel not PE", []string{"--firmware", fw, "--kernel", notFirmware}, exitFailure, "kernel"},
		{"unexpected argument", []string{"--firmware", fw, "extra"}, exitUsage, ""},
		{"uki without disk", []string{"--firmware", fw, "--uki", notFirmware}, exitUsage, "--uki and --disk go together"},
		{"uki and kernel", []string{"--firmware", fw, "--uki", notFirmware, "--disk", notFirmware, "--kernel", notFirmware}, exitUsage, "one or the other"},
		{"failed boot options without uki", []string{"--firmware", fw, "--failed-boot-options", "1"}, exitUsage, "goes with --uki"},
		{"uki not a PE image", []string{"--firmware", fw, "--uki", notFirmware, "--disk", notFirmware}, exitFailure, "the UKI: not a PE image"},
		{"disk a fifo", []string{"--firmware", fw, "--uki", notFirmware, "--disk", "/dev/zero"}, exitUsage, "--disk: /dev/zero"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runTDX(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, errOut, tc.code, tc.msg)
			}
		})
	}
}

// TestMeasureTDXNotesInJSON: what measure tdx notes on stderr about the
// firmware (no TdTcg2Dxe) is in the --json document too, and only there.
func TestMeasureTDXNotesInJSON(t *testing.T) {
	for _, tc := range []struct {
		file string
		note bool // the firmware lacks TdTcg2Dxe (TestInspectFirmware checks that against UEFIExtract)
	}{
		{"debian-sid_OVMF.amdsev.fd", true},
		{"debian-sid_OVMF.fd", false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			fw := testenv.VectorFile(t, "inputs/"+tc.file)
			code, out, errOut := runTDX(t, "--firmware", fw, "--json")
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, errOut)
			}
			if errOut != "" {
				t.Errorf("--json wrote to stderr: %q", errOut)
			}
			var j struct {
				MRTD  string   `json:"mrtd"`
				Notes []string `json:"notes"`
			}
			if err := json.Unmarshal([]byte(out), &j); err != nil {
				t.Fatal(err)
			}
			if j.MRTD == "" {
				t.Errorf("--json has no mrtd: the report's fields must stay at the top level")
			}
			gotJSON := len(j.Notes) == 1 && strings.Contains(j.Notes[0], "TdTcg2Dxe")
			if gotJSON != tc.note {
				t.Errorf("--json notes = %q, want the TdTcg2Dxe note: %v", j.Notes, tc.note)
			}
			_, _, textErr := runTDX(t, "--firmware", fw)
			if got := strings.Contains(textErr, "TdTcg2Dxe"); got != tc.note {
				t.Errorf("text stderr has the TdTcg2Dxe note: %v, want %v:\n%s", got, tc.note, textErr)
			}
		})
	}
}
