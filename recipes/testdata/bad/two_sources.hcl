input "k" {
  file = "vmlinuz"
  url  = "https://example.invalid/vmlinuz"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

# expect: 1:1: Input needs exactly one source: This input has file and url; give exactly one source.
