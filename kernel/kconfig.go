package kernel

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// This file reads what the Kconfig files of a source tree say about each
// symbol — where it is defined, what it depends on (its own `depends on`
// lines and the enclosing `if`, `menu` and `choice` blocks), whether it
// has a prompt and who selects it — so that an option that does not
// survive olddefconfig can be explained. It is not a Kconfig
// implementation: the kernel's own scripts/kconfig resolves the
// configuration; this only reads the files to name the reason.

// Limits that keep malformed trees from exhausting memory or the stack.
const (
	maxKconfigDepth   = 64      // nested source statements
	maxKconfigFiles   = 20000   // files read
	maxKconfigBytes   = 1 << 24 // per file
	maxExprDepth      = 200     // nested parentheses and operators
	maxKconfigSymbols = 1 << 20
)

// kconfigIndex is what the Kconfig files of one tree say.
type kconfigIndex struct {
	syms map[string]*kconfigSymbol
}

// kconfigSymbol gathers every definition of one symbol.
type kconfigSymbol struct {
	Name       string
	Defs       []*kconfigDef
	SelectedBy []kconfigRef
}

// kconfigDef is one `config` or `menuconfig` entry.
type kconfigDef struct {
	Pos      string // file:line of the config line
	Type     string // bool, tristate, string, int, hex; "" if not stated here
	Prompt   bool   // it has a prompt, so a user (a fragment) can set it
	PromptIf string // the prompt's `if` condition, "" when unconditional
	PromptAt string // file:line of the prompt
	Depends  []kconfigDep
}

// kconfigDep is one dependency of an entry, as written.
type kconfigDep struct {
	Pos  string // file:line
	From string // "depends on", "if", "menu", "choice"
	Expr string
}

// kconfigRef is a `select SYM [if COND]` of another entry.
type kconfigRef struct {
	Sym  string // the selecting symbol
	Pos  string
	Cond string
}

// frame is an enclosing if/menu/choice block.
type frame struct {
	kind string // "if", "menu", "choice"
	deps []kconfigDep
}

type kconfigParser struct {
	fsys  fs.FS
	vars  map[string]string
	idx   *kconfigIndex
	files int
}

// parseKconfig reads the Kconfig tree of fsys from root (normally
// "Kconfig"), following source statements. vars expands $(NAME) in source
// paths, e.g. SRCARCH=x86.
func parseKconfig(fsys fs.FS, root string, vars map[string]string) (*kconfigIndex, error) {
	p := &kconfigParser{fsys: fsys, vars: vars, idx: &kconfigIndex{syms: map[string]*kconfigSymbol{}}}
	if err := p.file(root, nil, 0, false); err != nil {
		return nil, err
	}
	return p.idx, nil
}

func (p *kconfigParser) sym(name string) *kconfigSymbol {
	s := p.idx.syms[name]
	if s == nil {
		s = &kconfigSymbol{Name: name}
		if len(p.idx.syms) < maxKconfigSymbols {
			p.idx.syms[name] = s
		}
	}
	return s
}

// logicalLines splits Kconfig text into lines, joining backslash
// continuations; each keeps the number of its first physical line.
func logicalLines(text string) (lines []string, nums []int) {
	phys := strings.Split(text, "\n")
	for i := 0; i < len(phys); i++ {
		l, n := phys[i], i+1
		for strings.HasSuffix(l, "\\") && i+1 < len(phys) {
			i++
			l = strings.TrimSuffix(l, "\\") + " " + phys[i]
		}
		lines, nums = append(lines, strings.TrimRight(l, "\r")), append(nums, n)
	}
	return lines, nums
}

// indent measures leading white space with tabs to 8 columns.
func indent(l string) int {
	n := 0
	for _, c := range l {
		switch c {
		case ' ':
			n++
		case '\t':
			n = n/8*8 + 8
		default:
			return n
		}
	}
	return n
}

// cutWord splits the first word off s.
func cutWord(s string) (string, string) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// unquote reads a leading quoted string and returns it and the rest.
func unquote(s string) (string, string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || (s[0] != '"' && s[0] != '\'') {
		return "", s, false
	}
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case q:
			return b.String(), strings.TrimSpace(s[i+1:]), true
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), "", true
}

// expandVars replaces $(NAME) by vars[NAME].
func (p *kconfigParser) expandVars(s string) string {
	for k, v := range p.vars {
		s = strings.ReplaceAll(s, "$("+k+")", v)
	}
	return s
}

func (p *kconfigParser) file(name string, stack []frame, depth int, optional bool) error {
	if depth > maxKconfigDepth {
		return fmt.Errorf("%s: source statements nested more than %d deep", name, maxKconfigDepth)
	}
	if strings.ContainsAny(name, "*?[") {
		matches, err := fs.Glob(p.fsys, name)
		if err != nil {
			return fmt.Errorf("source %q: %w", name, err)
		}
		for _, m := range matches {
			if err := p.file(m, stack, depth+1, optional); err != nil {
				return err
			}
		}
		return nil
	}
	p.files++
	if p.files > maxKconfigFiles {
		return fmt.Errorf("more than %d Kconfig files", maxKconfigFiles)
	}
	f, err := p.fsys.Open(name)
	if err != nil {
		if optional && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("reading Kconfig: %w", err)
	}
	buf, err := io.ReadAll(io.LimitReader(f, maxKconfigBytes+1))
	f.Close()
	if err != nil {
		return fmt.Errorf("reading Kconfig %s: %w", name, err)
	}
	if len(buf) > maxKconfigBytes {
		return fmt.Errorf("Kconfig %s is larger than %d bytes", name, maxKconfigBytes)
	}
	lines, nums := logicalLines(string(buf))
	base := len(stack)
	stack = append([]frame(nil), stack...)
	var cur *kconfigDef
	var curSym string
	ctx := "" // where depends lines go: "entry", "block" (top frame), or ""
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		pos := fmt.Sprintf("%s:%d", name, nums[i])
		t := strings.TrimSpace(l)
		if t == "" || t[0] == '#' {
			continue
		}
		kw, rest := cutWord(t)
		switch kw {
		case "help", "---help---":
			// Skip the help text: the lines indented at least as much as
			// its first line.
			hi := -1
			for i+1 < len(lines) {
				nl := lines[i+1]
				if strings.TrimSpace(nl) == "" {
					i++
					continue
				}
				if hi < 0 {
					hi = indent(nl)
					if hi <= indent(l) {
						break
					}
				}
				if indent(nl) < hi {
					break
				}
				i++
			}
		case "config", "menuconfig":
			curSym = rest
			cur = &kconfigDef{Pos: pos}
			for _, fr := range stack {
				cur.Depends = append(cur.Depends, fr.deps...)
			}
			s := p.sym(curSym)
			s.Defs = append(s.Defs, cur)
			ctx = "entry"
		case "choice":
			stack = append(stack, frame{kind: "choice"})
			cur, ctx = nil, "block"
		case "menu":
			stack = append(stack, frame{kind: "menu"})
			cur, ctx = nil, "block"
		case "if":
			stack = append(stack, frame{kind: "if", deps: []kconfigDep{{Pos: pos, From: "if", Expr: strings.Join(strings.Fields(rest), " ")}}})
			cur, ctx = nil, ""
		case "endif", "endmenu", "endchoice":
			if len(stack) > base {
				stack = stack[:len(stack)-1]
			}
			cur, ctx = nil, ""
		case "comment", "mainmenu":
			cur, ctx = nil, "" // a comment's depends concern the comment only
		case "source", "rsource", "osource", "orsource":
			src, _, ok := unquote(rest)
			if !ok {
				src = rest
			}
			src = p.expandVars(src)
			if strings.HasPrefix(kw, "r") || strings.HasPrefix(kw, "or") {
				src = path.Join(path.Dir(name), src)
			}
			src = path.Clean(src)
			if path.IsAbs(src) || src == ".." || strings.HasPrefix(src, "../") {
				return fmt.Errorf("%s: source %q leaves the source tree", pos, src)
			}
			if err := p.file(src, stack, depth+1, strings.HasPrefix(kw, "o")); err != nil {
				return err
			}
			cur, ctx = nil, ""
		case "depends":
			on, expr := cutWord(rest)
			if on != "on" {
				continue
			}
			d := kconfigDep{Pos: pos, From: "depends on", Expr: strings.Join(strings.Fields(expr), " ")}
			switch {
			case ctx == "entry" && cur != nil:
				cur.Depends = append(cur.Depends, d)
			case ctx == "block" && len(stack) > 0:
				top := &stack[len(stack)-1]
				d.From = top.kind
				top.deps = append(top.deps, d)
			}
		case "bool", "tristate", "string", "int", "hex", "boolean":
			if cur == nil {
				continue
			}
			cur.Type = strings.TrimSuffix(kw, "ean")
			if _, after, ok := unquote(rest); ok {
				cur.Prompt, cur.PromptAt = true, pos
				if c, ok := strings.CutPrefix(after, "if "); ok {
					cur.PromptIf = strings.TrimSpace(c)
				}
			}
		case "def_bool", "def_tristate":
			if cur != nil {
				cur.Type = strings.TrimPrefix(kw, "def_")
			}
		case "prompt":
			if cur == nil {
				continue
			}
			if _, after, ok := unquote(rest); ok {
				cur.Prompt, cur.PromptAt = true, pos
				if c, ok := strings.CutPrefix(after, "if "); ok {
					cur.PromptIf = strings.TrimSpace(c)
				}
			}
		case "select":
			if cur == nil {
				continue
			}
			target, cond := cutWord(rest)
			cond, _ = strings.CutPrefix(cond, "if ")
			s := p.sym(target)
			s.SelectedBy = append(s.SelectedBy, kconfigRef{Sym: curSym, Pos: pos, Cond: strings.TrimSpace(cond)})
		}
	}
	return nil
}

// Kconfig expressions.

type exprKind int

const (
	exprSym exprKind = iota // a symbol or a constant
	exprNot
	exprAnd
	exprOr
	exprCmp
)

type expr struct {
	kind   exprKind
	name   string // exprSym: symbol, y/m/n, number, quoted string (with quotes), or a $(macro)
	op     string // exprCmp: = != < > <= >=
	a, b   *expr
	quoted bool
}

func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case strings.HasPrefix(s[i:], "&&") || strings.HasPrefix(s[i:], "||") || strings.HasPrefix(s[i:], "!=") ||
			strings.HasPrefix(s[i:], "<=") || strings.HasPrefix(s[i:], ">="):
			toks = append(toks, s[i:i+2])
			i += 2
		case strings.ContainsRune("!()=<>", rune(c)):
			toks = append(toks, s[i:i+1])
			i++
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string in %q", s)
			}
			toks = append(toks, s[i:j+1])
			i = j + 1
		case c == '$' && i+1 < len(s) && s[i+1] == '(':
			depth, j := 0, i+1
			for ; j < len(s); j++ {
				if s[j] == '(' {
					depth++
				} else if s[j] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated macro in %q", s)
			}
			toks = append(toks, s[i:j+1])
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t!()=<>&|\"'", rune(s[j])) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("unexpected %q in %q", c, s)
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

type exprParser struct {
	toks  []string
	pos   int
	depth int
}

// parseExpr parses a Kconfig expression.
func parseExpr(s string) (*expr, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	p := &exprParser{toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q in %q", p.toks[p.pos], s)
	}
	return e, nil
}

func (p *exprParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *exprParser) enter() error {
	p.depth++
	if p.depth > maxExprDepth {
		return fmt.Errorf("expression nested more than %d deep", maxExprDepth)
	}
	return nil
}

func (p *exprParser) or() (*expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	a, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek() == "||" {
		p.pos++
		b, err := p.and()
		if err != nil {
			return nil, err
		}
		a = &expr{kind: exprOr, a: a, b: b}
	}
	return a, nil
}

func (p *exprParser) and() (*expr, error) {
	a, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.peek() == "&&" {
		p.pos++
		b, err := p.unary()
		if err != nil {
			return nil, err
		}
		a = &expr{kind: exprAnd, a: a, b: b}
	}
	return a, nil
}

func (p *exprParser) unary() (*expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	switch t := p.peek(); t {
	case "!":
		p.pos++
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &expr{kind: exprNot, a: x}, nil
	case "(":
		p.pos++
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, errors.New("missing )")
		}
		p.pos++
		return x, nil
	}
	a, err := p.atom()
	if err != nil {
		return nil, err
	}
	switch op := p.peek(); op {
	case "=", "!=", "<", ">", "<=", ">=":
		p.pos++
		b, err := p.atom()
		if err != nil {
			return nil, err
		}
		return &expr{kind: exprCmp, op: op, a: a, b: b}, nil
	}
	return a, nil
}

func (p *exprParser) atom() (*expr, error) {
	t := p.peek()
	switch t {
	case "", "&&", "||", "!", "(", ")", "=", "!=", "<", ">", "<=", ">=":
		if t == "" {
			return nil, errors.New("expression ends early")
		}
		return nil, fmt.Errorf("unexpected %q", t)
	}
	p.pos++
	return &expr{kind: exprSym, name: t, quoted: t[0] == '"' || t[0] == '\''}, nil
}

// configValues is a resolved configuration: symbol (without CONFIG_) to
// its value as .config writes it ("y", "m", "\"text\"", "42"); unset
// symbols are absent.
type configValues map[string]string

// raw returns the value of an atom: a constant or a symbol's value.
func (e *expr) raw(cfg configValues) (string, bool) {
	switch {
	case e.quoted:
		s, _, _ := unquote(e.name)
		return s, true
	case e.name == "y" || e.name == "m" || e.name == "n":
		return e.name, true
	case strings.HasPrefix(e.name, "$("):
		return "", false // a macro, expanded by Kconfig at configuration time
	}
	if v, ok := cfg[e.name]; ok {
		if s, _, ok := unquote(v); ok {
			return s, true
		}
		return v, true
	}
	if _, err := strconv.ParseInt(e.name, 0, 64); err == nil {
		return e.name, true
	}
	return "n", true
}

func tri(v string) int {
	switch v {
	case "y":
		return 2
	case "m":
		return 1
	}
	return 0
}

// eval evaluates e to a tristate: 0 (n), 1 (m), 2 (y). Macros count as y:
// they cannot be evaluated here.
func (e *expr) eval(cfg configValues) int {
	switch e.kind {
	case exprNot:
		return 2 - e.a.eval(cfg)
	case exprAnd:
		return min(e.a.eval(cfg), e.b.eval(cfg))
	case exprOr:
		return max(e.a.eval(cfg), e.b.eval(cfg))
	case exprCmp:
		a, okA := e.a.raw(cfg)
		b, okB := e.b.raw(cfg)
		if !okA || !okB {
			return 2
		}
		c := strings.Compare(a, b)
		if x, err := strconv.ParseInt(a, 0, 64); err == nil {
			if y, err := strconv.ParseInt(b, 0, 64); err == nil {
				c = 0
				if x < y {
					c = -1
				} else if x > y {
					c = 1
				}
			}
		}
		ok := map[string]bool{"=": c == 0, "!=": c != 0, "<": c < 0, ">": c > 0, "<=": c <= 0, ">=": c >= 0}[e.op]
		if ok {
			return 2
		}
		return 0
	}
	v, ok := e.raw(cfg)
	if !ok {
		return 2
	}
	return tri(v)
}

// describeValue renders a symbol's resolved value for messages.
func describeValue(cfg configValues, sym string) string {
	if v, ok := cfg[sym]; ok {
		return "=" + v
	}
	return " is not set"
}

// blame lists the atoms of e that keep it below need, e.g.
// "BLOCK (is not set)" or "!X86_32 (X86_32=y)".
func (e *expr) blame(cfg configValues, need int) []string {
	if e.eval(cfg) >= need {
		return nil
	}
	switch e.kind {
	case exprAnd, exprOr:
		return append(e.a.blame(cfg, need), e.b.blame(cfg, need)...)
	case exprNot:
		return []string{"!" + e.a.operand() + " (" + strings.Join(e.a.setAtoms(cfg), ", ") + ")"}
	case exprCmp:
		return []string{e.String() + " (" + e.a.valueString(cfg) + ")"}
	}
	return []string{e.valueString(cfg)}
}

// setAtoms lists the atoms of e that are set, with their values.
func (e *expr) setAtoms(cfg configValues) []string {
	switch e.kind {
	case exprNot:
		return e.a.setAtoms(cfg)
	case exprAnd, exprOr:
		return append(e.a.setAtoms(cfg), e.b.setAtoms(cfg)...)
	case exprCmp:
		return []string{e.a.valueString(cfg)}
	}
	if e.eval(cfg) > 0 {
		return []string{e.valueString(cfg)}
	}
	return nil
}

// valueString renders an atom with its value: "BLOCK is not set", "VIRTIO=m".
func (e *expr) valueString(cfg configValues) string {
	if e.kind != exprSym {
		return e.String()
	}
	if e.quoted || e.name == "y" || e.name == "m" || e.name == "n" || strings.HasPrefix(e.name, "$(") {
		return e.name
	}
	return e.name + describeValue(cfg, e.name)
}

func (e *expr) String() string {
	switch e.kind {
	case exprNot:
		return "!" + e.a.operand()
	case exprAnd:
		return e.a.paren() + " && " + e.b.paren()
	case exprOr:
		return e.a.String() + " || " + e.b.String()
	case exprCmp:
		return e.a.String() + e.op + e.b.String()
	}
	return e.name
}

// operand renders e as the operand of !.
func (e *expr) operand() string {
	if e.kind == exprOr || e.kind == exprAnd {
		return "(" + e.String() + ")"
	}
	return e.String()
}

func (e *expr) paren() string {
	if e.kind == exprOr {
		return "(" + e.String() + ")"
	}
	return e.String()
}

// explainUnmet says why sym did not get the requested value want ("y",
// "m", "n", or a string/number value), given the resolved configuration.
// Each line names a Kconfig location and what it lacks.
func (idx *kconfigIndex) explain(sym, want string, cfg configValues, requested configValues) []string {
	s, ok := idx.syms[sym]
	if !ok || len(s.Defs) == 0 {
		return []string{fmt.Sprintf("no Kconfig file of this source tree defines %s: it is misspelt, or this kernel version does not have it", sym)}
	}
	var out []string
	need := tri(want)
	hint := func(atoms []string) string {
		for i, a := range atoms {
			if strings.HasPrefix(a, "!") {
				continue
			}
			name, _, _ := strings.Cut(a, " ")
			name, _, _ = strings.Cut(name, "=")
			if _, asked := requested[name]; !asked {
				a += ", which no fragment sets"
			}
			if dep, ok := idx.syms[name]; ok && !dep.prompted() && len(dep.SelectedBy) > 0 {
				a += " (it has no prompt; select it with one of " + selectorNames(dep) + ")"
			}
			atoms[i] = a
		}
		return strings.Join(atoms, "; ")
	}
	if want != "n" && want != "" {
		if need == 0 {
			need = 2 // a string or number option: its dependencies must hold
		}
		for _, d := range s.Defs {
			for _, dep := range d.Depends {
				e, err := parseExpr(dep.Expr)
				if err != nil {
					continue
				}
				if e.eval(cfg) >= need {
					continue
				}
				line := fmt.Sprintf("%s: %s %s", dep.Pos, dep.From, dep.Expr)
				if b := e.blame(cfg, need); len(b) > 0 {
					line += " — lacks " + hint(b)
				}
				if need == 2 && e.eval(cfg) == 1 {
					line += " (a dependency is a module, so this option can be m at most)"
				}
				out = append(out, line)
			}
		}
		if len(out) == 0 {
			prompted := false
			for _, d := range s.Defs {
				if !d.Prompt {
					continue
				}
				if d.PromptIf != "" {
					if e, err := parseExpr(d.PromptIf); err == nil && e.eval(cfg) == 0 {
						out = append(out, fmt.Sprintf("%s: its prompt is shown only if %s — lacks %s, so the default applies", d.PromptAt, d.PromptIf, hint(e.blame(cfg, 1))))
						continue
					}
				}
				prompted = true
			}
			if !prompted && len(out) == 0 {
				out = append(out, fmt.Sprintf("%s: %s has no prompt: only a select (or its default) sets it%s", s.Defs[0].Pos, sym, selectors(s, cfg, false)))
			}
		}
	} else {
		for _, r := range s.SelectedBy {
			if tri(cfg[r.Sym]) == 0 {
				continue
			}
			if r.Cond != "" {
				if e, err := parseExpr(r.Cond); err == nil && e.eval(cfg) == 0 {
					continue
				}
			}
			out = append(out, fmt.Sprintf("%s: selected by %s (%s)", r.Pos, r.Sym, strings.TrimPrefix(describeValue(cfg, r.Sym), " ")))
		}
		if len(out) == 0 {
			for _, d := range s.Defs {
				if !d.Prompt {
					out = append(out, fmt.Sprintf("%s: %s has no prompt: its default applies", d.Pos, sym))
				} else if d.PromptIf != "" {
					if e, err := parseExpr(d.PromptIf); err == nil && e.eval(cfg) == 0 {
						out = append(out, fmt.Sprintf("%s: its prompt is shown only if %s, so its default applies", d.PromptAt, d.PromptIf))
					}
				}
			}
		}
	}
	if len(out) == 0 {
		out = append(out, fmt.Sprintf("%s: Kconfig resolved it otherwise (a choice, a range or a default); see `make menuconfig` for %s", s.Defs[0].Pos, sym))
	}
	return out
}

// prompted says whether any definition of s has a prompt.
func (s *kconfigSymbol) prompted() bool {
	for _, d := range s.Defs {
		if d.Prompt {
			return true
		}
	}
	return false
}

// selectorNames lists the symbols that select s, sorted, at most twelve.
func selectorNames(s *kconfigSymbol) string {
	seen := map[string]bool{}
	var names []string
	for _, r := range s.SelectedBy {
		if !seen[r.Sym] {
			seen[r.Sym] = true
			names = append(names, r.Sym)
		}
	}
	sort.Strings(names)
	if len(names) > 12 {
		names = append(names[:12], fmt.Sprintf("%d more", len(names)-12))
	}
	return strings.Join(names, ", ")
}

// selectors lists the symbols that may select s, with their values.
func selectors(s *kconfigSymbol, cfg configValues, onlySet bool) string {
	if len(s.SelectedBy) == 0 {
		return ""
	}
	var names []string
	seen := map[string]bool{}
	for _, r := range s.SelectedBy {
		if seen[r.Sym] || (onlySet && tri(cfg[r.Sym]) == 0) {
			continue
		}
		seen[r.Sym] = true
		names = append(names, r.Sym+describeValue(cfg, r.Sym))
	}
	sort.Strings(names)
	if len(names) > 8 {
		names = append(names[:8], fmt.Sprintf("and %d more", len(names)-8))
	}
	return "; selected by " + strings.Join(names, ", ")
}
