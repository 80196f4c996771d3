variable "release" {
  type = string
}

# expect: 1:1: No value for required variable: Variable "release" has no default: give it with -var release=VALUE or in a -var-file.
