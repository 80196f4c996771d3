# The kernel of kernel.hcl (the same build step) with two initramfs
# images: the tests' own tiny /init, and the sample's u-root init with the
# sample agent and the loop module from the kernel's own modules.

recipe {
  name  = "kernel-boot-test"
  epoch = 0
}

input "linux_source" {
  deb     = "linux-source-6.12"
  version = "6.12.117-1~deb12u1"
  extract = "usr/src/linux-source-6.12.tar.xz"
  sha256  = "e849faf31ca3555757f3a8877cb01af92122f744f75d1f3102734651c4e14703"
}

kernel "guest" {
  source {
    tarball   = input.linux_source
    base      = "tinyconfig"
    fragments = ["common", "tdx", "snp", "fwcfg"]
  }
  cmdline = ["console=ttyS0", "panic=-1", "cocobuild.test=1"]
}

initramfs "tiny" {
  agent {
    package = "./kernel/testdata/tinyinit"
    path    = "/bin/tinyinit"
  }
}

initramfs "agent" {
  uroot {
    commands = ["core/init"]
  }
  agent {
    package = "./cmd/sample-agent"
    path    = "/usr/bin/agent"
  }
  modules {
    from = kernel.guest.modules
    load = ["loop"]
  }
}
