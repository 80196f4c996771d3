package tee_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testkinds"
	"github.com/cocobuild/cocobuild/measure/sev"
)

// TestVCPUTypesError: an unknown vcpu_types entry is reported at that entry
// (or at the expression that gives the list), with a likely correction and
// the type names a recipe can give; never a CPUID signature or a
// family/model/stepping, which the measure block does not take.
func TestVCPUTypesError(t *testing.T) {
	known := " vcpu_types takes QEMU CPU model names: " + strings.Join(sev.CPUTypes(), ", ") + "."
	tests := []struct {
		name  string
		value string   // the vcpu_types expression, on line 12 from column 16
		want  []string // "line:col detail" of each diagnostic
	}{
		{"typo in a list", `["EPYC-Milan", "EPYC-Genao"]`,
			[]string{`12:31 vcpu_types[1]: "EPYC-Genao" is not a vCPU type; did you mean "EPYC-Genoa"?` + known}},
		{"wrong case, one value", `"epyc-v4"`,
			[]string{`12:16 vcpu_types: "epyc-v4" is not a vCPU type; did you mean "EPYC-v4"?` + known}},
		{"unknown, nothing close", `["Zen9"]`,
			[]string{`12:17 vcpu_types[0]: "Zen9" is not a vCPU type.` + known}},
		{"two wrong", `["EPYC-Rome", "EPYC-Genoa-v2", "Turin"]`, []string{
			`12:30 vcpu_types[1]: "EPYC-Genoa-v2" is not a vCPU type; did you mean "EPYC-Genoa-v1"?` + known,
			`12:47 vcpu_types[2]: "Turin" is not a vCPU type.` + known}},
		{"from a variable", `var.cpus`,
			[]string{`12:16 vcpu_types[1]: "EPYC-milan-v2" is not a vCPU type; did you mean "EPYC-Milan-v2"?` + known}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fw := []byte("firmware bytes\n")
			if err := os.WriteFile(filepath.Join(dir, "fw.bin"), fw, 0o644); err != nil {
				t.Fatal(err)
			}
			src := fmt.Sprintf(`recipe {
  name = "cpus"
}
variable "cpus" {
  default = ["EPYC-Milan", "EPYC-milan-v2"]
}
input "fw" {
  file   = "fw.bin"
  sha256 = %q
}
measure "snp" {
  vcpu_types = %s
  firmware   = input.fw
}
`, sha(fw), tc.value)
			if err := os.WriteFile(filepath.Join(dir, "r.hcl"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := builder.Load(dir, testkinds.LoadOptions(t.TempDir(), input.Options{}))
			var de *builder.DiagError
			if !errors.As(err, &de) {
				t.Fatalf("Load: %v, want recipe diagnostics", err)
			}
			var got []string
			for _, d := range de.Diags {
				if d.Subject == nil {
					t.Errorf("diagnostic without a place: %s", d.Detail)
					continue
				}
				got = append(got, fmt.Sprintf("%d:%d %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Detail))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}
