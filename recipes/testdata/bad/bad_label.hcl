input "k.v2" {
  file = "vmlinuz"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

# expect: 1:7: Invalid block name: input "k.v2": a block name may hold letters, digits, '-' and '_'.
