input "k" {
  url     = "https://example.invalid/pkg.tar"
  extract = "boot/vmlinuz"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

# expect: 3:13: Unexpected extract: extract names a file inside a Debian package: it goes with deb.
