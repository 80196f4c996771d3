input "k" {
  url = "https://example.invalid/vmlinuz"
}

# expect: 1:1: Input is not pinned: Input "k" (url:https://example.invalid/vmlinuz) has no sha256: add sha256 = "…" to the block, or run `cocobuild lock` to record it in cocobuild.lock.hcl (or build with --allow-unpinned, never for a release).
