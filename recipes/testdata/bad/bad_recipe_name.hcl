recipe {
  name = "my recipe/../x"
}

# expect: 2:10: Invalid recipe name: A recipe name may hold letters, digits, '-', '_' and '.'; it names the output directory.
