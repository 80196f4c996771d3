package builder

import (
	"github.com/cocobuild/cocobuild/tee"
	"github.com/cocobuild/cocobuild/tee/sev"
	"github.com/cocobuild/cocobuild/tee/tdx"
)

// testTEEs are the TEEs cocobuild registers (cmd/cocobuild/registry.go).
var testTEEs = tee.NewSet(sev.TEE{}, tdx.TEE{})
