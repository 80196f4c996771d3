input "k" {
  file = "vmlinuz"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

locals {
  digest = input.k.sha256
}

# expect: 7:12: Block reference in locals: Local values are computed before any block is built: they may refer to var, local and functions, not to blocks. Put the expression in the block that needs it.
