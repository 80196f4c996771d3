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

# OVMF for SEV-SNP: edk2's AmdSev build (Debian's ovmf-amdsev, in forky and
# sid only). It has the SEV hashes table and checks the directly booted
# kernel, initrd and cmdline against it, so the SNP launch digest covers
# them. The sha256 pins are of the .deb packages.
input "ovmf_amdsev" {
  deb     = "ovmf-amdsev"
  suite   = "forky"
  version = "2026.08+ds-2"
  extract = "usr/share/ovmf/OVMF.amdsev.fd"
  sha256  = "92c9b6d15e4eeb371938c3f99080c1a8fc057dfd6bc0509d37f8b615e9edebfb"
}

# OVMF for TDX: Debian's generic build (ovmf-generic), with TDX support and
# the CC measurement driver that measures the boot into RTMRs; Secure Boot
# is not enforced, so it boots the unsigned kernel directly.
input "ovmf_tdx" {
  deb     = "ovmf-generic"
  suite   = "forky"
  version = "2026.08+ds-2"
  extract = "usr/share/qemu/OVMF.fd"
  sha256  = "05c1593998ba58700ff86c062bde306321af1f5a2943ea9ceef6c2332f3f3374"
}

kernel "guest" {
  image   = input.kernel
  cmdline = ["console=${var.console}", "panic=-1"]
}

# Launch measurements, computed from the bytes without booting. Every
# combination of the listed parameters becomes an entry of manifest.json.
measure "snp" {
  firmware       = input.ovmf_amdsev
  kernel         = kernel.guest # its image and cmdline, booted directly
  vcpus          = [1, 2, 4]
  vcpu_types     = ["EPYC-Milan", "EPYC-Genoa"]
  vmm            = "QEMU"
  guest_features = "0x1"
}

measure "tdx" {
  firmware = input.ovmf_tdx
  kernel   = kernel.guest # its image and cmdline, booted directly
  memory   = ["2G", "4G"]
}
