{
  "targets": [
    {
      "target_name": "dw_selinux",
      "sources": ["selinux_label.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"]
    },
    {
      "target_name": "dw_netns",
      "sources": ["netns_links.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"]
    },
    {
      "target_name": "dw_nftevents",
      "sources": ["nft_events.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"]
    },
    {
      "target_name": "dw_heap",
      "sources": ["heap_trim.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"]
    },
    {
      "target_name": "dw_procfs",
      "sources": ["procfs_read.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
