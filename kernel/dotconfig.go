package kernel

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/cocobuild/cocobuild/kernel/internal/kconfig"
)

// maxConfigLines bounds what parseConfig reads.
const maxConfigLines = 1 << 20

var (
	setRe   = regexp.MustCompile(`^CONFIG_([A-Za-z0-9_]+)=(.*)$`)
	unsetRe = regexp.MustCompile(`^# CONFIG_([A-Za-z0-9_]+) is not set$`)
)

// configEntry is one line of a .config or fragment that sets a symbol.
type configEntry struct {
	Sym   string // without CONFIG_
	Value string // "y", "m", "\"text\"", "42"; "n" for "is not set"
	Line  int
}

// parseConfig reads a .config or a configuration fragment: CONFIG_X=V and
// "# CONFIG_X is not set" lines; other comments and blank lines are
// skipped, and anything else is an error naming the line.
func parseConfig(text []byte) ([]configEntry, error) {
	var out []configEntry
	lines := strings.Split(string(text), "\n")
	if len(lines) > maxConfigLines {
		return nil, fmt.Errorf("more than %d lines", maxConfigLines)
	}
	for i, l := range lines {
		l = strings.TrimSpace(strings.TrimSuffix(l, "\r"))
		if m := unsetRe.FindStringSubmatch(l); m != nil {
			out = append(out, configEntry{Sym: m[1], Value: "n", Line: i + 1})
			continue
		}
		if l == "" || l[0] == '#' {
			continue
		}
		m := setRe.FindStringSubmatch(l)
		if m == nil {
			return nil, fmt.Errorf("line %d: %q is neither CONFIG_NAME=VALUE nor \"# CONFIG_NAME is not set\"", i+1, l)
		}
		v := m[2]
		if v == "" {
			return nil, fmt.Errorf("line %d: CONFIG_%s has no value", i+1, m[1])
		}
		if v[0] == '"' {
			if _, rest, ok := kconfig.Unquote(v); !ok || rest != "" || len(v) < 2 || v[len(v)-1] != '"' {
				return nil, fmt.Errorf("line %d: CONFIG_%s: unterminated string %s", i+1, m[1], v)
			}
		}
		out = append(out, configEntry{Sym: m[1], Value: v, Line: i + 1})
	}
	return out, nil
}

// values turns entries into a map, later entries winning; "n" entries
// are left out (as unset).
func values(entries []configEntry) kconfig.Values {
	cfg := kconfig.Values{}
	for _, e := range entries {
		if e.Value == "n" {
			delete(cfg, e.Sym)
		} else {
			cfg[e.Sym] = e.Value
		}
	}
	return cfg
}

// Fragment is a configuration fragment as merged: its name (a shipped
// fragment's name, or the block it came from) and its content.
type Fragment struct {
	Name string
	Data []byte
}

// request is what the fragments ask for one symbol: the value of the
// last fragment that names it.
type request struct {
	Sym      string
	Value    string
	Fragment string
	Order    int // index of the fragment in merge order
	Line     int
}

// requests merges fragments as merge_config.sh does: a later fragment's
// value for a symbol replaces an earlier one.
func requests(frags []Fragment) (map[string]request, error) {
	reqs := map[string]request{}
	for i, f := range frags {
		entries, err := parseConfig(f.Data)
		if err != nil {
			return nil, fmt.Errorf("fragment %s: %w", f.Name, err)
		}
		for _, e := range entries {
			reqs[e.Sym] = request{Sym: e.Sym, Value: e.Value, Fragment: f.Name, Order: i, Line: e.Line}
		}
	}
	return reqs, nil
}

// Unsatisfied is a fragment option that olddefconfig did not keep.
type Unsatisfied struct {
	Option    string   // e.g. "CONFIG_DM_INIT"
	Requested string   // as the fragment writes it: "y", "m", "n" (is not set), "\"text\""
	Resolved  string   // in the resolved .config; "n" when not set
	Fragment  string   // the fragment that asks for it
	Line      int      // its line there
	Reasons   []string // Kconfig locations and what they lack
}

// UnsatisfiedError reports fragment options that do not survive
// olddefconfig, each with the Kconfig dependency it lacks.
type UnsatisfiedError struct {
	Options []Unsatisfied
}

// configLine renders an option's value as a .config line.
func configLine(opt, v string) string {
	if v == "n" {
		return "# " + opt + " is not set"
	}
	return opt + "=" + v
}

func (e *UnsatisfiedError) Error() string {
	var b strings.Builder
	n := len(e.Options)
	fmt.Fprintf(&b, "%d fragment option", n)
	if n == 1 {
		b.WriteString(" does")
	} else {
		b.WriteString("s do")
	}
	b.WriteString(" not survive olddefconfig:")
	for _, o := range e.Options {
		fmt.Fprintf(&b, "\n  %s (fragment %s, line %d): resolved to %s", configLine(o.Option, o.Requested), o.Fragment, o.Line, configLine(o.Option, o.Resolved))
		for _, r := range o.Reasons {
			fmt.Fprintf(&b, "\n    %s", r)
		}
	}
	b.WriteString("\nset what they lack in a fragment, or drop them")
	return b.String()
}

// checkResolved compares what the fragments ask for with the resolved
// configuration and explains every difference with idx (nil: no
// explanation beyond the values).
func checkResolved(frags []Fragment, resolved []byte, idx *kconfig.Index) error {
	reqs, err := requests(frags)
	if err != nil {
		return err
	}
	entries, err := parseConfig(resolved)
	if err != nil {
		return fmt.Errorf("the resolved .config: %w", err)
	}
	cfg := values(entries)
	requested := kconfig.Values{}
	for s, r := range reqs {
		requested[s] = r.Value
	}
	var bad []Unsatisfied
	order := map[string]int{}
	for _, r := range reqs {
		order[r.Fragment] = r.Order
		got, ok := cfg[r.Sym]
		if !ok {
			got = "n"
		}
		if got == r.Value {
			continue
		}
		u := Unsatisfied{Option: "CONFIG_" + r.Sym, Requested: r.Value, Resolved: got, Fragment: r.Fragment, Line: r.Line}
		if idx != nil {
			u.Reasons = idx.Explain(r.Sym, r.Value, cfg, requested)
		}
		bad = append(bad, u)
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Slice(bad, func(i, j int) bool {
		if bad[i].Fragment != bad[j].Fragment {
			return order[bad[i].Fragment] < order[bad[j].Fragment]
		}
		return bad[i].Line < bad[j].Line
	})
	return &UnsatisfiedError{Options: bad}
}
