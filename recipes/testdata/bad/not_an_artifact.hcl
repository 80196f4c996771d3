kernel "guest" {
  image = "vmlinuz"
}

# expect: 2:11: Not an artifact: Expected a file made by another block (for example input.NAME), not string.
