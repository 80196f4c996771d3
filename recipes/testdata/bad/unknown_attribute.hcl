input "k" {
  file = "vmlinuz"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

kernel "guest" {
  image  = input.k
  cmdlin = ["console=ttyS0"]
}

# expect: 8:3: Unsupported argument: An argument named "cmdlin" is not expected here. Did you mean "cmdline"?
