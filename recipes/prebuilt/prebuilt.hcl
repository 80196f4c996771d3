# The smaller CoCo guest: Debian's prebuilt cloud kernel and Debian's OVMF,
# pinned, with launch measurements. It boots, but the cloud kernel is not a
# confidential guest kernel (no TDX guest support, no SEV guest driver, no
# CONFIG_DM_INIT); the sample recipe builds one from source.

recipe {
  name        = "prebuilt"
  epoch       = 0 # SOURCE_DATE_EPOCH of every output
  description = "CoCo guest with Debian's prebuilt cloud kernel"
}

variable "console" {
  type    = string
  default = "ttyS0"
}

locals {
  kernel_release = "6.1.0-56-cloud-amd64"
}

input "kernel" {
  deb     = "linux-image-${local.kernel_release}"
  version = "6.1.192-2"
  extract = "boot/vmlinuz-${local.kernel_release}"
  sha256  = "e7d02b943971edcb8790e256c02cfab3bca6c3d37c1bf25392a57c71300615ee"
}

input "ovmf" {
  deb     = "ovmf"
  version = "2022.11-6+deb12u2"
  extract = "usr/share/ovmf/OVMF.fd"
  sha256  = "e73d3d1a8799f7f6fc16b73501d913edcdd86237556fbff30693e747e6dc262e"
}

kernel "guest" {
  image   = input.kernel
  cmdline = ["console=${var.console}", "panic=-1"]
}

# Launch measurements, computed from the bytes without booting. Every
# combination of the listed parameters becomes an entry of manifest.json.
measure "snp" {
  firmware       = input.ovmf
  vcpus          = [1, 2, 4]
  vcpu_types     = ["EPYC-Milan", "EPYC-Genoa"]
  vmm            = "QEMU"
  guest_features = "0x1"
  # Debian's OVMF.fd has no SEV hashes table: direct-boot kernel, initrd and
  # cmdline cannot be covered by the SNP measurement with this firmware.
}

measure "tdx" {
  firmware = input.ovmf
  kernel   = kernel.guest # its image and cmdline, booted directly
  memory   = ["2G", "4G"]
}
