input "k" {
  file   = "vmlinuz"
  sha265 = "0000000000000000000000000000000000000000000000000000000000000000"
}

# expect: 3:3: Unsupported argument: An argument named "sha265" is not expected here. Did you mean "sha256"?
