package main

import (
	"github.com/cocobuild/cocobuild/tee"
	"github.com/cocobuild/cocobuild/tee/sev"
	"github.com/cocobuild/cocobuild/tee/tdx"
)

// newTEEs returns the TEEs cocobuild measures and publishes for: the one
// list of them. Adding a TEE is adding its registration here.
func newTEEs() tee.Set {
	return tee.NewSet(
		sev.TEE{},
		tdx.TEE{},
	)
}
