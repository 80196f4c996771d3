input "k" {
  file   = "vmlinuz"
  sha256 = "ABC"
}

# expect: 3:12: Invalid sha256: sha256 is 64 lowercase hexadecimal digits.
