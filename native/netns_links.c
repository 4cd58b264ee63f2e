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
 *
 *   netnsLinks(pid) -> { nsid, links: [{ ifindex, ifname, address, link, linkNetnsid }] }
 *     nsid -1: the host's namespace has no id for it (no host link reaches it), links empty.
 *     address: lower-case "xx:xx:..." or null; link (the peer's ifindex) and linkNetnsid: null when absent.
 *     Errors carry the errno name as `code` (ESRCH: no such process, EPERM: no CAP_NET_ADMIN).
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
  if ((err = nsid_of_pid(fd, (unsigned)pid, &nsid)) == 0 && nsid >= 0) {
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

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"netnsLinks", NULL, netns_links, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
