input "k" {
  file = "vmlinuz"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

kernel "guest" {
  image   = input.k
  cmdline = { console = "ttyS0" }
}

# expect: 8:13: Invalid cmdline: cmdline is a list of kernel arguments or one string, not object.
