input "k" {
  file   = "vmlinuz"
  sha256 = "not-a-digest"
}

kernel "a" {
  image  = input.k
  cmdlin = ["console=ttyS0"]
}

kernel "b" {
  cmdline = ["quiet"]
}

# expect: 3:12: Invalid sha256: sha256 is 64 lowercase hexadecimal digits.
# expect: 8:3: Unsupported argument: An argument named "cmdlin" is not expected here. Did you mean "cmdline"?
# expect: 11:12: Missing required argument: The argument "image" is required, but no definition was found.
