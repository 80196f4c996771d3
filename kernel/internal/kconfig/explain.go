package kconfig

import (
	"fmt"
	"sort"
	"strings"
)

// Explain says why sym did not get the requested value want ("y",
// "m", "n", or a string/number value), given the resolved configuration.
// Each line names a Kconfig location and what it lacks.
func (idx *Index) Explain(sym, want string, cfg Values, requested Values) []string {
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
func selectors(s *kconfigSymbol, cfg Values, onlySet bool) string {
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
