kernal "guest" {
  image = "x"
}

# expect: 1:1: Unsupported block type: Blocks of type "kernal" are not expected here. Did you mean "kernel"?
