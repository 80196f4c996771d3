rootfs "root" {
  from {
    dir = "no-such-tree"
  }
}

# expect: 3:11: Directory not found: dir: ../../recipes/testdata/bad/no-such-tree does not exist (a relative dir is relative to the recipe's directory, ../../recipes/testdata/bad).
