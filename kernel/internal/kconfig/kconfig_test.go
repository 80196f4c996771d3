package kconfig

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// kconfigTree is a small Kconfig tree with what the kernel's has: source
// with $(SRCARCH), if/menu/choice blocks, help text that mentions
// "depends on", prompts with conditions, select and line continuations.
var kconfigTree = fstest.MapFS{
	"Kconfig": {Data: []byte(`mainmenu "Test"
source "arch/$(SRCARCH)/Kconfig"
source "drivers/Kconfig"
config EXPERT
	bool "Expert"
config FUTEX
	bool "Futex support" if EXPERT
	default y
	help
	  Futexes.
	  depends on NOTHING (help text, not a dependency)
config HIDDEN
	tristate
`)},
	"arch/x86/Kconfig": {Data: []byte(`config X86_64
	def_bool y
menuconfig HYPERVISOR_GUEST
	bool "Guest"
if HYPERVISOR_GUEST
config TDX
	bool "TDX guest"
	depends on X86_64 && \
		EFI_STUB
	select HIDDEN
endif # HYPERVISOR_GUEST
config EFI_STUB
	bool "EFI stub"
`)},
	"drivers/Kconfig": {Data: []byte(`menu "Drivers"
	depends on BLOCK || !X86_64
config BLOCK
	bool "Block layer"
config VIRTIO_BLK
	tristate "virtio disk"
	depends on VIRTIO
endmenu
osource "drivers/missing/Kconfig"
config VIRTIO
	tristate
	select HIDDEN if TDX
config VIRTIO_PCI
	tristate "virtio over PCI"
	select VIRTIO
`)},
}

func TestParseKconfig(t *testing.T) {
	idx, err := Parse(kconfigTree, "Kconfig", map[string]string{"SRCARCH": "x86"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sym        string
		want       []kconfigDef
		selectedBy []kconfigRef
	}{
		{"TDX", []kconfigDef{{Pos: "arch/x86/Kconfig:6", Type: "bool", Prompt: true, PromptAt: "arch/x86/Kconfig:7", Depends: []kconfigDep{
			{Pos: "arch/x86/Kconfig:5", From: "if", Expr: "HYPERVISOR_GUEST"},
			{Pos: "arch/x86/Kconfig:8", From: "depends on", Expr: "X86_64 && EFI_STUB"},
		}}}, nil},
		{"FUTEX", []kconfigDef{{Pos: "Kconfig:6", Type: "bool", Prompt: true, PromptIf: "EXPERT", PromptAt: "Kconfig:7"}}, nil},
		{"VIRTIO_BLK", []kconfigDef{{Pos: "drivers/Kconfig:5", Type: "tristate", Prompt: true, PromptAt: "drivers/Kconfig:6", Depends: []kconfigDep{
			{Pos: "drivers/Kconfig:2", From: "menu", Expr: "BLOCK || !X86_64"},
			{Pos: "drivers/Kconfig:7", From: "depends on", Expr: "VIRTIO"},
		}}}, nil},
		{"HIDDEN", []kconfigDef{{Pos: "Kconfig:12", Type: "tristate"}}, []kconfigRef{
			{Sym: "TDX", Pos: "arch/x86/Kconfig:10"}, {Sym: "VIRTIO", Pos: "drivers/Kconfig:12", Cond: "TDX"}}},
		{"EFI_STUB", []kconfigDef{{Pos: "arch/x86/Kconfig:12", Type: "bool", Prompt: true, PromptAt: "arch/x86/Kconfig:13"}}, nil},
	}
	for _, tc := range tests {
		s := idx.syms[tc.sym]
		if s == nil {
			t.Errorf("%s not found", tc.sym)
			continue
		}
		var got []kconfigDef
		for _, d := range s.Defs {
			got = append(got, *d)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s definitions (-want +got):\n%s", tc.sym, diff)
		}
		if diff := cmp.Diff(tc.selectedBy, s.SelectedBy); diff != "" {
			t.Errorf("%s selected by (-want +got):\n%s", tc.sym, diff)
		}
	}
	if _, ok := idx.syms["NOTHING"]; ok {
		t.Error("a word of help text became a symbol")
	}
}

func TestParseKconfigErrors(t *testing.T) {
	tests := []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"missing source", fstest.MapFS{"Kconfig": {Data: []byte(`source "nope/Kconfig"`)}}, "reading Kconfig"},
		{"escape", fstest.MapFS{"Kconfig": {Data: []byte(`source "../etc/passwd"`)}}, "leaves the source tree"},
		{"loop", fstest.MapFS{"Kconfig": {Data: []byte(`source "Kconfig"`)}}, "nested more than"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.fs, "Kconfig", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestExpr(t *testing.T) {
	cfg := Values{"A": "y", "B": "m", "S": `"abc"`, "N": "42"}
	tests := []struct {
		expr  string
		val   int
		str   string
		blame []string // for need = y
	}{
		{"A", 2, "A", nil},
		{"B", 1, "B", []string{"B=m"}},
		{"C", 0, "C", []string{"C is not set"}},
		{"A && C", 0, "A && C", []string{"C is not set"}},
		{"C || D", 0, "C || D", []string{"C is not set", "D is not set"}},
		{"!A", 0, "!A", []string{"!A (A=y)"}},
		{"!(C || A) && B", 0, "!(C || A) && B", []string{"!(C || A) (A=y)", "B=m"}},
		{"A && (B || C)", 1, "A && (B || C)", []string{"B=m", "C is not set"}},
		{`S = "abc"`, 2, `S="abc"`, nil},
		{"N >= 100", 0, "N>=100", []string{"N>=100 (N=42)"}},
		{"N < 100 && A != n", 2, "N<100 && A!=n", nil},
		{"$(cc-option,-mfoo) && A", 2, "$(cc-option,-mfoo) && A", nil},
		{"A = y", 2, "A=y", nil},
		{"B = y", 0, "B=y", []string{"B=y (B=m)"}},
	}
	for _, tc := range tests {
		e, err := parseExpr(tc.expr)
		if err != nil {
			t.Errorf("%q: %v", tc.expr, err)
			continue
		}
		if got := e.eval(cfg); got != tc.val {
			t.Errorf("%q = %d, want %d", tc.expr, got, tc.val)
		}
		if got := e.String(); got != tc.str {
			t.Errorf("%q prints as %q, want %q", tc.expr, got, tc.str)
		}
		if diff := cmp.Diff(tc.blame, e.blame(cfg, 2)); diff != "" {
			t.Errorf("%q blame (-want +got):\n%s", tc.expr, diff)
		}
	}
	for _, bad := range []string{"", "A &&", "(A", "A B", "\"x", "$(x", "A = ", "&& A", "A =", strings.Repeat("(", 300) + "A" + strings.Repeat(")", 300)} {
		if _, err := parseExpr(bad); err == nil {
			t.Errorf("%q: parsed, want an error", bad)
		}
	}
}

func TestExplain(t *testing.T) {
	idx, err := Parse(kconfigTree, "Kconfig", map[string]string{"SRCARCH": "x86"})
	if err != nil {
		t.Fatal(err)
	}
	resolved := Values{"X86_64": "y", "HYPERVISOR_GUEST": "y", "EFI_STUB": "y", "VIRTIO": "m", "BLOCK": "y", "TDX": "y", "HIDDEN": "y"}
	tests := []struct {
		sym, want string
		requested Values
		reasons   []string
	}{
		{"TDX", "y", Values{"TDX": "y"}, nil}, // deps hold: Kconfig resolved it otherwise
		{"EFI_STUB", "n", nil, nil},
		{"VIRTIO_BLK", "y", Values{"VIRTIO_BLK": "y"}, []string{
			"drivers/Kconfig:7: depends on VIRTIO — lacks VIRTIO=m, which no fragment sets (it has no prompt; select it with one of VIRTIO_PCI) (a dependency is a module, so this option can be m at most)"}},
		{"FUTEX", "n", Values{"FUTEX": "n"}, []string{"Kconfig:7: its prompt is shown only if EXPERT, so its default applies"}},
		{"HIDDEN", "n", Values{"HIDDEN": "n"}, []string{"arch/x86/Kconfig:10: selected by TDX (=y)", "drivers/Kconfig:12: selected by VIRTIO (=m)"}},
		{"HIDDEN", "y", Values{"HIDDEN": "y"}, []string{"Kconfig:12: HIDDEN has no prompt: only a select (or its default) sets it; selected by TDX=y, VIRTIO=m"}},
		{"NOPE", "y", nil, []string{"no Kconfig file of this source tree defines NOPE: it is misspelt, or this kernel version does not have it"}},
	}
	for _, tc := range tests {
		got := idx.Explain(tc.sym, tc.want, resolved, tc.requested)
		if tc.reasons == nil {
			if len(got) != 1 || !strings.Contains(got[0], "resolved it otherwise") && !strings.Contains(got[0], "default applies") {
				t.Errorf("%s=%s: %q", tc.sym, tc.want, got)
			}
			continue
		}
		if diff := cmp.Diff(tc.reasons, got); diff != "" {
			t.Errorf("%s=%s (-want +got):\n%s", tc.sym, tc.want, diff)
		}
	}
	// No EFI_STUB: TDX lacks it, and the fragments do not set it.
	noStub := Values{"X86_64": "y", "HYPERVISOR_GUEST": "y"}
	got := idx.Explain("TDX", "y", noStub, Values{"TDX": "y", "HYPERVISOR_GUEST": "y"})
	want := []string{"arch/x86/Kconfig:8: depends on X86_64 && EFI_STUB — lacks EFI_STUB is not set, which no fragment sets"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TDX without EFI_STUB (-want +got):\n%s", diff)
	}
}

func FuzzParseKconfig(f *testing.F) {
	for _, name := range []string{"Kconfig", "arch/x86/Kconfig", "drivers/Kconfig"} {
		f.Add(kconfigTree[name].Data)
	}
	f.Add([]byte("if A\nmenu \"x\"\n\tdepends on B\nconfig C\n\tbool \"c\" if D\n\thelp\n\t  text\nendmenu\nendif\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"Kconfig": {Data: data}, "sub/Kconfig": {Data: data}}
		idx, err := Parse(fsys, "Kconfig", map[string]string{"SRCARCH": "x86"})
		if err != nil {
			return
		}
		cfg := Values{"A": "y", "B": "m"}
		for name := range idx.syms {
			idx.Explain(name, "y", cfg, cfg)
			idx.Explain(name, "n", cfg, cfg)
		}
	})
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{"A && (B || !C)", `S = "x" || N >= 0x10`, "$(cc-option,-m) && X86_64", "!(A)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseExpr(s)
		if err != nil {
			return
		}
		cfg := Values{"A": "y", "B": "m", "S": `"x"`}
		v := e.eval(cfg)
		if v < 0 || v > 2 {
			t.Fatalf("%q evaluates to %d", s, v)
		}
		e.blame(cfg, 2)
		// What String prints parses back to the same value.
		e2, err := parseExpr(e.String())
		if err != nil {
			t.Fatalf("%q prints as %q, which does not parse: %v", s, e.String(), err)
		}
		if e2.eval(cfg) != v {
			t.Fatalf("%q = %d but its printed form %q = %d", s, v, e.String(), e2.eval(cfg))
		}
	})
}
