// Package builder runs recipes: it turns each block into steps, runs the
// steps that are not in the content-addressed cache (independent ones in
// parallel), and assembles the output directory with its manifest.json.
//
// A step's key is the sha256 of its kind, implementation version,
// parameters, the recipe's epoch and the digests of everything it reads, so
// a step whose key is cached is never run again, and a build whose every key
// is cached only copies results into place.
//
// builder is the engine only: step ordering, the cache and its integrity
// checks, step locks, the probe memo, the post-build and deliver phase (see
// PostBuilder), staging the output directory and writing its manifest.json
// (package manifest). It knows no block kind but through recipes.Kind: the
// command line composes them and passes them to Load (LoadOptions.Kinds).
package builder
