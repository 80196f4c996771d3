package recipes

import (
	"context"
	"time"
)

// ProbeMemo remembers the results of step probes across builds, so that a
// rebuild with nothing changed does not run tools or walk source trees
// again. An entry holds while every file it depends on is as it was: the
// same size, modification and change times, inode and mode, or still
// missing. Directories count by their own metadata, so an added or removed
// entry invalidates what was computed from a listing.
type ProbeMemo interface {
	// Lookup returns the value stored under key when its files are
	// unchanged.
	Lookup(key string) (string, bool)
	// Store records value under key, computed from files. started is
	// when the computation began: a file changed since then (or too
	// recently to tell) makes the entry not worth keeping, as the value
	// may have been computed from its older content.
	Store(key, value string, files []string, started time.Time)
}

type probeMemoKey struct{}

// WithProbeMemo returns ctx carrying m for the probes that run under it.
func WithProbeMemo(ctx context.Context, m ProbeMemo) context.Context {
	return context.WithValue(ctx, probeMemoKey{}, m)
}

// Memoize returns the value of key from the context's ProbeMemo, or
// computes it (returning the value and the files it read, existing or
// not) and stores it. Without a memo in ctx it just computes.
func Memoize(ctx context.Context, key string, compute func() (value string, files []string, err error)) (string, error) {
	m, _ := ctx.Value(probeMemoKey{}).(ProbeMemo)
	if m != nil {
		if v, ok := m.Lookup(key); ok {
			return v, nil
		}
	}
	started := time.Now()
	v, files, err := compute()
	if err != nil {
		return "", err
	}
	if m != nil {
		m.Store(key, v, files, started)
	}
	return v, nil
}
