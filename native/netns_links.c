/*
 * dw_netns: the network links of a process's network namespace, read without entering it.
 *
 * Entering a container's namespace (nsenter, setns) needs CAP_SYS_ADMIN, and opening
 * /proc/<pid>/ns/net needs ptrace access to a process that holds capabilities the daemon does not:
 * the shipped unit grants neither. rtnetlink answers both questions from the host's side with
 * CAP_NET_ADMIN alone: RTM_GETNSID with NETNSA_PID gives the id the host's namespace knows the pid's
 * namespace by (the id a host veth's IFLA_LINK_NETNSID names), and an RTM_GETLINK dump with
 * IFLA_TARGET_NETNSID (Linux 4.20) lists that namespace's links. The id is asked again after the dump:
 * ids of dead namespaces are reused, so the dump is the pid's namespace only when both answers agree.
 * A namespace the host has no id for yet is given one (RTM_NEWNSID, as `ip netns set NAME auto`;
 * a dump of the host's links would do the same for every namespace a veth reaches).
 * A container's bridge port is then its peer's host link, asked for by ifindex: one link, not a dump
 * of the host's (hundreds of veths on a dense host, ~13 ms each; a fork of `ip` and its JSON before).
 *
 *   netnsLinks(pid) -> { nsid, links: [{ ifindex, ifname, address, link, linkNetnsid }] }
 *     nsid -1: the host's namespace has no id for it and none could be given, links empty.
 *     address: lower-case "xx:xx:..." or null; link (the peer's ifindex) and linkNetnsid: null when absent.
 *     Errors carry the errno name as `code` (ESRCH: no such process, EPERM: no CAP_NET_ADMIN).
 *
 *   hostBridgePort(ifindex) -> { ifname, link, linkNetnsid } | null
 *     The daemon's own namespace's link of that ifindex when it is a veth enslaved to a bridge
 *     (IFLA_LINKINFO kind "veth", slave kind "bridge"), with its peer's ifindex and the id of the
 *     peer's namespace (null when absent); null when there is no such link or it is something else.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "errno_error.h"

/* A namespace with more links than this is refused rather than read into memory without bound. */
#define LINKS_MAX 1024
#define BUF_SIZE 32768

typedef struct {
  int ifindex;
  char ifname[IFNAMSIZ];
  char address[3 * 32];
  int has_address;
  int link;
  int has_link;
  int link_netnsid;
  int has_link_netnsid;
} link_t;

static link_t links[LINKS_MAX];

static int open_rtnl(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  /* The kernel answers at once; the timeout only bounds a wait that should never happen. */
  struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 || bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

/* Sends `req` and reads replies until NLMSG_DONE, an error, or (not a dump) the first answer; each
   answer goes to `each`. Returns 0 or an errno. */
static int talk(int fd, struct nlmsghdr *req, int (*each)(struct nlmsghdr *, void *), void *ctx) {
  static unsigned seq;
  req->nlmsg_seq = ++seq;
  if (send(fd, req, req->nlmsg_len, 0) < 0) return errno;
  static char buf[BUF_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) return errno == EAGAIN ? ETIMEDOUT : errno;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_seq != req->nlmsg_seq) continue;
      /* A dump that failed part-way ends with its (negative) errno in the DONE message. */
      if (h->nlmsg_type == NLMSG_DONE) return h->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) && *(int *)NLMSG_DATA(h) < 0 ? -*(int *)NLMSG_DATA(h) : 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        int err = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
        if (err != 0 || !(req->nlmsg_flags & NLM_F_DUMP)) return err;
        continue;
      }
      int err = each(h, ctx);
      if (err != 0) return err;
      if (!(req->nlmsg_flags & NLM_F_DUMP)) return 0;
    }
  }
}

/* One request: a family header of `header_len` bytes and one attribute, answered through talk(). */
static int request(int fd, unsigned short type, unsigned short flags, const void *header, size_t header_len, unsigned short attr, const void *value, unsigned short value_len,
                   int (*each)(struct nlmsghdr *, void *), void *ctx) {
  struct {
    struct nlmsghdr h;
    char body[128];
  } req = {0};
  req.h.nlmsg_type = type;
  req.h.nlmsg_flags = NLM_F_REQUEST | flags;
  memcpy(req.body, header, header_len);
  struct rtattr *a = (struct rtattr *)(req.body + NLMSG_ALIGN(header_len));
  a->rta_type = attr;
  a->rta_len = RTA_LENGTH(value_len);
  memcpy(RTA_DATA(a), value, value_len);
  req.h.nlmsg_len = NLMSG_LENGTH(NLMSG_ALIGN(header_len)) + RTA_ALIGN(a->rta_len);
  return talk(fd, &req.h, each, ctx);
}

static int on_nsid(struct nlmsghdr *h, void *ctx) {
  if (h->nlmsg_type != RTM_NEWNSID) return EPROTO;
  int len = h->nlmsg_len - NLMSG_LENGTH(sizeof(struct rtgenmsg));
  for (struct rtattr *a = (struct rtattr *)((char *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(struct rtgenmsg))); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == NETNSA_NSID && RTA_PAYLOAD(a) >= sizeof(int)) {
      memcpy(ctx, RTA_DATA(a), sizeof(int));
      return 0;
    }
  }
  return EPROTO;
}

static int nsid_of_pid(int fd, unsigned pid, int *nsid) {
  struct rtgenmsg g = {.rtgen_family = AF_UNSPEC};
  return request(fd, RTM_GETNSID, 0, &g, sizeof g, NETNSA_PID, &pid, sizeof pid, on_nsid, nsid);
}

static int no_answer(struct nlmsghdr *h, void *ctx) {
  (void)h;
  (void)ctx;
  return EPROTO;
}

/* Gives the pid's namespace a host id (NETNSA_NSID -1: the kernel picks it); EEXIST when it has one. */
static int assign_nsid(int fd, unsigned pid) {
  struct {
    struct nlmsghdr h;
    char body[NLMSG_ALIGN(sizeof(struct rtgenmsg)) + 2 * RTA_SPACE(sizeof(int))];
  } req = {0};
  req.h.nlmsg_type = RTM_NEWNSID;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  ((struct rtgenmsg *)req.body)->rtgen_family = AF_UNSPEC;
  struct rtattr *a = (struct rtattr *)(req.body + NLMSG_ALIGN(sizeof(struct rtgenmsg)));
  int any = -1;
  a->rta_type = NETNSA_NSID;
  a->rta_len = RTA_LENGTH(sizeof any);
  memcpy(RTA_DATA(a), &any, sizeof any);
  a = (struct rtattr *)((char *)a + RTA_SPACE(sizeof any));
  a->rta_type = NETNSA_PID;
  a->rta_len = RTA_LENGTH(sizeof pid);
  memcpy(RTA_DATA(a), &pid, sizeof pid);
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof req.body);
  return talk(fd, &req.h, no_answer, NULL);
}

/* The pid's namespace's host id, given one first if it has none. */
static int nsid_assigned(int fd, unsigned pid, int *nsid) {
  int err = nsid_of_pid(fd, pid, nsid);
  if (err != 0 || *nsid >= 0) return err;
  err = assign_nsid(fd, pid);
  if (err != 0 && err != EEXIST) return err;
  return nsid_of_pid(fd, pid, nsid);
}

static int on_link(struct nlmsghdr *h, void *ctx) {
  size_t *count = ctx;
  if (h->nlmsg_type != RTM_NEWLINK) return 0;
  if (*count >= LINKS_MAX) return E2BIG;
  struct ifinfomsg *ifi = NLMSG_DATA(h);
  link_t *l = &links[(*count)++];
  memset(l, 0, sizeof *l);
  l->ifindex = ifi->ifi_index;
  int len = IFLA_PAYLOAD(h);
  for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    size_t size = RTA_PAYLOAD(a);
    if (a->rta_type == IFLA_IFNAME && size > 0) {
      snprintf(l->ifname, sizeof l->ifname, "%.*s", (int)size, (const char *)RTA_DATA(a));
    } else if (a->rta_type == IFLA_ADDRESS && size > 0 && size <= 32) {
      const unsigned char *b = RTA_DATA(a);
      for (size_t i = 0; i < size; i++) sprintf(l->address + 3 * i - (i > 0), i == 0 ? "%02x" : ":%02x", b[i]);
      l->has_address = 1;
    } else if (a->rta_type == IFLA_LINK && size >= sizeof(int)) {
      memcpy(&l->link, RTA_DATA(a), sizeof(int));
      l->has_link = 1;
    } else if (a->rta_type == IFLA_LINK_NETNSID && size >= sizeof(int)) {
      memcpy(&l->link_netnsid, RTA_DATA(a), sizeof(int));
      l->has_link_netnsid = 1;
    }
  }
  return 0;
}

static int dump_links(int fd, int nsid, size_t *count) {
  struct ifinfomsg i = {.ifi_family = AF_UNSPEC};
  *count = 0;
  return request(fd, RTM_GETLINK, NLM_F_DUMP, &i, sizeof i, IFLA_TARGET_NETNSID, &nsid, sizeof nsid, on_link, count);
}

/* The string of a nested IFLA_LINKINFO attribute compared with `want`. */
static int info_is(const struct rtattr *a, const char *want) {
  size_t size = RTA_PAYLOAD(a), n = strlen(want);
  return (size == n || (size == n + 1 && ((const char *)RTA_DATA(a))[n] == '\0')) && memcmp(RTA_DATA(a), want, n) == 0;
}

typedef struct {
  link_t link;
  int veth;
  int bridged;
} host_link_t;

static int on_host_link(struct nlmsghdr *h, void *ctx) {
  host_link_t *out = ctx;
  if (h->nlmsg_type != RTM_NEWLINK) return EPROTO;
  struct ifinfomsg *ifi = NLMSG_DATA(h);
  link_t *l = &out->link;
  l->ifindex = ifi->ifi_index;
  int len = IFLA_PAYLOAD(h);
  for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    size_t size = RTA_PAYLOAD(a);
    if (a->rta_type == IFLA_IFNAME && size > 0) {
      snprintf(l->ifname, sizeof l->ifname, "%.*s", (int)size, (const char *)RTA_DATA(a));
    } else if (a->rta_type == IFLA_LINK && size >= sizeof(int)) {
      memcpy(&l->link, RTA_DATA(a), sizeof(int));
      l->has_link = 1;
    } else if (a->rta_type == IFLA_LINK_NETNSID && size >= sizeof(int)) {
      memcpy(&l->link_netnsid, RTA_DATA(a), sizeof(int));
      l->has_link_netnsid = 1;
    } else if (a->rta_type == IFLA_LINKINFO) {
      int inner = (int)size;
      for (struct rtattr *i = RTA_DATA(a); RTA_OK(i, inner); i = RTA_NEXT(i, inner)) {
        if (i->rta_type == IFLA_INFO_KIND) out->veth = info_is(i, "veth");
        else if (i->rta_type == IFLA_INFO_SLAVE_KIND) out->bridged = info_is(i, "bridge");
      }
    }
  }
  return 0;
}

static napi_value make_int(napi_env env, int value, int present) {
  napi_value v;
  if (!present) napi_get_null(env, &v);
  else napi_create_int32(env, value, &v);
  return v;
}

static napi_value make_string(napi_env env, const char *s, int present) {
  napi_value v;
  if (!present) napi_get_null(env, &v);
  else napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value netns_links(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int64_t pid = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 || napi_get_value_int64(env, argv[0], &pid) != napi_ok || pid <= 0 || pid > 0x3fffffff) {
    napi_throw_type_error(env, NULL, "netnsLinks(pid)");
    return NULL;
  }
  int fd = open_rtnl();
  if (fd < 0) {
    throw_errno(env, errno, "netlink socket");
    return NULL;
  }
  int nsid = -1, again = -1, err;
  size_t count = 0;
  const char *call = "RTM_GETNSID";
  if ((err = nsid_assigned(fd, (unsigned)pid, &nsid)) == 0 && nsid >= 0) {
    call = "RTM_GETLINK";
    if ((err = dump_links(fd, nsid, &count)) == 0) {
      call = "RTM_GETNSID";
      if ((err = nsid_of_pid(fd, (unsigned)pid, &again)) == 0 && again != nsid) err = EAGAIN;
    }
  }
  close(fd);
  if (err != 0) {
    throw_errno(env, err, call);
    return NULL;
  }
  napi_value result, list;
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "nsid", make_int(env, nsid, 1));
  napi_create_array_with_length(env, count, &list);
  for (size_t i = 0; i < count; i++) {
    const link_t *l = &links[i];
    napi_value o;
    napi_create_object(env, &o);
    napi_set_named_property(env, o, "ifindex", make_int(env, l->ifindex, 1));
    napi_set_named_property(env, o, "ifname", make_string(env, l->ifname, 1));
    napi_set_named_property(env, o, "address", make_string(env, l->address, l->has_address));
    napi_set_named_property(env, o, "link", make_int(env, l->link, l->has_link));
    napi_set_named_property(env, o, "linkNetnsid", make_int(env, l->link_netnsid, l->has_link_netnsid));
    napi_set_element(env, list, i, o);
  }
  napi_set_named_property(env, result, "links", list);
  return result;
}

static napi_value host_bridge_port(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t ifindex = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 || napi_get_value_int32(env, argv[0], &ifindex) != napi_ok || ifindex <= 0) {
    napi_throw_type_error(env, NULL, "hostBridgePort(ifindex)");
    return NULL;
  }
  int fd = open_rtnl();
  if (fd < 0) {
    throw_errno(env, errno, "netlink socket");
    return NULL;
  }
  host_link_t found = {0};
  struct ifinfomsg i = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
  /* Counters are not needed: leaving them out keeps the answer small (kernels before 4.20 ignore the flag). */
  unsigned mask = RTEXT_FILTER_SKIP_STATS;
  int err = request(fd, RTM_GETLINK, 0, &i, sizeof i, IFLA_EXT_MASK, &mask, sizeof mask, on_host_link, &found);
  close(fd);
  napi_value result;
  if (err == ENODEV || (err == 0 && !(found.veth && found.bridged && found.link.ifname[0] != '\0'))) {
    napi_get_null(env, &result);
    return result;
  }
  if (err != 0) {
    throw_errno(env, err, "RTM_GETLINK");
    return NULL;
  }
  const link_t *l = &found.link;
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "ifname", make_string(env, l->ifname, 1));
  napi_set_named_property(env, result, "link", make_int(env, l->link, l->has_link));
  napi_set_named_property(env, result, "linkNetnsid", make_int(env, l->link_netnsid, l->has_link_netnsid));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"netnsLinks", NULL, netns_links, NULL, NULL, NULL, napi_default, NULL},
      {"hostBridgePort", NULL, host_bridge_port, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
