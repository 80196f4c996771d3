package input_test

import (
	"context"
	"testing"

	"github.com/cocobuild/cocobuild/input"
	"github.com/cocobuild/cocobuild/internal/testkinds"
)

// updateLock is `cocobuild lock` (-update with update) on the recipe in
// dir: its errors as the command shows them.
func updateLock(ctx context.Context, t testing.TB, dir, cache string, update bool) (*input.Lock, error) {
	t.Helper()
	l := testkinds.Load(t, dir, cache, input.Options{Resolving: true})
	lock, err := input.UpdateLock(ctx, l.Recipe, update)
	if err != nil {
		return nil, l.Diagnose(err)
	}
	return lock, nil
}

// flipByte changes one byte in the middle of a file.
func flipByte(b []byte) []byte {
	b = append([]byte(nil), b...)
	b[len(b)/2] ^= 0x01
	return b
}
