variable "vcpus" {
  type    = list(number)
  default = ["one", "two"]
}

# expect: 3:13: Invalid default value for variable: The default of "vcpus" does not fit its type list of number: a number is required.
