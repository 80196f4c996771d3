package builder

import "github.com/cocobuild/cocobuild/internal/tees"

// testTEEs are the TEEs cocobuild registers.
var testTEEs = tees.All()
