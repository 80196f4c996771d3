variable "release" {
  default = "1.0.0"
}

variable "release" {
  default = "2.0.0"
}

# expect: 5:1: Duplicate variable
