# A guest of the kind peer pods boot on confidential VMs with a vTPM (Azure
# SEV-SNP and TDX CVMs): the sample's kernel and initramfs and a small
# verity root (the sample's own root is a Debian userland), but
# booted by the firmware from the disk as a unified kernel image (UKI) at
# \EFI\BOOT\BOOTX64.EFI of an EFI system partition, with the reference
# values of its TPM PCRs: PCR 11 (the UKI's sections, Trustee's tpm_pcr11,
# snp_pcr11, tdx_pcr11) and, for an OVMF boot with Secure Boot off, PCRs 4,
# 7 and 9. The kernel and initramfs blocks are the sample's, so a build
# after the sample's takes them from the cache.

recipe {
  name        = "peerpod"
  epoch       = 0
  description = "Sample guest booted as a UKI from its disk, with vTPM PCR reference values"
}

variable "console" {
  type    = string
  default = "ttyS0"
}

input "linux_source" {
  deb     = "linux-source-6.12"
  version = "6.12.117-1~deb12u1"
  extract = "usr/src/linux-source-6.12.tar.xz"
  sha256  = "e849faf31ca3555757f3a8877cb01af92122f744f75d1f3102734651c4e14703"
}

# systemd-stub of Debian 12 (systemd 252); the sha256 pin is of the .deb.
input "systemd_stub" {
  deb     = "systemd-boot-efi"
  version = "252.39-1~deb12u2"
  extract = "usr/lib/systemd/boot/efi/linuxx64.efi.stub"
  sha256  = "8f2b81bdcfafc466882a0cae460272dbf10d8d97c6a3c1c6ea33038c155a2f5e"
}

# The firmware a measure block names. PCRs 4, 7 and 9 are computed for an
# edk2 (OVMF) boot with Secure Boot off and no keys enrolled; the firmware's
# own code and configuration (PCRs 0-3) are not.
input "ovmf" {
  deb     = "ovmf-generic"
  suite   = "forky"
  version = "2026.08+ds-2"
  extract = "usr/share/qemu/OVMF.fd"
  sha256  = "05c1593998ba58700ff86c062bde306321af1f5a2943ea9ceef6c2332f3f3374"
}

rootfs "root" {
  file "/etc/cocobuild-release" {
    content = "cocobuild sample 0.1.0\n"
  }
  filesystem = "erofs"
  verity {
    data_device = "/dev/vda1"
    hash_device = "/dev/vda2"
  }
}

kernel "guest" {
  source {
    tarball   = input.linux_source
    base      = "tinyconfig"
    fragments = ["common", "tdx", "snp", "fwcfg"]
  }
  cmdline = concat(["console=${var.console}", "panic=-1"], rootfs.root.verity.cmdline)
}

initramfs "agent" {
  uroot {
    commands = ["core/init", "core/gosh", "core/ls", "core/cat"]
  }
  agent {
    package = "./cmd/sample-agent"
    path    = "/usr/bin/agent"
  }
  modules {
    from = kernel.guest.modules
    load = ["virtio_pci", "virtio_blk", "dm-verity", "erofs"]
  }
  compression = "zstd"
}

# The UKI: the stub with the kernel, initramfs, command line (with the
# verity root hash) and os-release as PE sections.
uki "guest" {
  stub   = input.systemd_stub
  kernel = kernel.guest
  initrd = initramfs.agent
  osrel  = "ID=cocobuild\nNAME=\"cocobuild peer pod sample\"\nVERSION_ID=0.1.0\n"
}

disk "guest" {
  format = ["raw", "qcow2"]
  partition "root" {
    content = rootfs.root
  }
  partition "verity" {
    content = rootfs.root.verity
  }
  partition "esp" {
    size  = "40MiB"
    files = { "/EFI/BOOT/BOOTX64.EFI" = uki.guest }
  }
}

# PCR reference values for a plain (v)TPM and the Azure vTPMs.
measure "tpm" {
  firmware = input.ovmf
  uki      = uki.guest
}

measure "az_snp" {
  tee      = "az-snp-vtpm"
  firmware = input.ovmf
  uki      = uki.guest
}

measure "az_tdx" {
  tee      = "az-tdx-vtpm"
  firmware = input.ovmf
  uki      = uki.guest
}

# A TD (QEMU q35 with Debian's TDVF, the ovmf input) that boots this disk's
# UKI: MRTD, and RTMR1 and RTMR2 (the GPT, the UKI's and the kernel's
# Authenticode digests; the .cmdline and .initrd as the Linux EFI stub
# measures them). RTMR0 is left out: it holds the boot variables that
# OVMF's boot manager creates for the VM's devices, which are not modelled.
measure "td" {
  tee                 = "tdx"
  firmware            = input.ovmf
  uki                 = uki.guest
  disk                = disk.guest
  failed_boot_options = 1 # QEMU's default, empty CD-ROM drive is tried first
}

variable "expires" {
  type        = string
  default     = "2027-12-31T00:00:00Z"
  description = "Until when verifiers may accept the published reference values."
  build_input = false
}

variable "signing_key" {
  type        = string
  default     = "dev"
  description = "Signing key: a key file, env://VAR, or dev (the public development key; never for production)."
  build_input = false
}

# Signed reference values: rvps.json holds tpm_pcr4/7/9/11, snp_pcr…,
# tdx_pcr… and the TD's mr_td, rtmr_1 and rtmr_2 for Trustee. The PCRs do not cover the firmware (PCR 0 is not
# modelled, and a vTPM guest's firmware is the cloud's), which every document
# says.
publish "peerpod" {
  version                = "0.1.0"
  expires                = var.expires
  key                    = var.signing_key
  namespace              = "cocobuild.peerpod"
  allow_partial_coverage = true
}
