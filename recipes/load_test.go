package recipes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// noteKind is a small block kind for exercising the language: `note "N" {
// text = …, after = [note.X.text, …] }`. Its value is {text}.
type noteKind struct{}

func (noteKind) Type() string { return "note" }
func (noteKind) Schema() *hcl.BodySchema {
	return &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "text", Required: true}, {Name: "after"}}}
}
func (noteKind) OutputType() cty.Type { return cty.Object(map[string]cty.Type{"text": cty.String}) }
func (noteKind) Decode(b *Block, ctx *hcl.EvalContext) (Node, hcl.Diagnostics) {
	c, diags := b.Body.Content(noteKind{}.Schema())
	if diags.HasErrors() {
		return nil, diags
	}
	var text string
	diags = append(diags, DecodeExpr(c.Attributes["text"].Expr, ctx, cty.String, &text)...)
	return noteNode(text), diags
}

type noteNode string

func (n noteNode) Steps() []*Step {
	return []*Step{{ID: "s", Kind: "note", Version: "1", Run: func(context.Context, *StepContext) error { return nil }}}
}
func (n noteNode) Finish(map[string]*Result) (*Output, error) {
	return &Output{Value: cty.ObjectVal(map[string]cty.Value{"text": cty.StringVal(string(n))})}, nil
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustLoad(t *testing.T, path string, opts LoadOptions) *Recipe {
	t.Helper()
	r, diags := Load(path, NewRegistry(noteKind{}), opts)
	if diags.HasErrors() {
		var sb strings.Builder
		WriteDiagnostics(&sb, r.filesOr(path), diags)
		t.Fatalf("Load: %s", sb.String())
	}
	return r
}

func (r *Recipe) filesOr(path string) map[string][]byte {
	if r != nil {
		return r.Files
	}
	return ReadSources(path, nil)
}

func TestVariablesPrecedence(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.hcl": `
variable "release" {
  default = "1.0.0"
}
variable "vcpus" {
  type    = list(number)
  default = [1]
}
variable "console" {
  type    = string
  default = "ttyS0"
}
`,
		"vars.hcl.in": `
release = "2.0.0"
console = "hvc0"
`,
	})
	r := mustLoad(t, dir, LoadOptions{
		VarFiles: []string{filepath.Join(dir, "vars.hcl.in")},
		Vars:     map[string]string{"release": "3.0.0", "vcpus": "[2, 4]"},
	})
	got := map[string]string{}
	for k, v := range r.Variables() {
		got[k] = v.GoString()
	}
	want := map[string]string{
		"release": `cty.StringVal("3.0.0")`,
		"console": `cty.StringVal("hvc0")`,
		"vcpus":   `cty.ListVal([]cty.Value{cty.NumberIntVal(2), cty.NumberIntVal(4)})`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variables (-want +got):\n%s", diff)
	}
	if r.Name != filepath.Base(dir) {
		t.Errorf("default name = %q, want the directory name %q", r.Name, filepath.Base(dir))
	}
}

func TestUndeclaredVarFlag(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.hcl": `variable "release" { default = "1" }`})
	_, diags := Load(dir, NewRegistry(noteKind{}), LoadOptions{Vars: map[string]string{"relase": "2"}})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), `Did you mean "release"?`) {
		t.Errorf("diags = %v, want an undeclared variable with a suggestion", diags)
	}
}

func TestLocalsInDependencyOrderAndFunctions(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"cmdline.tpl": "console=${console} root=${root}",
		"r.hcl": `
recipe {
  name  = "x"
  epoch = 1700000000
}
locals {
  cmdline = templatefile("cmdline.tpl", { console = local.console, root = "/dev/vda" })
  digest  = filesha256("cmdline.tpl")
}
locals {
  console = upper(var.console)
}
variable "console" {
  default = "ttys0"
}
note "a" {
  text = local.cmdline
}
note "b" {
  text  = "${note.a.text} ${local.digest}"
}
`,
	})
	r := mustLoad(t, filepath.Join(dir, "r.hcl"), LoadOptions{})
	if r.Name != "x" || r.Epoch != 1700000000 {
		t.Errorf("name, epoch = %q, %d; want x, 1700000000", r.Name, r.Epoch)
	}
	if got := r.locals["cmdline"].AsString(); got != "console=TTYS0 root=/dev/vda" {
		t.Errorf("local.cmdline = %q", got)
	}
	sum := sha256.Sum256([]byte("console=${console} root=${root}"))
	if got, want := r.locals["digest"].AsString(), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("local.digest = %q, want %q", got, want)
	}
	var order []string
	for _, b := range r.Blocks {
		order = append(order, b.Addr())
	}
	if diff := cmp.Diff([]string{"note.a", "note.b"}, order); diff != "" {
		t.Errorf("block order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"note.a"}, r.Blocks[1].Deps); diff != "" {
		t.Errorf("note.b deps (-want +got):\n%s", diff)
	}
	// Decoding b with a's output known gives the joined text.
	ctx := r.EvalContext(map[string]cty.Value{"note.a": cty.ObjectVal(map[string]cty.Value{"text": cty.StringVal("A")})})
	n, diags := noteKind{}.Decode(r.Blocks[1], ctx)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := string(n.(noteNode)); !strings.HasPrefix(got, "A ") {
		t.Errorf("note.b text = %q, want it to start with note.a's text", got)
	}
	// With a unknown, decoding succeeds and leaves the value unset.
	if _, diags := (noteKind{}).Decode(r.Blocks[1], r.EvalContext(nil)); diags.HasErrors() {
		t.Errorf("decoding with unknown references: %v", diags)
	}
}

func TestFormatDiagnosticTabs(t *testing.T) {
	src := []byte("a {\n\tb = 1\n}\n")
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "S", Detail: "D",
		Subject: &hcl.Range{Filename: "f.hcl", Start: hcl.Pos{Line: 2, Column: 2}, End: hcl.Pos{Line: 2, Column: 3}}}
	got := FormatDiagnostic(map[string][]byte{"f.hcl": src}, d)
	want := "f.hcl:2:2: error: S: D\n    2 | \tb = 1\n      | \t^\n"
	if got != want {
		t.Errorf("FormatDiagnostic = %q, want %q", got, want)
	}
}

// TestBadVarFlag: a -var value that does not fit the variable's type names
// the type as the recipe writes it and shows how to write a value of it,
// at the variable's type attribute.
func TestBadVarFlag(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.hcl": `variable "snp_vcpus" {
  type    = list(number)
  default = [1]
}
variable "debug" {
  type    = bool
  default = false
}
variable "sizes" {
  type    = map(number)
  default = {}
}
`})
	for _, tc := range []struct {
		name, raw string
		line      int
		want      string
	}{
		{"snp_vcpus", "banana", 2, `-var snp_vcpus=banana: variable "snp_vcpus" is of type list(number); non-string values are written in HCL syntax, for example -var 'snp_vcpus=[2,4]'.`},
		{"snp_vcpus", "2", 2, `-var snp_vcpus=2: variable "snp_vcpus" is of type list(number) (list of number required, but have number); non-string values are written in HCL syntax, for example -var 'snp_vcpus=[2,4]'.`},
		{"debug", "yes", 6, `-var debug=yes: variable "debug" is of type bool; non-string values are written in HCL syntax, for example -var 'debug=true'.`},
		{"sizes", "big", 10, `-var sizes=big: variable "sizes" is of type map(number); non-string values are written in HCL syntax, for example -var 'sizes={ key = 2 }'.`},
	} {
		_, diags := Load(dir, NewRegistry(noteKind{}), LoadOptions{Vars: map[string]string{tc.name: tc.raw}})
		if len(diags) != 1 {
			t.Errorf("-var %s=%s: got %d diagnostics (%v), want 1", tc.name, tc.raw, len(diags), diags)
			continue
		}
		d := diags[0]
		if d.Detail != tc.want {
			t.Errorf("-var %s=%s: detail\n got %s\nwant %s", tc.name, tc.raw, d.Detail, tc.want)
		}
		if d.Subject == nil || d.Subject.Start.Line != tc.line || d.Subject.Start.Column != 3 {
			t.Errorf("-var %s=%s: subject %v, want a.hcl:%d:3 (the type attribute)", tc.name, tc.raw, d.Subject, tc.line)
		}
	}
	// The example is a value the variable accepts.
	if _, diags := Load(dir, NewRegistry(noteKind{}), LoadOptions{Vars: map[string]string{"snp_vcpus": "[2,4]", "debug": "true", "sizes": "{ key = 2 }"}}); diags.HasErrors() {
		t.Errorf("the suggested values are refused: %v", diags)
	}
}
