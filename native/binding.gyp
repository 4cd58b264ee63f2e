{
  "targets": [
    {
      "target_name": "dw_selinux",
      "sources": ["selinux_label.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
