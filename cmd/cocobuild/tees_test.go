package main

import "github.com/cocobuild/cocobuild/internal/tees"

// testTEEs are the TEEs the command registers.
var testTEEs = tees.All()
