// Package kconfig reads what the Kconfig files of a kernel source tree say
// about each symbol — where it is defined, what it depends on (its own
// `depends on` lines and the enclosing `if`, `menu` and `choice` blocks),
// whether it has a prompt and who selects it — so that an option that does
// not survive olddefconfig can be explained. It is not a Kconfig
// implementation: the kernel's own scripts/kconfig resolves the
// configuration; this only reads the files to name the reason.
package kconfig

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// Limits that keep malformed trees from exhausting memory or the stack.
const (
	maxKconfigDepth   = 64      // nested source statements
	maxKconfigFiles   = 20000   // files read
	maxKconfigBytes   = 1 << 24 // per file
	maxExprDepth      = 200     // nested parentheses and operators
	maxKconfigSymbols = 1 << 20
)

// Index is what the Kconfig files of one tree say.
type Index struct {
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
	idx   *Index
	files int
}

// Parse reads the Kconfig tree of fsys from root (normally
// "Kconfig"), following source statements. vars expands $(NAME) in source
// paths, e.g. SRCARCH=x86.
func Parse(fsys fs.FS, root string, vars map[string]string) (*Index, error) {
	p := &kconfigParser{fsys: fsys, vars: vars, idx: &Index{syms: map[string]*kconfigSymbol{}}}
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

// Unquote reads a leading quoted string (Kconfig's and .config's
// quoting) and returns it and the rest; ok is false without one.
func Unquote(s string) (string, string, bool) {
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
			src, _, ok := Unquote(rest)
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
			if _, after, ok := Unquote(rest); ok {
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
			if _, after, ok := Unquote(rest); ok {
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
