input "k" {
  file   = "vmlinuz"
  sha256 = filesha265("vmlinuz")
}

# expect: 3:12: Call to unknown function: There is no function named "filesha265". Did you mean "filesha256"?
