// Package repro checks builds beside the engine, using builder: Run
// (`cocobuild repro`) builds a recipe twice, the second time perturbed
// (another directory, user, umask, environment), and compares the outputs
// (package diff); VerifyBuild (`cocobuild verify-build`) rebuilds a recipe
// and compares it with a published release.
package repro
