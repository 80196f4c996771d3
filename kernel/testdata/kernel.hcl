# The kernel of the sample recipe, alone: Debian's linux-source-6.12
# tarball, tinyconfig and the shipped CoCo fragments. The tests build it
# cold twice and compare, and share the result with boot.hcl.

recipe {
  name  = "kernel-test"
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
  cmdline = ["console=ttyS0", "panic=-1"]
}
