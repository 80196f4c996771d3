input "k" {
  url = "ftp://example.invalid/vmlinuz"
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

# expect: 2:9: Invalid URL: url must start with https:// or http://.
