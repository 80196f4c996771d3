package kernel

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cocobuild/cocobuild/kernel/internal/kconfig"
)

func TestParseConfig(t *testing.T) {
	text := "#\n# Automatically generated\n#\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_S=\"a b\"\r\nCONFIG_N=0x10\n\n  # a comment\n"
	got, err := parseConfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := []configEntry{{"A", "y", 4}, {"B", "n", 5}, {"S", `"a b"`, 6}, {"N", "0x10", 7}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(kconfig.Values{"A": "y", "S": `"a b"`, "N": "0x10"}, values(got)); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"CONFIG_A", "CONFIG_A=", "A=y", "CONFIG_S=\"open", "CONFIG_S=\"a\" b", "CONFIG-A=y"} {
		if _, err := parseConfig([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: error %v, want one naming line 1", bad, err)
		}
	}
}

func TestRequests(t *testing.T) {
	frags := []Fragment{
		{Name: "common", Data: []byte("CONFIG_A=y\nCONFIG_B=y\n")},
		{Name: "extra", Data: []byte("# CONFIG_B is not set\nCONFIG_C=m\n")},
	}
	got, err := requests(frags)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]request{
		"A": {Sym: "A", Value: "y", Fragment: "common", Order: 0, Line: 1},
		"B": {Sym: "B", Value: "n", Fragment: "extra", Order: 1, Line: 1},
		"C": {Sym: "C", Value: "m", Fragment: "extra", Order: 1, Line: 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if _, err := requests([]Fragment{{Name: "bad", Data: []byte("CONFIG_X\n")}}); err == nil || !strings.Contains(err.Error(), "fragment bad: line 1") {
		t.Errorf("bad fragment: error %v", err)
	}
}

func TestCheckResolved(t *testing.T) {
	frags := []Fragment{
		{Name: "common", Data: []byte("CONFIG_A=y\nCONFIG_B=y\nCONFIG_S=\"x\"\n")},
		{Name: "tdx", Data: []byte("CONFIG_C=y\n# CONFIG_D is not set\nCONFIG_E=m\n")},
	}
	tests := []struct {
		name     string
		resolved string
		want     []Unsatisfied
	}{
		{"all kept", "CONFIG_A=y\nCONFIG_B=y\nCONFIG_S=\"x\"\nCONFIG_C=y\n# CONFIG_D is not set\nCONFIG_E=m\nCONFIG_OTHER=y\n", nil},
		{"some lost", "CONFIG_A=y\nCONFIG_S=\"y\"\nCONFIG_C=y\nCONFIG_D=y\nCONFIG_E=y\n", []Unsatisfied{
			{Option: "CONFIG_B", Requested: "y", Resolved: "n", Fragment: "common", Line: 2},
			{Option: "CONFIG_S", Requested: `"x"`, Resolved: `"y"`, Fragment: "common", Line: 3},
			{Option: "CONFIG_D", Requested: "n", Resolved: "y", Fragment: "tdx", Line: 2},
			{Option: "CONFIG_E", Requested: "m", Resolved: "y", Fragment: "tdx", Line: 3},
		}},
	}
	for _, tc := range tests {
		err := checkResolved(frags, []byte(tc.resolved), nil)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var ue *UnsatisfiedError
		if !errors.As(err, &ue) {
			t.Fatalf("%s: error %v, want an *UnsatisfiedError", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, ue.Options); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
		msg := err.Error()
		for _, w := range []string{"4 fragment options do not survive olddefconfig", "CONFIG_B=y (fragment common, line 2): resolved to # CONFIG_B is not set",
			"# CONFIG_D is not set (fragment tdx, line 2): resolved to CONFIG_D=y"} {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: message lacks %q:\n%s", tc.name, w, msg)
			}
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_S=\"a \\\" b\"\n"))
	for _, name := range ShippedFragments() {
		b, err := ShippedFragment(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := parseConfig(data); err != nil {
			return
		}
		// A fragment resolved to itself survives: the last value of a
		// symbol wins on both sides.
		if err := checkResolved([]Fragment{{Name: "f", Data: data}}, data, nil); err != nil {
			t.Fatalf("a fragment checked against itself: %v", err)
		}
	})
}

// TestShippedFragments checks that every shipped fragment parses and that
// the names resolve.
func TestShippedFragments(t *testing.T) {
	if diff := cmp.Diff([]string{"common", "fwcfg", "snp", "tdx"}, ShippedFragments()); diff != "" {
		t.Errorf("shipped fragments (-want +got):\n%s", diff)
	}
	for _, name := range ShippedFragments() {
		b, err := ShippedFragment(name)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := parseConfig(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if len(entries) == 0 {
			t.Errorf("%s sets nothing", name)
		}
	}
	for _, bad := range []string{"", "../kind", "common.config", "nope"} {
		if _, err := ShippedFragment(bad); err == nil || !strings.Contains(err.Error(), "common, fwcfg, snp, tdx") {
			t.Errorf("ShippedFragment(%q): error %v, want one listing the shipped fragments", bad, err)
		}
	}
}
