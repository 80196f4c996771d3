locals {
  kernel_release = "6.1.0"
  path           = "boot/vmlinuz-${local.kernel_relase}"
}

# expect: 3:36: Reference to undefined local value: No local value "kernel_relase" is defined. Did you mean "kernel_release"?
