input "k" {
  file   = "layout"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

# expect: 2:12: Input is not a file: ../../recipes/testdata/bad/layout is a directory; an input file is one regular file (a directory goes into a rootfs with from { dir = "…" }).
