package recipes

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var variableSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "build_input"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "validation"}},
}

var validationSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "condition", Required: true}, {Name: "error_message", Required: true}},
}

type variable struct {
	name        string
	typ         cty.Type
	def         cty.Value
	hasDefault  bool
	rng         hcl.Range
	typeRng     hcl.Range // the type attribute, else the block
	validations []*hcl.Block
	badDefault  bool
}

// decodeVariables decodes the variable blocks and sets their values from the
// defaults, the -var-file files and the -var flags (later ones win).
func (r *Recipe) decodeVariables(blocks []*hcl.Block, opts LoadOptions) hcl.Diagnostics {
	var diags hcl.Diagnostics
	vars := map[string]*variable{}
	var order []string
	for _, b := range blocks {
		name := b.Labels[0]
		if !hclsyntax.ValidIdentifier(name) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid variable name",
				Detail: "A variable name is an identifier: letters, digits, '-' and '_', not starting with a digit.", Subject: b.LabelRanges[0].Ptr()})
			continue
		}
		if prev, ok := vars[name]; ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate variable",
				Detail: fmt.Sprintf("Variable %q is already declared at %s.", name, prev.rng), Subject: b.DefRange.Ptr()})
			continue
		}
		v := &variable{name: name, typ: cty.DynamicPseudoType, rng: b.DefRange, typeRng: b.DefRange}
		content, d := b.Body.Content(variableSchema)
		diags = append(diags, d...)
		if a, ok := content.Attributes["type"]; ok {
			v.typeRng = a.Range
			t, d := typeexpr.TypeConstraint(a.Expr)
			diags = append(diags, d...)
			if !d.HasErrors() {
				v.typ = t
			}
		}
		if a, ok := content.Attributes["default"]; ok {
			val, d := a.Expr.Value(nil)
			diags = append(diags, d...)
			if !d.HasErrors() {
				cv, err := convert.Convert(val, v.typ)
				if err != nil {
					v.badDefault = true
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid default value for variable",
						Detail: fmt.Sprintf("The default of %q does not fit its type %s: %s.", name, v.typ.FriendlyName(), err), Subject: a.Expr.Range().Ptr()})
				} else {
					v.def, v.hasDefault = cv, true
				}
			}
		}
		if a, ok := content.Attributes["description"]; ok {
			var s string
			diags = append(diags, DecodeExpr(a.Expr, nil, cty.String, &s)...)
		}
		if a, ok := content.Attributes["build_input"]; ok {
			in := true
			diags = append(diags, DecodeExpr(a.Expr, nil, cty.Bool, &in)...)
			if !in {
				r.notInputs[name] = true
			}
		}
		v.validations = content.Blocks
		vars[name] = v
		order = append(order, name)
	}

	given := map[string]cty.Value{}
	fromFlag := map[string]bool{}
	for _, f := range opts.VarFiles {
		diags = append(diags, r.readVarFile(f, vars, given)...)
	}
	names := make([]string, 0, len(opts.Vars))
	for n := range opts.Vars {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v, ok := vars[n]
		if !ok {
			diags = append(diags, undeclaredVar(n, order, nil))
			continue
		}
		raw := opts.Vars[n]
		var val cty.Value
		if v.typ == cty.String || v.typ == cty.DynamicPseudoType && !looksLikeExpr(raw) {
			val = cty.StringVal(raw)
		} else {
			// A value that is not an HCL literal (banana, yes) fails here
			// as "Variables not allowed": say what the variable expects.
			expr, d := hclsyntax.ParseExpression([]byte(raw), "-var "+n, hcl.InitialPos)
			if !d.HasErrors() {
				val, d = expr.Value(nil)
			}
			if d.HasErrors() {
				diags = append(diags, badVarFlag(v, raw, ""))
				continue
			}
		}
		given[n] = val
		fromFlag[n] = true
	}

	for _, n := range order {
		v := vars[n]
		val, ok := given[n]
		if !ok {
			if v.badDefault {
				continue
			}
			if !v.hasDefault {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "No value for required variable",
					Detail: fmt.Sprintf("Variable %q has no default: give it with -var %s=VALUE or in a -var-file.", n, n), Subject: v.rng.Ptr()})
				continue
			}
			val = v.def
		}
		cv, err := convert.Convert(val, v.typ)
		if err != nil {
			if fromFlag[n] {
				diags = append(diags, badVarFlag(v, opts.Vars[n], err.Error()))
				continue
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable",
				Detail: fmt.Sprintf("The value given for %q does not fit its type %s: %s.", n, v.typ.FriendlyName(), err), Subject: v.rng.Ptr()})
			continue
		}
		r.vars[n] = cv
	}
	if diags.HasErrors() {
		return diags
	}
	for _, n := range order {
		diags = append(diags, r.checkValidations(vars[n])...)
	}
	return diags
}

// badVarFlag reports a -var value that does not fit the variable's type: it
// names the type as the recipe writes it and shows a value of that type on
// the command line. It points at the variable's type.
func badVarFlag(v *variable, raw, why string) *hcl.Diagnostic {
	detail := fmt.Sprintf("-var %s=%s: variable %q is", v.name, raw, v.name)
	if v.typ == cty.DynamicPseudoType {
		detail += " untyped"
	} else {
		detail += " of type " + typeexpr.TypeString(v.typ)
	}
	if why != "" {
		detail += " (" + why + ")"
	}
	detail += "; non-string values are written in HCL syntax"
	if ex, ok := exampleValue(v.typ, 0); ok {
		detail += fmt.Sprintf(", for example -var '%s=%s'", v.name, ex)
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable", Detail: detail + ".", Subject: v.typeRng.Ptr()}
}

// exampleValue renders a value of type t in HCL syntax, for messages; i
// varies the example between the elements of a collection.
func exampleValue(t cty.Type, i int) (string, bool) {
	elems := func(e cty.Type) (string, bool) {
		a, ok1 := exampleValue(e, i)
		b, ok2 := exampleValue(e, i+1)
		return a + "," + b, ok1 && ok2
	}
	switch {
	case t == cty.String:
		return fmt.Sprintf("%q", []string{"a", "b"}[i%2]), true
	case t == cty.Number:
		return []string{"2", "4"}[i%2], true
	case t == cty.Bool:
		return []string{"true", "false"}[i%2], true
	case t.IsListType() || t.IsSetType():
		s, ok := elems(t.ElementType())
		return "[" + s + "]", ok
	case t.IsMapType():
		s, ok := exampleValue(t.ElementType(), i)
		return "{ key = " + s + " }", ok
	case t.IsTupleType():
		var parts []string
		for j, e := range t.TupleElementTypes() {
			s, ok := exampleValue(e, j)
			if !ok {
				return "", false
			}
			parts = append(parts, s)
		}
		return "[" + strings.Join(parts, ",") + "]", true
	case t.IsObjectType():
		names := make([]string, 0, len(t.AttributeTypes()))
		for n := range t.AttributeTypes() {
			names = append(names, n)
		}
		sort.Strings(names)
		var parts []string
		for _, n := range names {
			s, ok := exampleValue(t.AttributeType(n), i)
			if !ok {
				return "", false
			}
			parts = append(parts, n+" = "+s)
		}
		return "{ " + strings.Join(parts, ", ") + " }", true
	}
	return "", false
}

func looksLikeExpr(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "[") || strings.HasPrefix(s, "{")
}

func undeclaredVar(name string, declared []string, rng *hcl.Range) *hcl.Diagnostic {
	detail := fmt.Sprintf("The recipe declares no variable %q.", name)
	if s := suggest(name, declared); s != "" {
		detail += fmt.Sprintf(" Did you mean %q?", s)
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Value for undeclared variable", Detail: detail, Subject: rng}
}

func (r *Recipe) readVarFile(path string, vars map[string]*variable, given map[string]cty.Value) hcl.Diagnostics {
	src, err := os.ReadFile(path)
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read variables file", Detail: err.Error()}}
	}
	r.Files[path] = src
	r.sources.addBytes(SourceVarFile, sourcePath(r.Dir, path), src)
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return diags
	}
	attrs, d := f.Body.JustAttributes()
	diags = append(diags, d...)
	declared := make([]string, 0, len(vars))
	for n := range vars {
		declared = append(declared, n)
	}
	sort.Strings(declared)
	for _, a := range sortedAttrs(attrs) {
		if _, ok := vars[a.Name]; !ok {
			diags = append(diags, undeclaredVar(a.Name, declared, a.NameRange.Ptr()))
			continue
		}
		val, d := a.Expr.Value(nil)
		diags = append(diags, d...)
		if !d.HasErrors() {
			given[a.Name] = val
		}
	}
	return diags
}

func (r *Recipe) checkValidations(v *variable) hcl.Diagnostics {
	var diags hcl.Diagnostics
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{v.name: r.vars[v.name]})}, Functions: r.funcs}
	for _, vb := range v.validations {
		content, d := vb.Body.Content(validationSchema)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		cond := content.Attributes["condition"]
		var ok bool
		d = DecodeExpr(cond.Expr, ctx, cty.Bool, &ok)
		diags = append(diags, d...)
		if d.HasErrors() || ok {
			continue
		}
		var msg string
		diags = append(diags, DecodeExpr(content.Attributes["error_message"].Expr, ctx, cty.String, &msg)...)
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable",
			Detail: fmt.Sprintf("%s (variable %q is %s)", msg, v.name, showValue(r.vars[v.name])), Subject: cond.Expr.Range().Ptr()})
	}
	return diags
}

func showValue(v cty.Value) string {
	if v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
		return fmt.Sprintf("%q", v.AsString())
	}
	if v.Type() == cty.Number && v.IsKnown() && !v.IsNull() {
		return v.AsBigFloat().Text('g', -1)
	}
	return v.Type().FriendlyName()
}

func sortedAttrs(attrs hcl.Attributes) []*hcl.Attribute {
	out := make([]*hcl.Attribute, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Range.Filename != out[j].Range.Filename {
			return out[i].Range.Filename < out[j].Range.Filename
		}
		return out[i].Range.Start.Byte < out[j].Range.Start.Byte
	})
	return out
}

// decodeLocals evaluates every locals attribute in dependency order. Locals
// may refer to var, other locals and functions, not to blocks.
func (r *Recipe) decodeLocals(blocks []*hcl.Block) hcl.Diagnostics {
	var diags hcl.Diagnostics
	defs := map[string]*hcl.Attribute{}
	var all []*hcl.Attribute
	for _, b := range blocks {
		attrs, d := b.Body.JustAttributes()
		diags = append(diags, d...)
		for _, a := range sortedAttrs(attrs) {
			if prev, ok := defs[a.Name]; ok {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate local value",
					Detail: fmt.Sprintf("local.%s is already defined at %s.", a.Name, prev.NameRange), Subject: a.NameRange.Ptr()})
				continue
			}
			defs[a.Name] = a
			all = append(all, a)
		}
	}
	names := make([]string, 0, len(all))
	for _, a := range all {
		names = append(names, a.Name)
	}
	deps := map[string][]string{}
	for _, a := range all {
		for _, tr := range a.Expr.Variables() {
			root := tr.RootName()
			switch {
			case root == "local":
				if len(tr) < 2 {
					continue
				}
				at, ok := tr[1].(hcl.TraverseAttr)
				if !ok {
					continue
				}
				if _, ok := defs[at.Name]; !ok {
					detail := fmt.Sprintf("No local value %q is defined.", at.Name)
					if s := suggest(at.Name, names); s != "" {
						detail += fmt.Sprintf(" Did you mean %q?", s)
					}
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Reference to undefined local value",
						Detail: detail, Subject: tr.SourceRange().Ptr()})
					continue
				}
				deps[a.Name] = append(deps[a.Name], at.Name)
			case root == "var":
				if d := r.checkVarRef(tr); d != nil {
					diags = append(diags, d)
				}
			default:
				if _, isKind := r.reg.Kind(root); isKind {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Block reference in locals",
						Detail: "Local values are computed before any block is built: they may refer to var, local and functions, not to blocks. Put the expression in the block that needs it.", Subject: tr.SourceRange().Ptr()})
				} else {
					diags = append(diags, unknownRoot(root, r.reg, tr.SourceRange()))
				}
			}
		}
	}
	if diags.HasErrors() {
		return diags
	}
	state := map[string]int{}
	var eval func(n string, path []string) bool
	eval = func(n string, path []string) bool {
		switch state[n] {
		case 2:
			return true
		case 1:
			cyc := append(path, n)
			for i, p := range cyc {
				if p == n {
					cyc = cyc[i:]
					break
				}
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cycle between local values",
				Detail: "These local values refer to each other in a circle: local." + strings.Join(cyc, " → local.") + ".", Subject: defs[n].NameRange.Ptr()})
			return false
		}
		state[n] = 1
		for _, d := range deps[n] {
			if !eval(d, append(path, n)) {
				return false
			}
		}
		val, d := defs[n].Expr.Value(r.evalContext(r.locals))
		diags = append(diags, d...)
		if d.HasErrors() {
			val = cty.DynamicVal
		}
		r.locals[n] = val
		state[n] = 2
		return true
	}
	for _, a := range all {
		if !eval(a.Name, nil) {
			break
		}
	}
	return diags
}

// unknownRoot reports a reference whose root is neither var, local nor a block type.
func unknownRoot(root string, reg *Registry, rng hcl.Range) *hcl.Diagnostic {
	known := append([]string{"var", "local"}, reg.Types()...)
	detail := fmt.Sprintf("There is no %q in a recipe: references start with var, local or a block type (%s).", root, strings.Join(reg.Types(), ", "))
	if s := suggest(root, known); s != "" {
		detail += fmt.Sprintf(" Did you mean %q?", s)
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown reference", Detail: detail, Subject: rng.Ptr()}
}
