// Package builder runs recipes: it turns each block into steps, runs the
// steps that are not in the content-addressed cache (independent ones in
// parallel), and assembles the output directory with its manifest.json.
//
// A step's key is the sha256 of its kind, implementation version,
// parameters, the recipe's epoch and the digests of everything it reads, so
// a step whose key is cached is never run again, and a build whose every key
// is cached only copies results into place.
package builder
