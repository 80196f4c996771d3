input "k" {
  file = "vmlinuz"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

kernel "guest" {
  image   = input.k
  cmdline = ["console=ttyS0 quiet"]
}

# expect: 8:13: Invalid kernel argument: "console=ttyS0 quiet": each list element is one argument, without spaces (quote a value with spaces as key="a b").
