# The sample Confidential Containers guest, end to end: a confidential-guest
# kernel built reproducibly from Debian's pinned Linux 6.12 source with the
# CoCo fragments, Debian's OVMF (pinned), a u-root initramfs with the sample
# agent, a dm-verity protected erofs root file system on a GPT disk, launch
# measurements for SEV-SNP and TDX, and signed reference values.
# recipes/prebuilt is the smaller variant with Debian's prebuilt cloud kernel.

recipe {
  name        = "sample"
  epoch       = 0 # SOURCE_DATE_EPOCH of every output
  description = "Sample Confidential Containers guest"
}

variable "release" {
  type        = string
  default     = "0.2.0"
  description = "Version of the guest and of the reference values it publishes."
  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+", var.release))
    error_message = "release is a semantic version such as 1.2.3."
  }
}

variable "expires" {
  type        = string
  default     = "2027-12-31T00:00:00Z"
  description = "Until when verifiers may accept the published reference values."
  build_input = false # publishing only: verify-build takes it from the release
}

variable "signing_key" {
  type        = string
  default     = "dev"
  description = "Signing key: a key file, env://VAR, or dev (the public development key; never for production)."
  build_input = false # who signs, not what is built
}

variable "feeds" {
  type        = list(string)
  default     = []
  description = "Feeds to append the release to: dir:PATH or oci://REGISTRY/REPO:TAG (make demo uses dir:out/feed)."
  build_input = false # where the release goes, not what is built
}

variable "acpi_qemu" {
  type        = string
  default     = "qemu-system-x86_64"
  description = "The QEMU the TDs run on, release 11.1: its ACPI tables are measured into RTMR0 (make demo fetches it with scripts/tdx-qemu)."
  build_input = false # a path on this host; each entry records the QEMU release it read
}

variable "console" {
  type    = string
  default = "ttyS0"
}

# Inputs: every byte that enters the build is pinned.
input "linux_source" {
  deb     = "linux-source-6.12"
  version = "6.12.117-1~deb12u1"
  extract = "usr/src/linux-source-6.12.tar.xz"
  sha256  = "e849faf31ca3555757f3a8877cb01af92122f744f75d1f3102734651c4e14703"
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

# The root file system: read-only erofs under dm-verity. Its root hash goes
# into the kernel command line, so the launch measurement covers every block.
# The guest's root file system: a minimal Debian userland (bookworm's
# Essential:yes set, installed by mmdebstrap; every package's version and
# .deb sha256 pinned in cocobuild.lock.hcl) with the sample's release file,
# as erofs under dm-verity. bookworm's main suite had its final point
# release (12.15), so the pinned versions stay in the archive; a recipe that
# follows security updates locks bookworm-security or trixie and runs
# `cocobuild lock -update` when they move.
rootfs "root" {
  packages {
    suite          = "bookworm"
    essential_only = true
  }
  file "/etc/cocobuild-release" {
    content = "cocobuild sample ${var.release}\n"
  }
  filesystem = "erofs"
  verity {
    data_device = "/dev/vda1"
    hash_device = "/dev/vda2"
  }
}

disk "guest" {
  format = ["raw", "qcow2"]
  partition "root" {
    content = rootfs.root
  }
  partition "verity" {
    content = rootfs.root.verity
  }
}

# The guest kernel, built from source: tinyconfig plus the fragments
# cocobuild ships (kernel/fragments): the common confidential-guest set
# (virtio, vsock, dm-verity with CONFIG_DM_INIT, erofs, …), TDX and SEV-SNP.
# With CONFIG_DM_INIT the kernel itself sets up the verity root from the
# dm-mod.create= argument, which the measurement covers.
kernel "guest" {
  source {
    tarball   = input.linux_source
    base      = "tinyconfig"
    fragments = ["common", "tdx", "snp", "fwcfg"]
  }
  cmdline = concat(["console=${var.console}", "panic=-1"], rootfs.root.verity.cmdline)
}

# The guest's first userspace: u-root's init and tools, and the agent.
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
    # Built into this kernel (listed in modules.builtin, nothing to add);
    # a kernel that has them as modules gets them loaded.
    load = ["virtio_pci", "virtio_blk", "dm-verity", "erofs"]
  }
  compression = "zstd"
}

# Launch measurements, computed from the bytes without booting. Every
# combination of the listed parameters becomes an entry of manifest.json.
measure "snp" {
  firmware       = input.ovmf_amdsev
  kernel         = kernel.guest # its image and cmdline (with the verity root hash)
  initrd         = initramfs.agent
  vcpus          = [1, 2, 4]
  vcpu_types     = ["EPYC-Milan", "EPYC-Genoa"]
  vmm            = "QEMU"
  guest_features = "0x1"
}

measure "tdx" {
  firmware = input.ovmf_tdx
  kernel   = kernel.guest # its image and cmdline (with the verity root hash)
  initrd   = initramfs.agent
  memory   = ["2G", "4G"]
  vcpus    = [1, 2]
  # RTMR0 covers QEMU's ACPI tables for each entry's vCPUs, memory and
  # devices (the guest disk): they are read by booting this kernel (its
  # fwcfg fragment) under TCG with acpi_qemu, which must be the QEMU
  # release modelled here (make demo: Debian forky's 11.1.2, fetched by
  # scripts/tdx-qemu). With another, RTMR0 is left out, the entries say
  # why, and publish refuses values that do not cover the firmware.
  acpi_qemu     = var.acpi_qemu
  qemu_versions = ["11.1"]
  virtio_disks  = 1
}

# Signed reference values: Trustee RVPS, in-toto (sigstore bundle), CoRIM.
publish "sample" {
  version   = var.release
  expires   = var.expires
  key       = var.signing_key
  namespace = "cocobuild.sample"
  to        = var.feeds
}
