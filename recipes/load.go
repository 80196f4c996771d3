package recipes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/cocobuild/cocobuild/internal/names"
)

// LockFileName is the file, beside the recipe, that holds resolved pins.
const LockFileName = "cocobuild.lock.hcl"

// Recipe is a loaded recipe: its files, variables, locals and blocks.
type Recipe struct {
	Name  string // from the recipe block, else the directory or file name
	Dir   string // the directory of the recipe files (relative paths resolve here)
	Epoch int64  // SOURCE_DATE_EPOCH for every output
	// Cache is the recipe block's cache setting: the remote caches a
	// build pulls step results from and pushes them to, unless the command
	// line or the environment name others.
	Cache CacheSetting

	Files  map[string][]byte // file name → source, for diagnostics
	Blocks []*Block          // in dependency order: a block comes after those it refers to

	vars       map[string]cty.Value
	varsFailed bool // some variable had no valid value: do not report references to it
	locals     map[string]cty.Value
	funcs      map[string]function.Function
	reg        *Registry
	sources    *sourceSet      // what decided the build; see Sources
	notInputs  map[string]bool // variables declared build_input = false
}

// Block is one block of a registered kind.
type Block struct {
	Kind       Kind
	Type       string // e.g. "kernel"
	Name       string // the label, e.g. "guest"
	Body       hcl.Body
	DefRange   hcl.Range
	LabelRange hcl.Range
	Deps       []string // addresses ("input.ovmf") of the blocks it refers to, sorted
}

// Addr is the block's address, e.g. "kernel.guest".
func (b *Block) Addr() string { return b.Type + "." + b.Name }

// LoadOptions are the caller's settings for Load.
type LoadOptions struct {
	Vars     map[string]string // -var name=value
	VarFiles []string          // -var-file paths
}

// Load reads a recipe from a .hcl file or a directory of them and checks its
// structure: block types, labels, variables, locals and references. It
// returns every problem it finds, not just the first.
func Load(path string, reg *Registry, opts LoadOptions) (*Recipe, hcl.Diagnostics) {
	files, dir, name, err := recipeFiles(path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read recipe", Detail: err.Error()}}
	}
	r := &Recipe{Name: name, Dir: dir, Files: map[string][]byte{}, reg: reg,
		vars: map[string]cty.Value{}, locals: map[string]cty.Value{}, sources: &sourceSet{}, notInputs: map[string]bool{}}
	r.funcs = functions(dir, r.sources)
	parser := hclparse.NewParser()
	var diags hcl.Diagnostics
	var bodies []*hclsyntax.Body
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read recipe file", Detail: err.Error()})
			continue
		}
		r.Files[f] = src
		r.sources.addBytes(SourceRecipe, filepath.Base(f), src)
		file, d := parser.ParseHCL(src, f)
		diags = append(diags, d...)
		if file != nil {
			if b, ok := file.Body.(*hclsyntax.Body); ok {
				bodies = append(bodies, b)
			}
		}
	}
	diags = append(diags, r.recordLock()...)
	if diags.HasErrors() {
		return nil, diags
	}

	schema := &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "recipe"}, {Type: "variable", LabelNames: []string{"name"}}, {Type: "locals"},
	}}
	for _, t := range reg.Types() {
		schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: t, LabelNames: []string{"name"}})
	}
	var recipeBlocks, varBlocks, localBlocks []*hcl.Block
	var kindBlocks []*hcl.Block
	for _, body := range bodies {
		content, d := body.Content(schema)
		diags = append(diags, d...)
		for _, b := range content.Blocks {
			switch b.Type {
			case "recipe":
				recipeBlocks = append(recipeBlocks, b)
			case "variable":
				varBlocks = append(varBlocks, b)
			case "locals":
				localBlocks = append(localBlocks, b)
			default:
				kindBlocks = append(kindBlocks, b)
			}
		}
	}
	diags = append(diags, r.decodeRecipeBlock(recipeBlocks)...)
	d := r.decodeVariables(varBlocks, opts)
	r.varsFailed = d.HasErrors()
	diags = append(diags, d...)
	if !r.varsFailed {
		if err := r.recordVariables(); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot digest variable", Detail: err.Error()})
		}
	}
	diags = append(diags, r.decodeLocals(localBlocks)...)
	diags = append(diags, r.collectBlocks(kindBlocks)...)
	if diags.HasErrors() {
		return nil, diags
	}
	return r, diags
}

// recordLock records the lock file beside the recipe, when there is one.
func (r *Recipe) recordLock() hcl.Diagnostics {
	src, err := os.ReadFile(filepath.Join(r.Dir, LockFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read lock file", Detail: err.Error()}}
	}
	r.sources.addBytes(SourceLock, LockFileName, src)
	return nil
}

// recipeFiles lists the recipe's .hcl files (sorted) and its directory and default name.
func recipeFiles(path string) (files []string, dir, name string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, "", "", fmt.Errorf("%w: give a recipe file (*.hcl) or a directory of them", err)
	}
	if !st.IsDir() {
		if filepath.Ext(path) != ".hcl" {
			return nil, "", "", fmt.Errorf("%s is not a recipe: give a recipe file (*.hcl) or a directory of them", path)
		}
		return []string{path}, filepath.Dir(path), strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, "", "", err
	}
	for _, e := range ents {
		if e.IsDir() || filepath.Ext(e.Name()) != ".hcl" || e.Name() == LockFileName {
			continue
		}
		files = append(files, filepath.Join(path, e.Name()))
	}
	if len(files) == 0 {
		return nil, "", "", fmt.Errorf("no *.hcl recipe files in %s", path)
	}
	sort.Strings(files)
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", "", err
	}
	return files, path, filepath.Base(abs), nil
}

func (r *Recipe) decodeRecipeBlock(blocks []*hcl.Block) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for i, b := range blocks {
		if i > 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate recipe block",
				Detail: fmt.Sprintf("A recipe has one recipe block; the first is at %s.", blocks[0].DefRange), Subject: b.DefRange.Ptr()})
			continue
		}
		content, d := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
			{Name: "name"}, {Name: "epoch"}, {Name: "description"}, {Name: "cache"},
		}})
		diags = append(diags, d...)
		ctx := r.evalContext(nil)
		if a, ok := content.Attributes["name"]; ok {
			var name string
			diags = append(diags, DecodeExpr(a.Expr, ctx, cty.String, &name)...)
			if name != "" && names.Check(name) != nil {
				diags = append(diags, Diag("Invalid recipe name", "A recipe name may hold letters, digits, '-', '_' and '.'; it names the output directory.", a.Expr.Range()))
			} else if name != "" {
				r.Name = name
			}
		}
		if a, ok := content.Attributes["epoch"]; ok {
			var epoch int64
			diags = append(diags, DecodeExpr(a.Expr, ctx, cty.Number, &epoch)...)
			if epoch < 0 {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid epoch",
					Detail: "epoch is a SOURCE_DATE_EPOCH: seconds since 1970, not negative.", Subject: a.Expr.Range().Ptr()})
			}
			r.Epoch = epoch
		}
		if a, ok := content.Attributes["cache"]; ok {
			diags = append(diags, r.decodeCache(a, ctx)...)
		}
	}
	return diags
}

// CacheSetting is the recipe block's cache attribute:
//
//	cache = { from = ["oci://HOST/REPO"], to = ["oci://HOST/REPO"] }
type CacheSetting struct {
	From  []string  `cty:"from"`
	To    []string  `cty:"to"`
	Range hcl.Range // of the attribute's value, for diagnostics; zero when unset
}

func (r *Recipe) decodeCache(a *hcl.Attribute, ctx *hcl.EvalContext) hcl.Diagnostics {
	typ := cty.ObjectWithOptionalAttrs(map[string]cty.Type{"from": cty.List(cty.String), "to": cty.List(cty.String)}, []string{"from", "to"})
	var c CacheSetting
	diags := DecodeExpr(a.Expr, ctx, typ, &c)
	if diags.HasErrors() {
		return diags
	}
	for _, ref := range append(append([]string{}, c.From...), c.To...) {
		if !strings.HasPrefix(ref, "oci://") || len(ref) == len("oci://") {
			return append(diags, Diag("Invalid cache reference", fmt.Sprintf("cache %q: a remote cache is an OCI repository, oci://HOST[:PORT]/REPO.", ref), a.Expr.Range()))
		}
	}
	c.Range = a.Expr.Range()
	r.Cache = c
	return diags
}

// collectBlocks records the blocks of registered kinds, their references,
// and orders them so that every block follows those it refers to.
func (r *Recipe) collectBlocks(hblocks []*hcl.Block) hcl.Diagnostics {
	var diags hcl.Diagnostics
	byAddr := map[string]*Block{}
	for _, hb := range hblocks {
		k, _ := r.reg.Kind(hb.Type)
		b := &Block{Kind: k, Type: hb.Type, Name: hb.Labels[0], Body: hb.Body, DefRange: hb.DefRange, LabelRange: hb.LabelRanges[0]}
		// A name without '.', which separates the parts of an address.
		if names.Check(b.Name) != nil || strings.Contains(b.Name, ".") {
			diags = append(diags, Diag("Invalid block name", fmt.Sprintf("%s %q: a block name may hold letters, digits, '-' and '_'.", b.Type, b.Name), b.LabelRange))
			continue
		}
		if prev, dup := byAddr[b.Addr()]; dup {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate block",
				Detail: fmt.Sprintf("%s is already declared at %s.", b.Addr(), prev.DefRange), Subject: b.DefRange.Ptr()})
			continue
		}
		byAddr[b.Addr()] = b
		r.Blocks = append(r.Blocks, b)
	}
	for _, b := range r.Blocks {
		deps := map[string]bool{}
		for _, tr := range bodyVariables(b.Body) {
			root := tr.RootName()
			if root == "var" {
				if d := r.checkVarRef(tr); d != nil {
					diags = append(diags, d)
				}
				continue
			}
			if _, isKind := r.reg.Kind(root); !isKind {
				continue
			}
			if len(tr) < 2 {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid reference",
					Detail: fmt.Sprintf("A reference to a %s block names it: %s.NAME.", root, root), Subject: tr.SourceRange().Ptr()})
				continue
			}
			attr, ok := tr[1].(hcl.TraverseAttr)
			if !ok {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid reference",
					Detail: fmt.Sprintf("A reference to a %s block names it: %s.NAME.", root, root), Subject: tr.SourceRange().Ptr()})
				continue
			}
			addr := root + "." + attr.Name
			if _, ok := byAddr[addr]; !ok {
				detail := fmt.Sprintf("No %s block named %q is declared in this recipe.", root, attr.Name)
				if s := suggest(attr.Name, namesOf(r.Blocks, root)); s != "" {
					detail += fmt.Sprintf(" Did you mean %q?", s)
				}
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Reference to undeclared block",
					Detail: detail, Subject: tr.SourceRange().Ptr()})
				continue
			}
			if addr == b.Addr() {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Self-referential block",
					Detail: fmt.Sprintf("%s refers to itself.", addr), Subject: tr.SourceRange().Ptr()})
				continue
			}
			deps[addr] = true
		}
		for d := range deps {
			b.Deps = append(b.Deps, d)
		}
		sort.Strings(b.Deps)
	}
	if diags.HasErrors() {
		return diags
	}
	order, cycle := topoSort(r.Blocks, byAddr)
	if cycle != nil {
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cycle between blocks",
			Detail:  "These blocks refer to each other in a circle: " + strings.Join(cycle, " → ") + ". Break the cycle.",
			Subject: byAddr[cycle[0]].DefRange.Ptr()})
	}
	r.Blocks = order
	return diags
}

func namesOf(blocks []*Block, typ string) []string {
	var ns []string
	for _, b := range blocks {
		if b.Type == typ {
			ns = append(ns, b.Name)
		}
	}
	return ns
}

// topoSort orders blocks so that dependencies come first, keeping the
// declaration order otherwise; it returns a cycle when there is one.
func topoSort(blocks []*Block, byAddr map[string]*Block) ([]*Block, []string) {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var order []*Block
	var stack []string
	var cycle []string
	var visit func(b *Block) bool
	visit = func(b *Block) bool {
		switch state[b.Addr()] {
		case done:
			return true
		case active:
			for i, a := range stack {
				if a == b.Addr() {
					cycle = append(append([]string(nil), stack[i:]...), b.Addr())
				}
			}
			return false
		}
		state[b.Addr()] = active
		stack = append(stack, b.Addr())
		for _, d := range b.Deps {
			if !visit(byAddr[d]) {
				return false
			}
		}
		stack = stack[:len(stack)-1]
		state[b.Addr()] = done
		order = append(order, b)
		return true
	}
	for _, b := range blocks {
		if !visit(b) {
			return nil, cycle
		}
	}
	return order, nil
}

// bodyVariables lists every traversal in a native-syntax body, nested blocks included.
func bodyVariables(body hcl.Body) []hcl.Traversal {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var out []hcl.Traversal
	names := make([]string, 0, len(sb.Attributes))
	for n := range sb.Attributes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, sb.Attributes[n].Expr.Variables()...)
	}
	for _, b := range sb.Blocks {
		out = append(out, bodyVariables(b.Body)...)
	}
	return out
}

// EvalContext returns the evaluation context for decoding blocks: var,
// local, functions and, for every block type, an object of the blocks'
// values. Blocks missing from outputs are unknown values of their kind's
// OutputType.
func (r *Recipe) EvalContext(outputs map[string]cty.Value) *hcl.EvalContext {
	ctx := r.evalContext(nil)
	byType := map[string]map[string]cty.Value{}
	for _, b := range r.Blocks {
		v, ok := outputs[b.Addr()]
		if !ok {
			v = cty.UnknownVal(b.Kind.OutputType())
		}
		if byType[b.Type] == nil {
			byType[b.Type] = map[string]cty.Value{}
		}
		byType[b.Type][b.Name] = v
	}
	for _, t := range r.reg.Types() {
		if m, ok := byType[t]; ok {
			ctx.Variables[t] = cty.ObjectVal(m)
		} else {
			ctx.Variables[t] = cty.EmptyObjectVal
		}
	}
	return ctx
}

func (r *Recipe) evalContext(locals map[string]cty.Value) *hcl.EvalContext {
	if locals == nil {
		locals = r.locals
	}
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var":   cty.ObjectVal(r.vars),
			"local": cty.ObjectVal(locals),
		},
		Functions: r.funcs,
	}
}

// Validate decodes every block against its kind's schema with the outputs of
// all blocks unknown, and returns every problem found.
func (r *Recipe) Validate() hcl.Diagnostics {
	ctx := r.EvalContext(nil)
	var diags hcl.Diagnostics
	for _, b := range r.Blocks {
		_, d := b.Kind.Decode(b, ctx)
		diags = append(diags, d...)
	}
	return diags
}

// Variables returns the values of the recipe's variables.
func (r *Recipe) Variables() map[string]cty.Value { return r.vars }

// ReadSources reads the recipe files and variable files at path, for
// showing diagnostics when Load could not return a Recipe.
func ReadSources(path string, varFiles []string) map[string][]byte {
	out := map[string][]byte{}
	files, _, _, err := recipeFiles(path)
	if err != nil {
		return out
	}
	for _, f := range append(files, varFiles...) {
		if b, err := os.ReadFile(f); err == nil {
			out[f] = b
		}
	}
	return out
}

// checkVarRef reports a reference to an undeclared variable, with the
// closest declared name.
func (r *Recipe) checkVarRef(tr hcl.Traversal) *hcl.Diagnostic {
	if len(tr) < 2 {
		return nil
	}
	at, ok := tr[1].(hcl.TraverseAttr)
	if !ok {
		return nil
	}
	if _, ok := r.vars[at.Name]; ok || r.varsFailed {
		return nil
	}
	names := make([]string, 0, len(r.vars))
	for n := range r.vars {
		names = append(names, n)
	}
	sort.Strings(names)
	detail := fmt.Sprintf("The recipe declares no variable %q.", at.Name)
	if s := suggest(at.Name, names); s != "" {
		detail += fmt.Sprintf(" Did you mean %q?", s)
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Reference to undeclared variable", Detail: detail, Subject: tr.SourceRange().Ptr()}
}
