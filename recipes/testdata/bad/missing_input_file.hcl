input "k" {
  file   = "no-such-kernel"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

# expect: 2:12: Input file not found: ../../recipes/testdata/bad/no-such-kernel does not exist (a relative file is relative to the recipe's directory, ../../recipes/testdata/bad).
