package kconfig

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

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

// Values is a resolved configuration: symbol (without CONFIG_) to
// its value as .config writes it ("y", "m", "\"text\"", "42"); unset
// symbols are absent.
type Values map[string]string

// raw returns the value of an atom: a constant or a symbol's value.
func (e *expr) raw(cfg Values) (string, bool) {
	switch {
	case e.quoted:
		s, _, _ := Unquote(e.name)
		return s, true
	case e.name == "y" || e.name == "m" || e.name == "n":
		return e.name, true
	case strings.HasPrefix(e.name, "$("):
		return "", false // a macro, expanded by Kconfig at configuration time
	}
	if v, ok := cfg[e.name]; ok {
		if s, _, ok := Unquote(v); ok {
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
func (e *expr) eval(cfg Values) int {
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
func describeValue(cfg Values, sym string) string {
	if v, ok := cfg[sym]; ok {
		return "=" + v
	}
	return " is not set"
}

// blame lists the atoms of e that keep it below need, e.g.
// "BLOCK (is not set)" or "!X86_32 (X86_32=y)".
func (e *expr) blame(cfg Values, need int) []string {
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
func (e *expr) setAtoms(cfg Values) []string {
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
func (e *expr) valueString(cfg Values) string {
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
