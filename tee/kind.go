package tee

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/limits"
	"github.com/cocobuild/cocobuild/recipes"
)

// MeasureKind implements `measure "NAME" { … }`: the launch measurements of
// the build's firmware (and, for direct boot, kernel, initrd and cmdline)
// for every combination of the parameters given as lists. The TEE is the
// `tee` attribute, or the block name when that is a TEE name; the TEE of
// that name decodes the rest.
type MeasureKind struct {
	TEEs Set
	// ReadVerified reads a cached file of a step result, checking its
	// bytes against the digest the result records (the engine's check, so
	// that a corrupt entry is evicted and rebuilt).
	ReadVerified func(recipes.Artifact) ([]byte, error)
	// Limits bound the firmware, kernel and initrd a step reads (nil: the
	// defaults; the build's --limit).
	Limits *limits.Values
}

// CommonAttributes are the measure block attributes of every TEE.
var CommonAttributes = []string{"tee", "firmware", "kernel", "initrd", "cmdline", "description", "vcpus"}

// Type implements recipes.Kind.
func (MeasureKind) Type() string { return "measure" }

// Schema implements recipes.Kind.
func (k MeasureKind) Schema() *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, a := range CommonAttributes {
		// firmware is required unless the TEE says otherwise (Decode).
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: a})
	}
	seen := map[string]bool{}
	for _, t := range k.TEEs.All() {
		for _, a := range t.Attributes() {
			if !seen[a] {
				seen[a] = true
				s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: a})
			}
		}
	}
	return s
}

// OutputType implements recipes.Kind.
func (MeasureKind) OutputType() cty.Type {
	return cty.Object(map[string]cty.Type{"tee": cty.String, "count": cty.Number})
}

// Block is a measure block with its common part decoded, as a TEE's Decode
// gets it.
type Block struct {
	Name     string
	TEE      string // the TEE name, one of the TEE's Names
	Firmware recipes.Artifact
	// FirmwareGiven says the block has a firmware (always, unless its TEE
	// is a FirmwareOptional one).
	FirmwareGiven bool
	// FirmwareRange is the firmware attribute's expression, for errors
	// that a step finds in it (the block's body when it has none).
	FirmwareRange  hcl.Range
	Kernel, Initrd *recipes.Artifact
	Cmdline        string
	VCPUs          []int // default [1]
	// Attrs are the block's attributes (common and the TEE's own), Ctx
	// evaluates them.
	Attrs map[string]*hcl.Attribute
	Ctx   *hcl.EvalContext
	// ReadVerified reads a cached step result file (MeasureKind.ReadVerified).
	ReadVerified func(recipes.Artifact) ([]byte, error)
	// Limits bound what ReadInputs reads (MeasureKind.Limits).
	Limits *limits.Values
}

// orList joins names as "a, b or c" (and with " and " when and is set).
func orList(names []string, and bool) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	last := " or "
	if and {
		last = " and "
	}
	return strings.Join(names[:len(names)-1], ", ") + last + names[len(names)-1]
}

// Decode implements recipes.Kind.
func (k MeasureKind) Decode(rb *recipes.Block, ctx *hcl.EvalContext) (recipes.Node, hcl.Diagnostics) {
	content, diags := rb.Body.Content(k.Schema())
	if diags.HasErrors() {
		return nil, diags
	}
	b := &Block{Name: rb.Name, TEE: rb.Name, Attrs: content.Attributes, Ctx: ctx, ReadVerified: k.ReadVerified, Limits: k.Limits}
	if a, ok := content.Attributes["tee"]; ok {
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, &b.TEE)...)
	}
	t, ok := k.TEEs.Lookup(b.TEE)
	if !ok {
		subj := rb.LabelRange.Ptr()
		if a, ok := content.Attributes["tee"]; ok {
			subj = a.Expr.Range().Ptr()
		}
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown TEE",
			Detail:  fmt.Sprintf("measure %q: the TEE is %s; set tee = \"…\" or name the block after it.", b.TEE, orList(k.TEEs.Names(), false)),
			Subject: subj})
	}
	own := map[string]bool{}
	for _, a := range t.Attributes() {
		own[a] = true
	}
	for _, other := range k.TEEs.All() {
		if other == t {
			continue
		}
		for _, a := range other.Attributes() {
			if attr, ok := content.Attributes[a]; ok && !own[a] {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Attribute not for this TEE",
					Detail: fmt.Sprintf("%s applies to %s measurements, not %s.", a, orList(other.Names(), true), b.TEE), Subject: attr.NameRange.Ptr()})
			}
		}
	}
	if a, ok := content.Attributes["firmware"]; ok {
		b.FirmwareRange, b.FirmwareGiven = a.Expr.Range(), true
		fw, _, d := recipes.DecodeArtifact(a.Expr, ctx)
		diags = append(diags, d...)
		b.Firmware = fw
	} else if fo, ok := t.(FirmwareOptional); !ok || !fo.FirmwareOptional(b.TEE) {
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing required argument",
			Detail:  fmt.Sprintf("The argument \"firmware\" is required, but no definition was found: %s measurements start from the firmware (firmware = input.NAME).", b.TEE),
			Subject: rb.Body.MissingItemRange().Ptr()})
	} else {
		b.FirmwareRange = rb.Body.MissingItemRange()
	}
	if a, ok := content.Attributes["kernel"]; ok {
		art, known, d := recipes.DecodeArtifact(a.Expr, ctx)
		diags = append(diags, d...)
		if known {
			b.Kernel = &art
		}
		// A kernel block brings its cmdline.
		if v, d := a.Expr.Value(ctx); !d.HasErrors() && v.Type().IsObjectType() && v.Type().HasAttribute("cmdline") && v.IsKnown() {
			if c := v.GetAttr("cmdline"); c.IsKnown() && c.Type() == cty.String && !c.IsNull() {
				b.Cmdline = c.AsString()
			}
		}
	}
	if a, ok := content.Attributes["initrd"]; ok {
		art, known, d := recipes.DecodeArtifact(a.Expr, ctx)
		diags = append(diags, d...)
		if known {
			b.Initrd = &art
		}
	}
	if a, ok := content.Attributes["cmdline"]; ok {
		v, d := a.Expr.Value(ctx)
		diags = append(diags, d...)
		if !d.HasErrors() && v.IsWhollyKnown() {
			if v.Type() == cty.String {
				diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, &b.Cmdline)...)
			} else {
				var args []string
				diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.List(cty.String), &args)...)
				b.Cmdline = strings.Join(args, " ")
			}
		}
		if _, ok := content.Attributes["kernel"]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "cmdline without kernel",
				Detail: "cmdline is measured only with a directly booted kernel: add kernel = kernel.NAME.", Subject: a.NameRange.Ptr()})
		}
	}
	if _, ok := content.Attributes["initrd"]; ok {
		if _, ok := content.Attributes["kernel"]; !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "initrd without kernel",
				Detail: "An initrd is measured only with a directly booted kernel: add kernel = kernel.NAME.", Subject: content.Attributes["initrd"].NameRange.Ptr()})
		}
	}
	b.VCPUs = []int{1}
	if a, ok := content.Attributes["vcpus"]; ok {
		vals, d := DecodeStrings(a.Expr, ctx)
		diags = append(diags, d...)
		if vals != nil {
			b.VCPUs = nil
			for _, v := range vals {
				i, err := strconv.Atoi(v)
				if err != nil || i < 1 || i > 512 {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid vcpus",
						Detail: fmt.Sprintf("%q is not a vCPU count (1-512).", v), Subject: a.Expr.Range().Ptr()})
				}
				b.VCPUs = append(b.VCPUs, i)
			}
		}
	}
	node, d := t.Decode(b)
	diags = append(diags, d...)
	if a, ok := content.Attributes["description"]; ok {
		var s string
		diags = append(diags, recipes.DecodeExpr(a.Expr, ctx, cty.String, &s)...)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return node, diags
}

// FailedBootOptions decodes failed_boot_options, the number of boot
// options the firmware tries, and that return, before the one that starts
// the disk's UKI (0-16; 0 when the block does not set it): the TEEs whose
// values cover a UKI boot share it.
func (b *Block) FailedBootOptions() (int, hcl.Diagnostics) {
	a, ok := b.Attrs["failed_boot_options"]
	if !ok {
		return 0, nil
	}
	var n int
	diags := recipes.DecodeExpr(a.Expr, b.Ctx, cty.Number, &n)
	if !diags.HasErrors() && (n < 0 || n > 16) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid failed_boot_options",
			Detail: "failed_boot_options is the number of boot options the firmware tries before the one that starts the UKI (0-16).", Subject: a.Expr.Range().Ptr()})
	}
	return n, diags
}

// Strings decodes the list-valued attribute name (one value or a list) into
// strings, each checked by check; def when the block does not set it.
func (b *Block) Strings(name, def string, check func(string) error) ([]string, hcl.Diagnostics) {
	a, ok := b.Attrs[name]
	if !ok {
		return []string{def}, nil
	}
	vals, diags := DecodeStrings(a.Expr, b.Ctx)
	if diags.HasErrors() || vals == nil {
		return []string{def}, diags
	}
	for i, v := range vals {
		if err := check(v); err != nil {
			// Name the element and point at it when the list is written out.
			what, subj := name, a.Expr.Range()
			if len(vals) > 1 || isList(a.Expr, b.Ctx) {
				what = fmt.Sprintf("%s[%d]", name, i)
			}
			if t, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok && len(t.Exprs) == len(vals) {
				subj = t.Exprs[i].Range()
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid " + name,
				Detail: fmt.Sprintf("%s: %s.", what, err), Subject: subj.Ptr()})
		}
	}
	return vals, diags
}

// isList says whether expr is a list, tuple or set (rather than one value).
func isList(expr hcl.Expression, ctx *hcl.EvalContext) bool {
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return false
	}
	t := v.Type()
	return t.IsListType() || t.IsTupleType() || t.IsSetType()
}

// DecodeStrings accepts one value or a list of values (strings, numbers or
// bools) and returns them as strings; nil while the value is unknown.
func DecodeStrings(expr hcl.Expression, ctx *hcl.EvalContext) ([]string, hcl.Diagnostics) {
	v, diags := expr.Value(ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return nil, diags
	}
	one := func(e cty.Value) (string, bool) {
		switch {
		case e.IsNull():
			return "", false
		case e.Type() == cty.String:
			return e.AsString(), true
		case e.Type() == cty.Number:
			return e.AsBigFloat().Text('f', -1), true
		case e.Type() == cty.Bool:
			return strconv.FormatBool(e.True()), true
		}
		return "", false
	}
	if s, ok := one(v); ok {
		return []string{s}, diags
	}
	if v.CanIterateElements() && (v.Type().IsListType() || v.Type().IsTupleType() || v.Type().IsSetType()) {
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			s, ok := one(e)
			if !ok {
				return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid list element",
					Detail: fmt.Sprintf("Expected strings or numbers, not %s.", e.Type().FriendlyName()), Subject: expr.Range().Ptr()})
			}
			out = append(out, s)
		}
		if len(out) == 0 {
			return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Empty list",
				Detail: "Give at least one value.", Subject: expr.Range().Ptr()})
		}
		return out, diags
	}
	return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Incorrect value type",
		Detail: fmt.Sprintf("Expected a value or a list of values, not %s.", v.Type().FriendlyName()), Subject: expr.Range().Ptr()})
}

// ParseUint parses a number in decimal or 0x hex.
func ParseUint(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number (decimal, or hex with 0x)", s)
	}
	return v, nil
}

// With returns a copy of m with the key-value pairs kv set.
func With(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}
