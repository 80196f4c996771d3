rootfs "root" {
  from {
    oci_layout = "layout"
    ref        = "v2"
  }
}

# expect: 4:18: No such image in the layout: oci_layout "layout" has no image named "v2" (it has v1).
