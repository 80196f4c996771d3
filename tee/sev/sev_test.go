package sev

import (
	"strings"
	"testing"

	"github.com/cocobuild/cocobuild/builder"
	"github.com/cocobuild/cocobuild/recipes"
	"github.com/cocobuild/cocobuild/tee"
)

// TestStepKeyFollowsModelVersions: the measure step's version names the
// step format and the models it uses (sev, ovmf), so that bumping either
// model's version gives a new step key.
func TestStepKeyFollowsModelVersions(t *testing.T) {
	bump := map[string]func(*models){
		"sev":  func(m *models) { m.SEV += "+1" },
		"ovmf": func(m *models) { m.OVMF += "+1" },
	}
	for _, name := range (TEE{}).Names() {
		t.Run(name, func(t *testing.T) {
			n := &node{Block: &tee.Block{Name: name, TEE: name, Firmware: recipes.Artifact{SHA256: "aa"}, VCPUs: []int{1}}}
			steps := n.Steps()
			if len(steps) != 1 {
				t.Fatalf("got %d steps, want 1", len(steps))
			}
			if got, want := steps[0].Version, stepVersion(currentModels); got != want || !strings.HasPrefix(got, "step="+tee.StepFormat+",") {
				t.Errorf("step version = %q, want %q (the step format and the packages' ModelVersion)", got, want)
			}
			if got, want := steps[0].Kind, "measure/"+name; got != want {
				t.Errorf("step kind = %q, want %q", got, want)
			}
			base, err := builder.StepKey(steps[0], 0, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			for model, f := range bump {
				m := currentModels
				f(&m)
				s := *steps[0]
				s.Version = stepVersion(m)
				k, err := builder.StepKey(&s, 0, nil, "")
				if err != nil {
					t.Fatal(err)
				}
				if k == base {
					t.Errorf("bumping the %s model version: got the same key %s, want a new one", model, k)
				}
			}
		})
	}
}

func TestCheckPolicy(t *testing.T) {
	for _, c := range []struct{ mode, in, want, err string }{
		{"snp", "0x30000", "0x30000", ""},
		{"snp", "196608", "0x30000", ""},
		{"snp", "0x10000", "", "bit 17 (0x20000) is reserved and must be set"},
		{"seves", "0x5", "0x5", ""},
		{"seves", "0x1", "", "bit 2 (0x4, ES required) must be set"},
		{"sev", "0x100000000", "", "it is 32 bits"},
		{"sev", "lots", "", "not a number"},
	} {
		got, err := checkPolicy(c.mode, c.in)
		if got != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("checkPolicy(%q, %q) = %q, %v; want %q, error containing %q", c.mode, c.in, got, err, c.want, c.err)
		}
	}
}
