package input

import (
	"context"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/recipes"
)

// UpdateLock resolves every input of the recipe r (fetching what it must)
// and writes the lock file its input kind read (LockPath of the recipe's
// directory). With update, Debian packages without a version in the recipe
// move to the version apt serves now, and every pin is recomputed. A block
// that does not decode comes back as hcl.Diagnostics, a pin that does not
// match as a *PinMismatchError.
func UpdateLock(ctx context.Context, r *recipes.Recipe, update bool) (*Lock, error) {
	path := LockPath(r.Dir)
	lock := &Lock{Pins: map[string]Pin{}}
	ctx = childenv.WithSecrets(ctx, r.SecretEnv()...) // apt-get gets no env:// key variable
	ctxEval := r.EvalContext(nil)
	for _, b := range r.Blocks {
		if b.Type != "input" {
			continue
		}
		if k, ok := b.Kind.(Kind); ok && k.Lock() != nil {
			path = k.Lock().Path
		}
		node, diags := b.Kind.Decode(b, ctxEval)
		if diags.HasErrors() {
			return nil, diags
		}
		name, pin, err := ResolvePin(ctx, node, update)
		if err != nil {
			return nil, err
		}
		lock.Pins[name] = pin
	}
	lock.Path = path
	if err := lock.Write(); err != nil {
		return nil, err
	}
	return lock, nil
}
