input "k" {
  file = "vmlinuz"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

kernel "guest" {
  image = inptu.k
}

# expect: 7:11: Unknown variable: There is no variable named "inptu". Did you mean "input"?
