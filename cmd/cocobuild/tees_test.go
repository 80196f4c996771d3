package main

// testTEEs are the TEEs the command registers.
var testTEEs = newTEEs()
