package input

import (
	"context"
	"fmt"

	"github.com/cocobuild/cocobuild/internal/childenv"
	"github.com/cocobuild/cocobuild/internal/debroot"
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
	lock := &Lock{Pins: map[string]Pin{}, Packages: map[string]debroot.Set{}}
	ctx = childenv.WithSecrets(ctx, r.SecretEnv()...) // apt-get gets no env:// key variable
	ctxEval := r.EvalContext(nil)
	var installers []*recipes.Block
	for _, b := range r.Blocks {
		if b.Type != "input" {
			if _, ok := b.Kind.(debroot.RequesterKind); ok {
				installers = append(installers, b)
			}
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
	if err := lockPackages(ctx, r, installers, lock, update); err != nil {
		return nil, err
	}
	lock.Path = path
	if err := lock.Write(); err != nil {
		return nil, err
	}
	return lock, nil
}

// lockPackages resolves the Debian package sets of the blocks that install
// packages, with the archive of the recipe's input kind. A set the lock
// already has for the same request is kept unless update.
func lockPackages(ctx context.Context, r *recipes.Recipe, blocks []*recipes.Block, lock *Lock, update bool) error {
	if len(blocks) == 0 {
		return nil
	}
	old, _ := ReadLock(LockPath(r.Dir))
	ctxEval := r.EvalContext(nil)
	for _, b := range blocks {
		node, diags := b.Kind.Decode(b, ctxEval)
		if diags.HasErrors() {
			return diags
		}
		rq, ok := node.(debroot.Requester)
		if !ok {
			continue
		}
		addr, req, ok := rq.PackageRequest()
		if !ok {
			continue
		}
		if old != nil && !update {
			if s, ok := old.Packages[addr]; ok && s.Request == req.Digest() && s.Suite == req.Suite {
				lock.Packages[addr] = s
				continue
			}
		}
		set, err := rq.ResolvePackages(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
		lock.Packages[addr] = *set
	}
	return nil
}
