rootfs "root" {
  from {
    oci_layout = "."
  }
}

# expect: 3:18: Not an OCI image layout: oci_layout ".": 
