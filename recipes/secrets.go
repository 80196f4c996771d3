package recipes

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/cocobuild/cocobuild/internal/childenv"
)

// SecretEnv returns the environment variables that env:// key references
// in the recipe name: in its files (the recipe and its -var-file files,
// comments included) and in its variables' values (-var included). The
// processes a build starts do not get them (see internal/childenv).
//
// Any env:// reference counts, not only a publish block's key: the key is
// an expression (often var.signing_key) that is evaluated only when the
// publish block runs, after the steps that start processes, and a name
// filtered needlessly costs nothing.
func (r *Recipe) SecretEnv() []string {
	var texts []string
	for _, src := range r.Files {
		texts = append(texts, string(src))
	}
	for _, v := range r.vars {
		texts = append(texts, stringsIn(v)...)
	}
	return childenv.RefNames(texts...)
}

// stringsIn returns the known string values in v, at any depth.
func stringsIn(v cty.Value) []string {
	var out []string
	cty.Walk(v, func(_ cty.Path, v cty.Value) (bool, error) {
		v, _ = v.Unmark()
		if v.IsKnown() && !v.IsNull() && v.Type() == cty.String {
			out = append(out, v.AsString())
		}
		return true, nil
	})
	return out
}
