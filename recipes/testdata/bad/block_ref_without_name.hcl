kernel "guest" {
  image = input
}

# expect: 2:11: Invalid reference: A reference to a input block names it: input.NAME.
