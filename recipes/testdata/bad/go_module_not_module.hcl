initramfs "a" {
  go_module = "layout"
  agent {
    package = "./cmd/agent"
    path    = "/usr/bin/agent"
  }
}

# expect: 2:15: Not a Go module: ../../recipes/testdata/bad/layout holds no go.mod (a relative go_module is relative to the recipe's directory, ../../recipes/testdata/bad, not to the working directory).
