package tdx

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/internal/testenv"
	"github.com/cocobuild/cocobuild/manifest"
	"github.com/cocobuild/cocobuild/measure/ovmf"
	model "github.com/cocobuild/cocobuild/measure/tdx"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/tee"
)

// TestStepKeyFollowsModelVersions: the measure step's version names the
// step format and the models it uses (tdx, ovmf, pe), so that bumping any
// of them gives a new step key.
func TestStepKeyFollowsModelVersions(t *testing.T) {
	bump := map[string]func(*models){
		"tdx":  func(m *models) { m.TDX += "+1" },
		"ovmf": func(m *models) { m.OVMF += "+1" },
		"pe":   func(m *models) { m.PE += "+1" },
	}
	n := &node{Block: &tee.Block{Name: "tdx", TEE: "tdx", Firmware: recipes.Artifact{SHA256: "aa"}, VCPUs: []int{1}}}
	steps := n.Steps()
	if len(steps) != 1 {
		t.Fatalf("got %d steps, want 1", len(steps))
	}
	if got, want := steps[0].Version, stepVersion(currentModels); got != want || !strings.HasPrefix(got, "step="+tee.StepFormat+",") {
		t.Errorf("step version = %q, want %q (the step format and the packages' ModelVersion)", got, want)
	}
	base, err := builder.StepKey(steps[0], 0, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range bump {
		m := currentModels
		f(&m)
		s := *steps[0]
		s.Version = stepVersion(m)
		k, err := builder.StepKey(&s, 0, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if k == base {
			t.Errorf("bumping the %s model version: got the same key %s, want a new one", name, k)
		}
	}
}

func TestTDXCoverage(t *testing.T) {
	d := model.Digest{}
	all := manifest.Coverage{Firmware: true, Kernel: true, Initrd: true, Cmdline: true}
	cases := []struct {
		name     string
		rep      model.Report
		direct   bool
		measures bool
		want     manifest.Coverage
	}{
		{"no direct boot", model.Report{RTMR0: &d, RTMR1: &d, RTMR2: &d}, false, true, manifest.Coverage{Firmware: true}},
		{"all registers", model.Report{RTMR0: &d, RTMR1: &d, RTMR2: &d}, true, true, all},
		{"RTMR0 not computable", model.Report{RTMR1: &d, RTMR2: &d}, true, true, manifest.Coverage{Kernel: true, Initrd: true, Cmdline: true}},
		{"RTMR2 not computable", model.Report{RTMR0: &d, RTMR1: &d}, true, true, manifest.Coverage{Firmware: true, Kernel: true}},
		{"RTMR1 not computable", model.Report{RTMR0: &d, RTMR2: &d}, true, true, manifest.Coverage{Firmware: true, Initrd: true, Cmdline: true}},
		{"firmware does not measure into RTMRs", model.Report{RTMR0: &d, RTMR1: &d, RTMR2: &d}, true, false, manifest.Coverage{}},
	}
	for _, c := range cases {
		if got := coverage(c.rep, c.direct, c.measures); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestCheckXFAM(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"0x61ae7", "e71a060000000000", ""},
		{"0X3", "0300000000000000", ""},
		{"2e7", "e702000000000000", ""},
		{"0x61ae4", "", "bits 0 and 1"},
		{"lots", "", "not a 64-bit hex number"},
		{"0x", "", "not a 64-bit hex number"},
		{"0x1ffffffffffffffff", "", "not a 64-bit hex number"},
	} {
		got, err := checkXFAM(c.in)
		if got != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("checkXFAM(%q) = %q, %v; want %q, error containing %q", c.in, got, err, c.want, c.err)
		}
	}
}

// TestSecureBootVariablesFromFirmware: a TD booted with Debian's
// OVMF.inteltdx.ms.fd measures the PK, KEK, db and dbx its variable store
// enrolls (and SecureBoot = 1); the generic OVMF.fd enrolls none.
func TestSecureBootVariablesFromFirmware(t *testing.T) {
	for _, tc := range []struct {
		file string
		want bool
	}{{"inputs/debian-sid_OVMF.inteltdx.ms.fd", true}, {"inputs/debian-sid_OVMF.fd", false}, {"inputs/debian12_OVMF.fd", false}} {
		info, err := ovmf.Inspect(testenv.ReadVector(t, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		sb := secureBootVariables(info)
		if !tc.want {
			if sb != nil {
				t.Errorf("%s: Secure Boot variables %+v, want none (no keys enrolled)", tc.file, sb)
			}
			continue
		}
		if sb == nil {
			t.Fatalf("%s: no Secure Boot variables, want PK, KEK, db, dbx", tc.file)
		}
		if !bytes.Equal(sb.SecureBoot, []byte{1}) {
			t.Errorf("%s: SecureBoot = %x, want 01", tc.file, sb.SecureBoot)
		}
		// Each database is an EFI_SIGNATURE_LIST: its SignatureListSize
		// (bytes 16-19) fits in the data.
		for name, d := range map[string][]byte{"PK": sb.PK, "KEK": sb.KEK, "db": sb.DB, "dbx": sb.DBX} {
			if len(d) < 28 || int(binary.LittleEndian.Uint32(d[16:])) > len(d) {
				t.Errorf("%s: %s is %d bytes, not an EFI_SIGNATURE_LIST", tc.file, name, len(d))
			}
		}
	}
}
