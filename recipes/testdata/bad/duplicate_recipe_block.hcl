recipe {
  name = "one"
}

recipe {
  name = "two"
}

# expect: 5:1: Duplicate recipe block
