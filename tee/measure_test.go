package tee_test

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
	"github.com/cocobuild/cocobuild/manifest"
)

type snpVector struct {
	ID            string  `json:"id"`
	Mode          string  `json:"mode"`
	VMM           string  `json:"vmm_type"`
	VCPUs         *int    `json:"vcpus"`
	VCPUType      *string `json:"vcpu_type"`
	VCPUSig       *string `json:"vcpu_sig"`
	FMS           any     `json:"vcpu_family_model_stepping"`
	GuestFeatures *string `json:"guest_features"`
	Firmware      string  `json:"firmware"`
	Kernel        *string `json:"kernel"`
	Initrd        *string `json:"initrd"`
	Append        *string `json:"append"`
	Command       string  `json:"command"`
	Expected      string  `json:"expected"`
}

var blockName = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// recipeInputs declares one file input per vector file used, by absolute path.
type recipeInputs struct {
	vectors string
	names   map[string]string
	sb      strings.Builder
}

func (ri *recipeInputs) ref(t *testing.T, rel string) string {
	if n, ok := ri.names[rel]; ok {
		return "input." + n
	}
	n := fmt.Sprintf("f%d", len(ri.names))
	ri.names[rel] = n
	path := filepath.Join(ri.vectors, filepath.FromSlash(rel))
	if filepath.Base(rel) == "null" { // sev-snp-measure's /dev/null: an empty file
		path = filepath.Join(t.TempDir(), "null")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&ri.sb, "input %q {\n  file   = %q\n  sha256 = %q\n}\n\n", n, path, sha(b))
	return "input." + n
}

// TestMeasureBlockMatchesSNPVectors builds a recipe with one measure block
// per golden SEV/SNP vector that a recipe can express and compares the
// manifest's values with the vectors' expected output.
func TestMeasureBlockMatchesSNPVectors(t *testing.T) {
	var doc struct {
		Vectors []snpVector `json:"vectors"`
	}
	if err := json.Unmarshal(testenv.ReadVector(t, "snp.json"), &doc); err != nil {
		t.Fatal(err)
	}
	ri := &recipeInputs{vectors: testenv.Vectors(t), names: map[string]string{}}
	var blocks strings.Builder
	want := map[string]string{} // block name → expected hex
	for _, v := range doc.Vectors {
		if v.VCPUSig != nil || v.FMS != nil || strings.Contains(v.Command, "--snp-ovmf-hash") || strings.Contains(v.Command, "ovmf-hash") {
			continue // expressed through the CLI, not the recipe block
		}
		name := blockName.ReplaceAllString(v.ID, "_")
		fmt.Fprintf(&blocks, "measure %q {\n  tee      = %q\n  firmware = %s\n", name, v.Mode, ri.ref(t, v.Firmware))
		if v.Mode != "sev" {
			if v.VCPUs != nil {
				fmt.Fprintf(&blocks, "  vcpus = %d\n", *v.VCPUs)
			}
			if v.VCPUType != nil {
				fmt.Fprintf(&blocks, "  vcpu_types = [%q]\n", *v.VCPUType)
			}
			fmt.Fprintf(&blocks, "  vmm = %q\n", v.VMM)
			if v.GuestFeatures != nil {
				fmt.Fprintf(&blocks, "  guest_features = %q\n", *v.GuestFeatures)
			}
		}
		if v.Kernel != nil {
			fmt.Fprintf(&blocks, "  kernel = %s\n", ri.ref(t, *v.Kernel))
			if v.Initrd != nil {
				fmt.Fprintf(&blocks, "  initrd = %s\n", ri.ref(t, *v.Initrd))
			}
			if v.Append != nil {
				fmt.Fprintf(&blocks, "  cmdline = %q\n", *v.Append)
			}
		}
		blocks.WriteString("}\n\n")
		exp := v.Expected
		if strings.Contains(v.Command, "base64") {
			b, err := base64.StdEncoding.DecodeString(exp)
			if err != nil {
				t.Fatal(err)
			}
			exp = hex.EncodeToString(b)
		}
		want[name] = exp
	}
	if len(want) < 30 {
		t.Fatalf("only %d SNP vectors expressible as recipe blocks, want at least 30", len(want))
	}
	dir := t.TempDir()
	src := "recipe {\n  name = \"snp-vectors\"\n}\n\n" + ri.sb.String() + blocks.String()
	if err := os.WriteFile(filepath.Join(dir, "v.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := load(t, dir, t.TempDir(), input.Options{}).Build(context.Background(), filepath.Join(dir, "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range res.Manifest.Measurements {
		block, _, _ := strings.Cut(m.Name, "/")
		if _, dup := got[block]; dup {
			t.Errorf("block %s gave more than one entry", block)
		}
		got[block], _ = m.Values["launch_measurement"].(string)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: launch_measurement = %s, want %s", name, got[name], w)
		}
	}
	t.Logf("%d SNP/SEV-ES/SEV vectors checked through recipe blocks", len(want))
}

// TestMeasureBlockMatchesAmdSevVectors builds a recipe with one measure
// block per snp-amdsev.json vector (the full OVMF.amdsev.fd, kernel, initrd
// and cmdline as file inputs) and checks OUT/manifest.json: each entry's
// launch_measurement is sev-snp-measure's, and it covers kernel, initrd and
// cmdline exactly when the vector boots a kernel directly.
func TestMeasureBlockMatchesAmdSevVectors(t *testing.T) {
	var doc struct {
		Vectors []snpVector `json:"vectors"`
	}
	if err := json.Unmarshal(testenv.ReadVector(t, "snp-amdsev.json"), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Vectors) < 5 {
		t.Fatalf("snp-amdsev.json has %d vectors, want 5", len(doc.Vectors))
	}
	ri := &recipeInputs{vectors: testenv.Vectors(t), names: map[string]string{}}
	var blocks strings.Builder
	type expect struct {
		digest string
		covers map[string]any
	}
	want := map[string]expect{}
	for _, v := range doc.Vectors {
		if v.Mode != "snp" || v.VCPUs == nil || v.VCPUType == nil || v.GuestFeatures == nil {
			t.Fatalf("vector %s: want an snp vector with vcpus, vcpu_type and guest_features", v.ID)
		}
		name := blockName.ReplaceAllString(v.ID, "_")
		fmt.Fprintf(&blocks, "measure %q {\n  tee            = \"snp\"\n  firmware       = %s\n  vcpus          = %d\n  vcpu_types     = [%q]\n  vmm            = %q\n  guest_features = %q\n",
			name, ri.ref(t, v.Firmware), *v.VCPUs, *v.VCPUType, v.VMM, *v.GuestFeatures)
		direct := v.Kernel != nil
		if direct {
			fmt.Fprintf(&blocks, "  kernel         = %s\n", ri.ref(t, *v.Kernel))
			if v.Initrd != nil {
				fmt.Fprintf(&blocks, "  initrd         = %s\n", ri.ref(t, *v.Initrd))
			}
			if v.Append != nil {
				fmt.Fprintf(&blocks, "  cmdline        = %q\n", *v.Append)
			}
		}
		blocks.WriteString("}\n\n")
		want[name] = expect{v.Expected, map[string]any{"firmware": true, "kernel": direct, "initrd": direct, "cmdline": direct}}
	}
	dir := t.TempDir()
	src := "recipe {\n  name = \"amdsev-vectors\"\n}\n\n" + ri.sb.String() + blocks.String()
	if err := os.WriteFile(filepath.Join(dir, "v.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if _, err := load(t, dir, t.TempDir(), input.Options{}).Build(context.Background(), out, 2, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Measurements []struct {
			Name   string         `json:"name"`
			Params map[string]any `json:"params"`
			Values map[string]any `json:"values"`
		} `json:"measurements"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range m.Measurements {
		block, _, _ := strings.Cut(e.Name, "/")
		w, ok := want[block]
		if !ok {
			t.Errorf("manifest entry %s: no such vector", e.Name)
			continue
		}
		if seen[block] {
			t.Errorf("block %s gave more than one entry", block)
		}
		seen[block] = true
		if got := e.Values["launch_measurement"]; got != w.digest {
			t.Errorf("%s: launch_measurement = %v, want %s", e.Name, got, w.digest)
		}
		if diff := cmp.Diff(w.covers, e.Params["covers"]); diff != "" {
			t.Errorf("%s: covers (-want +got):\n%s", e.Name, diff)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("manifest has entries for %d of the %d vectors", len(seen), len(want))
	}
}

// TestMeasureBlockMatchesTDXVectors checks MRTD (both page orders) and the
// direct-boot RTMR1/RTMR2 variants of tdx.json through a recipe.
func TestMeasureBlockMatchesTDXVectors(t *testing.T) {
	var doc struct {
		Vectors []struct {
			ID       string         `json:"id"`
			Kind     string         `json:"kind"`
			Params   map[string]any `json:"params"`
			Expected map[string]any `json:"expected"`
			Inputs   []struct {
				Path string `json:"path"`
			} `json:"inputs"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(testenv.ReadVector(t, "tdx.json"), &doc); err != nil {
		t.Fatal(err)
	}
	ri := &recipeInputs{vectors: testenv.Vectors(t), names: map[string]string{}}
	fw := ri.ref(t, "inputs/debian12_OVMF.fd")
	var blocks strings.Builder
	type check struct{ name, reg, want string }
	var checks []check
	for _, v := range doc.Vectors {
		switch {
		case strings.HasPrefix(v.ID, "mrtd-"):
			order := "single-pass"
			if strings.HasSuffix(v.ID, "two-pass") {
				order = "two-pass"
			}
			name := blockName.ReplaceAllString(v.ID, "_")
			fmt.Fprintf(&blocks, "measure %q {\n  tee = \"tdx\"\n  firmware = %s\n  assume_rtmr_measurement = true\n  page_orders = [%q]\n}\n\n", name, fw, order)
			checks = append(checks, check{name + "/memory=2G,qemu=10.2,order=" + order + ",separator=current", "mrtd", v.Expected["mrtd"].(string)})
		case strings.HasPrefix(v.ID, "direct-boot-"):
			name := blockName.ReplaceAllString(v.ID, "_")
			mem := fmt.Sprintf("%dM", int64(v.Params["guest_memory_bytes"].(float64))>>20)
			fmt.Fprintf(&blocks, "measure %q {\n  tee = \"tdx\"\n  firmware = %s\n  assume_rtmr_measurement = true\n  kernel = %s\n  cmdline = %q\n", name, fw,
				ri.ref(t, v.Inputs[0].Path), v.Params["cmdline_as_passed_to_qemu_append"])
			if len(v.Inputs) > 1 {
				fmt.Fprintf(&blocks, "  initrd = %s\n", ri.ref(t, v.Inputs[1].Path))
			}
			fmt.Fprintf(&blocks, "  memory = [%q]\n  qemu_versions = [\"10.2\", \"9.2\"]\n  tdvf_separators = [\"current\", \"legacy\"]\n}\n\n", mem)
			base := name + "/memory=" + mem
			e := func(k string) string { return v.Expected[k].(string) }
			checks = append(checks,
				check{base + ",qemu=10.2,order=single-pass,separator=current", "rtmr1", e("rtmr1_qemu_ge_10_2_unpatched_kernel")},
				check{base + ",qemu=9.2,order=single-pass,separator=current", "rtmr1", e("rtmr1_qemu_lt_10_2_patched_kernel")},
				check{base + ",qemu=9.2,order=single-pass,separator=legacy", "rtmr1", e("rtmr1_qemu_lt_10_2_patched_kernel_legacy_tdvf_separator_in_rtmr0")},
				check{base + ",qemu=10.2,order=single-pass,separator=legacy", "rtmr1", e("rtmr1_qemu_ge_10_2_unpatched_kernel_legacy_tdvf_separator_in_rtmr0")},
				check{base + ",qemu=10.2,order=single-pass,separator=current", "rtmr2", e("rtmr2_linux_ge_6_9_efistub")},
			)
		}
	}
	if len(checks) < 20 {
		t.Fatalf("only %d TDX checks, want at least 20", len(checks))
	}
	dir := t.TempDir()
	src := "recipe {\n  name = \"tdx-vectors\"\n}\n\n" + ri.sb.String() + blocks.String()
	if err := os.WriteFile(filepath.Join(dir, "v.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := load(t, dir, t.TempDir(), input.Options{}).Build(context.Background(), filepath.Join(dir, "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]any{}
	for _, m := range res.Manifest.Measurements {
		got[m.Name] = m.Values
	}
	for _, c := range checks {
		vals, ok := got[c.name]
		if !ok {
			t.Errorf("no measurement %s", c.name)
			continue
		}
		if vals[c.reg] != c.want {
			t.Errorf("%s: %s = %v, want %s", c.name, c.reg, vals[c.reg], c.want)
		}
	}
	// assume_rtmr_measurement is recorded in every entry.
	for _, m := range res.Manifest.Measurements {
		as, _ := m.Params["assumptions"].([]any)
		if len(as) != 1 || !strings.Contains(fmt.Sprint(as[0]), "TdTcg2Dxe") || !strings.Contains(fmt.Sprint(as[0]), "assume_rtmr_measurement") {
			t.Errorf("%s: params.assumptions = %v, want the firmware's missing TdTcg2Dxe and assume_rtmr_measurement", m.Name, m.Params["assumptions"])
		}
	}
	// Each entry's event log is an artifact of the output.
	for _, a := range res.Manifest.Artifacts {
		if a.Kind == "eventlog" {
			if _, err := os.Stat(filepath.Join(dir, "out", a.Path)); err != nil {
				t.Errorf("event log %s: %v", a.Path, err)
			}
		}
	}
	t.Logf("%d TDX register values checked through recipe blocks", len(checks))
}

func TestMeasureBlockErrors(t *testing.T) {
	ri := &recipeInputs{vectors: testenv.Vectors(t), names: map[string]string{}}
	fw := ri.ref(t, "inputs/debian12_OVMF.fd")
	k := ri.ref(t, "inputs/tiny-kernel.bin")
	nometa := ri.ref(t, "inputs/debian12_OVMF_CODE_4M.fd")
	// Inputs that are no firmware: one random byte, and a sparse file over
	// the firmware limit (64MiB) that the step refuses before reading it.
	own := t.TempDir()
	oneByte := filepath.Join(own, "one-byte.fd")
	if err := os.WriteFile(oneByte, []byte{0x5a}, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(own, "big.fd")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 64<<20+4096); err != nil {
		t.Fatal(err)
	}
	bigSum := sha256.New()
	if _, err := io.Copy(bigSum, io.LimitReader(zeros{}, 64<<20+4096)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&ri.sb, "input \"onebyte\" {\n  file   = %q\n  sha256 = %q\n}\n\n", oneByte, sha([]byte{0x5a}))
	fmt.Fprintf(&ri.sb, "input \"big\" {\n  file   = %q\n  sha256 = %q\n}\n\n", big, hex.EncodeToString(bigSum.Sum(nil)))
	tests := []struct{ name, block, want string }{
		{"sev on one byte", "measure \"sev\" {\n firmware = input.onebyte\n}", "sev mode: the firmware is not a UEFI firmware image"},
		{"firmware over the limit", "measure \"sev\" {\n firmware = input.big\n}", "65540KiB is over the firmware limit of 64MiB (size of a firmware image (OVMF .fd)): if the input is trusted, raise it with --limit firmware=65MiB"},
		{"unknown tee", "measure \"x\" {\n firmware = " + fw + "\n}", "Unknown TEE"},
		{"tdx attr on snp", "measure \"snp\" {\n firmware = " + fw + "\n memory = \"2G\"\n}", "memory applies to tdx"},
		{"bad cpu", "measure \"snp\" {\n firmware = " + fw + "\n vcpu_types = [\"EPYC-Zen9\"]\n}", "EPYC-Milan"},
		{"cmdline without kernel", "measure \"tdx\" {\n firmware = " + fw + "\n cmdline = \"x\"\n}", "cmdline without kernel"},
		{"bad memory", "measure \"tdx\" {\n firmware = " + fw + "\n memory = [\"lots\"]\n}", "not a memory size"},
		{"kernel without hashes table", "measure \"snp\" {\n firmware = " + fw + "\n kernel = " + k + "\n}", "hashes table"},
		{"snp without metadata", "measure \"snp\" {\n firmware = " + nometa + "\n}", "metadata"},
		{"snp policy without bit 17", "measure \"snp\" {\n firmware = " + fw + "\n policy = \"0x10000\"\n}", "bit 17 (0x20000) is reserved and must be set"},
		{"seves policy without ES", "measure \"seves\" {\n firmware = " + fw + "\n policy = \"0x1\"\n}", "bit 2 (0x4, ES required) must be set"},
		{"policy on tdx", "measure \"tdx\" {\n firmware = " + fw + "\n policy = \"0x30000\"\n}", "policy applies to snp, seves and sev"},
		{"seves_features on snp", "measure \"snp\" {\n firmware = " + fw + "\n seves_features = \"0x20\"\n}", "applies to seves measurements, not snp"},
		{"tdx on a firmware that does not measure into RTMRs", "measure \"tdx\" {\n firmware = " + fw + "\n}", "has no CC measurement driver (TdTcg2Dxe"},
		{"vcpus without acpi_qemu", "measure \"tdx\" {\n firmware = " + fw + "\n vcpus = [1, 2]\n}", "vcpus without acpi_qemu"},
		{"acpi_qemu names no QEMU", "measure \"tdx\" {\n firmware = " + fw + "\n kernel = " + k + "\n acpi_qemu = \"/nonexistent/qemu-system-x86_64\"\n}", "acpi_qemu: exec: \"/nonexistent/qemu-system-x86_64\""},
		{"acpi_qemu without kernel", "measure \"tdx\" {\n firmware = " + fw + "\n acpi_qemu = \"qemu-system-x86_64\"\n}", "acpi_qemu without kernel"},
		{"uki without disk", "measure \"tdx\" {\n firmware = " + fw + "\n uki = " + k + "\n}", "uki without disk"},
		{"disk without uki", "measure \"tdx\" {\n firmware = " + fw + "\n disk = " + k + "\n}", "disk without uki"},
		{"kernel beside uki", "measure \"tdx\" {\n firmware = " + fw + "\n kernel = " + k + "\n uki = " + k + "\n disk = " + k + "\n}", "kernel beside uki"},
		{"failed_boot_options without uki on tdx", "measure \"tdx\" {\n firmware = " + fw + "\n failed_boot_options = 1\n}", "failed_boot_options without uki"},
		{"failed_boot_options out of range on tdx", "measure \"tdx\" {\n firmware = " + fw + "\n uki = " + k + "\n disk = " + k + "\n failed_boot_options = 17\n}", "Invalid failed_boot_options"},
		{"failed_boot_options out of range on tpm", "measure \"tpm\" {\n uki = " + k + "\n failed_boot_options = -1\n}", "Invalid failed_boot_options"},
		{"tdx disk without a GPT", "measure \"tdx\" {\n firmware = " + fw + "\n assume_rtmr_measurement = true\n uki = " + k + "\n disk = " + k + "\n}", "no GPT header at LBA 1: give the raw image"},
		{"xfam on snp", "measure \"snp\" {\n firmware = " + fw + "\n xfam = \"0x61ae7\"\n}", "xfam applies to tdx"},
		{"xfam not hex", "measure \"tdx\" {\n firmware = " + fw + "\n assume_rtmr_measurement = true\n xfam = \"avx\"\n}", "xfam \"avx\" is not a 64-bit hex number"},
		{"SNPActive in seves_features", "measure \"seves\" {\n firmware = " + fw + "\n seves_features = [\"0x20\", \"0x21\"]\n}", "seves_features[1]: \"0x21\" has SNPActive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := ri.sb.String() + tc.block + "\n"
			if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := builder.Load(dir, testkinds.LoadOptions(t.TempDir(), input.Options{}))
			if err == nil {
				_, err = l.Build(context.Background(), filepath.Join(dir, "out"), 1, nil)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestMeasureBlockSEVESFeatures checks seves_features against the digests
// sev-snp-measure's seves code computed with those SEV_FEATURES
// (measure/sev/testdata/seves-features.json), and that leaving it out keeps
// the entry names and values of before.
func TestMeasureBlockSEVESFeatures(t *testing.T) {
	want := map[string]string{ // from measure/sev/testdata/seves-features.json
		"0x0":  "5bcbb5a45e7a9fa4699b6cc8f775382a810ff5a0186d3b90069ba28b1840b38f",
		"0x20": "7dc5af242f4dfc52d4ee7326660e2b90f6975de766f0f31b03fbe9b905dbdb77",
	}
	ri := &recipeInputs{vectors: testenv.Vectors(t), names: map[string]string{}}
	fw := ri.ref(t, "inputs/debian12_OVMF.fd")
	dir := t.TempDir()
	src := "recipe {\n  name = \"seves\"\n}\n\n" + ri.sb.String() +
		"measure \"seves\" {\n  firmware = " + fw + "\n  seves_features = [\"0x0\", \"0x20\"]\n}\n\n" +
		"measure \"plain\" {\n  tee = \"seves\"\n  firmware = " + fw + "\n  guest_features = \"0x21\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := load(t, dir, t.TempDir(), input.Options{}).Build(context.Background(), filepath.Join(dir, "out"), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range res.Manifest.Measurements {
		got[m.Name], _ = m.Values["launch_measurement"].(string)
	}
	wantEntries := map[string]string{
		"seves/vcpus=1,cpu=EPYC-v4,vmm=QEMU,gf=0x1,seves_features=0x0":  want["0x0"],
		"seves/vcpus=1,cpu=EPYC-v4,vmm=QEMU,gf=0x1,seves_features=0x20": want["0x20"],
		"plain/vcpus=1,cpu=EPYC-v4,vmm=QEMU,gf=0x21":                    want["0x0"], // guest_features is ignored in seves, as sev-snp-measure ignores it
	}
	if diff := cmp.Diff(wantEntries, got); diff != "" {
		t.Errorf("measurements (-want +got):\n%s", diff)
	}
}

// TestMeasureBlockTDXCoverage checks params.covers of TDX entries built
// from recipe blocks: the firmware alone without a kernel; the whole guest
// with a kernel and initrd on a firmware whose RTMRs are computed.
func TestMeasureBlockTDXCoverage(t *testing.T) {
	ri := &recipeInputs{vectors: testenv.Vectors(t), names: map[string]string{}}
	fw := ri.ref(t, "inputs/debian-sid_OVMF.fd")
	kernel, initrd := ri.ref(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64"), ri.ref(t, "inputs/initrd-a.cpio")
	unmeasured := ri.ref(t, "inputs/debian12_OVMF.fd") // no TdTcg2Dxe
	src := "recipe {\n  name = \"tdx-coverage\"\n}\n\n" + ri.sb.String() + fmt.Sprintf(`
measure "fwonly" {
  tee      = "tdx"
  firmware = %s
}

measure "direct" {
  tee      = "tdx"
  firmware = %s
  kernel   = %s
  initrd   = %s
  cmdline  = "console=ttyS0"
}

measure "assumed" {
  tee                     = "tdx"
  firmware                = %s
  kernel                  = %s
  initrd                  = %s
  cmdline                 = "console=ttyS0"
  assume_rtmr_measurement = true
}
`, fw, fw, kernel, initrd, unmeasured, kernel, initrd)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := load(t, dir, t.TempDir(), input.Options{}).Build(context.Background(), filepath.Join(dir, "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Read back as publish does: manifest.json's JSON.
	b, err := os.ReadFile(filepath.Join(dir, "out", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Measurements []struct {
			Name   string         `json:"name"`
			Params map[string]any `json:"params"`
		} `json:"measurements"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	got := map[string]manifest.Coverage{}
	for _, e := range m.Measurements {
		c, err := manifest.CoverageParam(e.Params)
		if err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		got[strings.SplitN(e.Name, "/", 2)[0]] = c
	}
	// Without QEMU's ACPI tables RTMR0 is not computed: the firmware's
	// configuration (variable store, ACPI tables) is not covered; with
	// assume_rtmr_measurement nothing past MRTD is.
	want := map[string]manifest.Coverage{
		"fwonly":  {},
		"direct":  {Kernel: true, Initrd: true, Cmdline: true},
		"assumed": {},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("covers (-want +got):\n%s", diff)
	}
	if len(res.Manifest.Measurements) != 3 {
		t.Errorf("%d measurements, want 3", len(res.Manifest.Measurements))
	}
}

// TestMeasureBlockTDXPolicyValues checks the values Trustee's default
// policy matches beyond the registers: tdvfkernel (the kernel event's
// digest, the kernel's Authenticode SHA-384 as the golden vector has it,
// QEMU-patched before 10.2), tdvfkernelparams (SHA-384 of LoadOptions) and
// the declared xfam as the quote reports it.
func TestMeasureBlockTDXPolicyValues(t *testing.T) {
	var doc struct {
		Vectors []struct {
			ID       string         `json:"id"`
			Expected map[string]any `json:"expected"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(testenv.ReadVector(t, "tdx.json"), &doc); err != nil {
		t.Fatal(err)
	}
	var exp map[string]any
	for _, v := range doc.Vectors {
		if v.ID == "direct-boot-c1-noinitrd" {
			exp = v.Expected
		}
	}
	if exp == nil {
		t.Fatal("no vector direct-boot-c1-noinitrd")
	}
	ri := &recipeInputs{vectors: testenv.Vectors(t), names: map[string]string{}}
	fw := ri.ref(t, "inputs/debian12_OVMF.fd")
	k := ri.ref(t, "inputs/vmlinuz-6.1.0-56-cloud-amd64")
	dir := t.TempDir()
	src := "recipe {\n  name = \"tdx-policy\"\n}\n\n" + ri.sb.String() +
		"measure \"tdx\" {\n  firmware = " + fw + "\n  kernel = " + k + "\n  cmdline = \"console=ttyS0\"\n  assume_rtmr_measurement = true\n" +
		"  qemu_versions = [\"10.2\", \"9.2\"]\n  xfam = \"0x61AE7\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := load(t, dir, t.TempDir(), input.Options{}).Build(context.Background(), filepath.Join(dir, "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	lo := sha512.Sum384([]byte("c\x00o\x00n\x00s\x00o\x00l\x00e\x00=\x00t\x00t\x00y\x00S\x000\x00\x00\x00"))
	want := map[string]map[string]any{
		"tdx/memory=2G,qemu=10.2,order=single-pass,separator=current": {"tdvfkernel": exp["kernel_authenticode_sha384_unpatched"],
			"tdvfkernelparams": hex.EncodeToString(lo[:]), "xfam": "e71a060000000000"},
		"tdx/memory=2G,qemu=9.2,order=single-pass,separator=current": {"tdvfkernel": exp["kernel_authenticode_sha384_qemu_patched"],
			"tdvfkernelparams": hex.EncodeToString(lo[:]), "xfam": "e71a060000000000"},
	}
	got := map[string]map[string]any{}
	for _, m := range res.Manifest.Measurements {
		got[m.Name] = map[string]any{"tdvfkernel": m.Values["tdvfkernel"], "tdvfkernelparams": m.Values["tdvfkernelparams"], "xfam": m.Values["xfam"]}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TDX policy values (-want +got):\n%s", diff)
	}
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
