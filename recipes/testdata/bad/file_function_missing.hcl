locals {
  cmdline = file("no-such-cmdline.txt")
}

# expect: 2:13: Error in function call
