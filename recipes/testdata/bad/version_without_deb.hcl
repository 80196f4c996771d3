input "k" {
  file    = "vmlinuz"
  version = "1.0"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

# expect: 3:13: Unexpected version: version goes with deb: it is the Debian package version.
