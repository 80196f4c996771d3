input "k" {
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

# expect: 1:1: Input needs exactly one source: Give one of file, url or deb.
