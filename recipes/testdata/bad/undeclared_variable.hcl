variable "console" {
  default = "ttyS0"
}

input "k" {
  file = "vmlinuz"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

kernel "guest" {
  image   = input.k
  cmdline = ["console=${var.consol}"]
}

# expect: 12:25: Reference to undeclared variable: The recipe declares no variable "consol". Did you mean "console"?
