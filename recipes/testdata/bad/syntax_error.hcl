input "k" {
  file = "vmlinuz"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"

kernel "guest" {
  image = input.k
}

# expect: 1:11: Unclosed configuration block: There is no closing brace for this block before the end of the file. This may be caused by incorrect brace nesting elsewhere in this file.
