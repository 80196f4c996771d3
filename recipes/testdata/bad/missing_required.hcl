kernel "guest" {
  cmdline = ["console=ttyS0"]
}

# expect: 1:16: Missing required argument: The argument "image" is required, but no definition was found.
