kernel {
  image = "vmlinuz"
}

# expect: 1:8: Missing name for kernel: All kernel blocks must have 1 labels (name).
