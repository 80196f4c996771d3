# A fragment whose options cannot be satisfied on tinyconfig: the build
# must stop after olddefconfig and name each option and what it lacks.

recipe {
  name  = "kernel-unsatisfied-test"
  epoch = 0
}

input "linux_source" {
  deb     = "linux-source-6.12"
  version = "6.12.117-1~deb12u1"
  extract = "usr/src/linux-source-6.12.tar.xz"
  sha256  = "e849faf31ca3555757f3a8877cb01af92122f744f75d1f3102734651c4e14703"
}

input "unsatisfiable" {
  file = "unsatisfiable.config"
}

kernel "guest" {
  source {
    tarball   = input.linux_source
    base      = "tinyconfig"
    fragments = [input.unsatisfiable]
  }
}
