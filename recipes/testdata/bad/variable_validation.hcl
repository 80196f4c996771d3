variable "release" {
  type    = string
  default = "latest"
  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.release))
    error_message = "release is a semantic version such as 1.2.3."
  }
}

# expect: 5:21: Invalid value for variable: release is a semantic version such as 1.2.3. (variable "release" is "latest")
