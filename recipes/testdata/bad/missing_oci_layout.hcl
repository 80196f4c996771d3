rootfs "root" {
  from {
    oci_layout = "no-such-layout"
  }
}

# expect: 3:18: Directory not found: oci_layout: ../../recipes/testdata/bad/no-such-layout does not exist (a relative oci_layout is relative to the recipe's directory, ../../recipes/testdata/bad).
