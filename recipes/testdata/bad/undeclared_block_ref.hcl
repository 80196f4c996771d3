input "kernel" {
  file = "vmlinuz"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

kernel "guest" {
  image = input.kernl
}

# expect: 7:11: Reference to undeclared block: No input block named "kernl" is declared in this recipe. Did you mean "kernel"?
