package cca_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/internal/testkinds"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/publish"
	"github.com/cocobuild/cocobuild/tee/cca"
)

// ccaVector is the part of a cca.json vector a recipe needs.
type ccaVector struct {
	ID       string            `json:"id"`
	Host     []string          `json:"host"`
	VMMArgs  []string          `json:"vmm_args"`
	Kernel   *string           `json:"kernel"`
	Initrd   *string           `json:"initrd"`
	Firmware *string           `json:"firmware"`
	DTB      string            `json:"dtb"`
	Expected map[string]string `json:"expected"`
}

// TestMeasureBlockMatchesCCAVectors builds a recipe with one measure block
// per vector of cca.json (host options as attributes, the VMM's arguments
// as vmm_args) and compares each entry's RIM, at its hash size, with the
// vector's; the RVPS message then holds it in base64 under the name
// Trustee's CCA policy reads.
func TestMeasureBlockMatchesCCAVectors(t *testing.T) {
	var doc struct {
		Vectors []ccaVector `json:"vectors"`
	}
	if err := json.Unmarshal(testenv.ReadVector(t, "cca.json"), &doc); err != nil {
		t.Fatal(err)
	}
	vectors := testenv.Vectors(t)
	var src, blocks strings.Builder
	src.WriteString("recipe {\n  name = \"cca-vectors\"\n}\n\n")
	inputs := map[string]string{}
	ref := func(rel string) string {
		if n, ok := inputs[rel]; ok {
			return "input." + n
		}
		n := fmt.Sprintf("f%d", len(inputs))
		inputs[rel] = n
		p := filepath.Join(vectors, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		fmt.Fprintf(&src, "input %q {\n  file   = %q\n  sha256 = %q\n}\n\n", n, p, hex.EncodeToString(s[:]))
		return "input." + n
	}
	want, dtbs := map[string]string{}, map[string]string{}
	for _, v := range doc.Vectors {
		name := strings.ReplaceAll(v.ID, ".", "_")
		fmt.Fprintf(&blocks, "measure %q {\n  tee = \"cca\"\n  vmm = %q\n  vmm_args = %s\n", name, v.VMMArgs[0], hclList(v.VMMArgs[1:]))
		// The DTBs are generated (and must be the vector's), but the
		// -bios vector's, which is given.
		if v.ID != "qemu-bios-2cpu-1G" {
			dtbs[name] = v.DTB
		} else {
			fmt.Fprintf(&blocks, "  dtb = %s\n", ref(v.DTB))
		}
		// The vectors' QEMU command lines load no kernel (no -kernel):
		// realm-measurements then measures none, and a recipe is given
		// only the images its VMM loads.
		loads := func(opt string) bool { return v.VMMArgs[0] == "kvmtool" || slices.Contains(v.VMMArgs, opt) }
		for _, f := range []struct {
			attr string
			path *string
			opt  string
		}{{"kernel", v.Kernel, "-kernel"}, {"initrd", v.Initrd, "-initrd"}, {"firmware", v.Firmware, "-bios"}} {
			if f.path != nil && loads(f.opt) {
				fmt.Fprintf(&blocks, "  %s = %s\n", f.attr, ref(*f.path))
			}
		}
		for i := 0; i+1 < len(v.Host); i += 2 {
			fmt.Fprintf(&blocks, "  %s = %s\n", strings.ReplaceAll(strings.TrimPrefix(v.Host[i], "--"), "-", "_"), v.Host[i+1])
		}
		blocks.WriteString("}\n\n")
		// The RIM at its hash size: the tool prints SHA-256 values padded.
		rim := v.Expected["rim"]
		if strings.HasSuffix(rim, strings.Repeat("0", 64)) && !strings.Contains(v.ID, "sha512") {
			rim = rim[:64]
		}
		want[name] = rim
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "v.hcl"), []byte(src.String()+blocks.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := testkinds.Load(t, dir, t.TempDir(), input.Options{}).Build(context.Background(), filepath.Join(dir, "out"), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]manifest.Measurement{}
	for _, m := range res.Manifest.Measurements {
		got[m.Name] = m
	}
	if len(got) != len(want) {
		t.Errorf("%d measurements, want %d", len(got), len(want))
	}
	var entries []publish.Entry
	for name, rim := range want {
		m, ok := got[name]
		if !ok {
			t.Errorf("no measurement %s", name)
			continue
		}
		if m.Values["rim"] != rim {
			t.Errorf("%s: rim = %v, want %s (realm-measurements)", name, m.Values["rim"], rim)
		}
		cov, err := manifest.CoverageParam(m.Params)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		k := strings.HasPrefix(name, "kvmtool-k-i")
		wantCov := manifest.Coverage{Firmware: true, Kernel: k, Initrd: k, Cmdline: k}
		if cov != wantCov {
			t.Errorf("%s: covers %+v, want %+v", name, cov, wantCov)
		}
		entries = append(entries, publish.Entry{TEE: m.TEE, Name: m.Name, Values: map[string]string{"rim": rim}})
	}
	if len(dtbs) < 4 {
		t.Fatalf("%d generated DTBs, want 4", len(dtbs))
	}
	for name, rel := range dtbs {
		got, err := os.ReadFile(filepath.Join(dir, "out", "measure", name, "dtb"))
		if err != nil {
			t.Errorf("%s: the generated DTB is not in the output: %v", name, err)
			continue
		}
		if !bytes.Equal(got, testenv.ReadVector(t, rel)) {
			t.Errorf("%s: the generated DTB differs from realm-measurements' %s", name, rel)
		}
	}
	p, err := publish.RVPSPayload(&publish.Release{Namespace: "test", Version: "1.0.0", Entries: entries}, testkinds.TEEs())
	if err != nil {
		t.Fatal(err)
	}
	list, _ := p[cca.RVPSPolicyName].([]string)
	for _, e := range entries {
		b, _ := hex.DecodeString(e.Values["rim"])
		found := false
		for _, s := range list {
			found = found || s == base64.StdEncoding.EncodeToString(b)
		}
		if !found {
			t.Errorf("RVPS %s = %v lacks %s's RIM in base64", cca.RVPSPolicyName, list, e.Name)
		}
	}
}

func hclList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// TestMeasureBlockErrors checks that a cca block that would publish a RIM
// no realm reaches is refused, saying what to change.
func TestMeasureBlockErrors(t *testing.T) {
	vectors := testenv.Vectors(t)
	var decl strings.Builder
	ref := func(name, rel string) string {
		p := filepath.Join(vectors, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		fmt.Fprintf(&decl, "input %q {\n  file   = %q\n  sha256 = %q\n}\n\n", name, p, hex.EncodeToString(s[:]))
		return "input." + name
	}
	k, dtb := ref("k", "inputs/cca-linux.bin"), ref("dtb", "inputs/cca/kvmtool-fw-1cpu-512M.dtb")
	kiDTB := ref("kidtb", "inputs/cca/kvmtool-k-i-2cpu-1G.dtb")
	const kvm = "  vmm = \"kvmtool\"\n  num_bps = 6\n  num_wps = 6\n"
	for _, tc := range []struct{ name, block, want string }{
		{"kernel not loaded", "measure \"cca\" {\n" + kvm + "  vmm_args = [\"--realm\", \"-c\", \"1\", \"-m\", \"512M\"]\n  dtb = " + dtb + "\n  kernel = " + k + "\n}", "kernel not loaded by vmm_args"},
		{"no vmm", "measure \"cca\" {\n  vmm_args = [\"--realm\"]\n  dtb = " + dtb + "\n}", "vmm = \"qemu\" or \"kvmtool\""},
		{"bad vmm", "measure \"cca\" {\n  vmm = \"crosvm\"\n  vmm_args = [\"--realm\"]\n  dtb = " + dtb + "\n}", "Invalid vmm"},
		{"vcpus", "measure \"cca\" {\n" + kvm + "  vmm_args = [\"--realm\", \"-c\", \"1\", \"-m\", \"512M\"]\n  dtb = " + dtb + "\n  vcpus = 2\n}", "vcpus not for this TEE"},
		{"bad breakpoints", "measure \"cca\" {\n  vmm = \"kvmtool\"\n  num_bps = 1\n  num_wps = 6\n  vmm_args = [\"--realm\", \"-c\", \"1\", \"-m\", \"512M\"]\n  dtb = " + dtb + "\n}", "breakpoints: want 2-64"},
		{"dtb of another initrd", "measure \"cca\" {\n" + kvm + "  vmm_args = [\"--realm\", \"-c\", \"2\", \"-m\", \"1G\", \"-k\", \"K\", \"-i\", \"I\"]\n  dtb = " + kiDTB + "\n  kernel = " + k + "\n  initrd = " + k + "\n}", "give the DTB the VMM generates"},
		{"cmdline not in the DTB", "measure \"cca\" {\n" + kvm + "  vmm_args = [\"--realm\", \"-c\", \"1\", \"-m\", \"512M\", \"-k\", \"K\"]\n  dtb = " + dtb + "\n  kernel = " + k + "\n  cmdline = \"quiet\"\n}", "do not hold the kernel's cmdline"},
		{"tdx attribute", "measure \"cca\" {\n" + kvm + "  vmm_args = [\"--realm\"]\n  dtb = " + dtb + "\n  memory = \"1G\"\n}", "memory applies to tdx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(decl.String()+tc.block+"\n"), 0o644); err != nil {
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
