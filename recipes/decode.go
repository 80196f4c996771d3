package recipes

import (
	"fmt"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
)

// DecodeExpr evaluates expr, converts it to typ and stores it in target (a
// pointer for gocty). Unknown values leave target unchanged without error, so
// that blocks can be checked before the blocks they refer to are built.
//
// Block kinds decode attribute by attribute with it rather than through an
// hcldec spec: hcldec would give a cty object that still needs gocty, the
// ranges of the attributes for the kinds' own checks (hcldec.SourceRange
// per attribute), and its own wording for type errors, for no less code.
func DecodeExpr(expr hcl.Expression, ctx *hcl.EvalContext, typ cty.Type, target any) hcl.Diagnostics {
	val, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return diags
	}
	val, err := convert.Convert(val, typ)
	if err != nil {
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Incorrect value type",
			Detail: fmt.Sprintf("Expected %s: %s.", typ.FriendlyName(), err), Subject: expr.Range().Ptr(), Expression: expr, EvalContext: ctx})
	}
	if !val.IsWhollyKnown() {
		return diags
	}
	if val.IsNull() {
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing value",
			Detail: fmt.Sprintf("Expected %s, not null.", typ.FriendlyName()), Subject: expr.Range().Ptr()})
	}
	if err := gocty.FromCtyValue(val, target); err != nil {
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Incorrect value",
			Detail: fmt.Sprintf("Expected %s: %s.", typ.FriendlyName(), err), Subject: expr.Range().Ptr()})
	}
	return diags
}

// DecodeArtifact evaluates expr to an artifact: an artifact value, or an
// object with an "artifact" attribute (an input block) or an "image"
// attribute (a kernel or initramfs block). known is false while the
// artifact is not built yet.
func DecodeArtifact(expr hcl.Expression, ctx *hcl.EvalContext) (a Artifact, known bool, diags hcl.Diagnostics) {
	val, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return a, false, diags
	}
	for _, attr := range []string{"artifact", "image"} {
		if val.Type().IsObjectType() && val.Type().HasAttribute(attr) {
			if !val.IsKnown() {
				return a, false, diags
			}
			val = val.GetAttr(attr)
			break
		}
	}
	if val.Type() != ArtifactType {
		return a, false, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Not an artifact",
			Detail:  fmt.Sprintf("Expected a file made by another block (for example input.NAME), not %s.", val.Type().FriendlyName()),
			Subject: expr.Range().Ptr()})
	}
	if !val.IsKnown() {
		return a, false, diags
	}
	if val.IsNull() {
		return a, false, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing artifact", Subject: expr.Range().Ptr()})
	}
	return *val.EncapsulatedValue().(*Artifact), true, diags
}

// suggest returns the candidate closest to name, if one is close enough to
// be a likely typo.
func suggest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := levenshtein.Distance(name, c, nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}
