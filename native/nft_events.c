/*
 * dw_nftevents: the kernel's nf_tables change notifications, as they happen.
 *
 * The kernel multicasts every committed nf_tables change on NETLINK_NETFILTER, group
 * NFNLGRP_NFTABLES: one message per object created or deleted (NFT_MSG_NEW* / NFT_MSG_DEL*), each
 * naming its table in attribute 1 (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE,
 * NFTA_SET_TABLE, NFTA_SET_ELEM_LIST_TABLE, NFTA_OBJ_TABLE, NFTA_FLOWTABLE_TABLE), then one
 * NFT_MSG_NEWGEN per transaction. `nft monitor` would read the same, but nft 1.0.6 crashes on our
 * sets, and polling finds a deleted table only at the next drift check. Joining the group needs
 * CAP_NET_ADMIN (nfnetlink's groups are not open to others); listening changes nothing.
 *
 *   watch(callback, raw?) -> { close() }
 *     callback(events, problem): events [[family, type, table], ...] of one datagram (type: the
 *     NFT_MSG_* number, family: nfgenmsg's NFPROTO_*); problem null, or "overrun" (the receive
 *     buffer overflowed: notifications were lost) or "malformed" (a message this parser refused):
 *     either means "something changed, look at everything". raw: callback(buffer) with each
 *     datagram's bytes instead (tests capture real notifications with it).
 *     The socket is read on the event loop (uv_poll), without blocking; the handle does not keep
 *     the loop alive. Errors carry the errno name as `code` (EPERM: no CAP_NET_ADMIN,
 *     EPROTONOSUPPORT: no nfnetlink).
 *   parse(buffer) -> { events, malformed }: the parser alone, on one datagram's bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errno_error.h"
#include <uv.h>

/* A datagram larger than this is cut (MSG_TRUNC) and reported as an overrun: the kernel builds
   notification skbs of at most NLMSG_GOODSIZE (a page, or 8 KiB), so it never should be. */
#define DATAGRAM_MAX 65536
/* The socket's receive buffer: a table replace of thousands of elements overflows it, which is
   reported ("overrun"), never silently dropped. */
#define RCVBUF_BYTES (4 << 20)
/* Datagrams read per wake-up, so a flood cannot hold the event loop; uv_poll calls again. */
#define DATAGRAMS_PER_WAKE 64
/* NFT_TABLE_MAXNAMELEN (256, with the NUL). */
#define TABLE_NAME_MAX 256

typedef struct {
  uint8_t family;
  uint8_t type;
  char table[TABLE_NAME_MAX];
} event_t;

/* One datagram has at most DATAGRAM_MAX / (header + nfgenmsg + one attribute) messages. */
#define EVENTS_MAX (DATAGRAM_MAX / (NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)) + NLA_HDRLEN))

static event_t events[EVENTS_MAX];

/* Whether a message type names a table in attribute 1 (NEWGEN's attribute 1 is the generation id). */
static int names_table(unsigned type) {
  return type != NFT_MSG_NEWGEN && type != NFT_MSG_GETGEN && type != NFT_MSG_TRACE;
}

/*
 * Parses one datagram from the kernel: every length is checked against what is left. Returns the
 * number of events; *malformed is set when any message (or the datagram) was refused.
 */
static size_t parse_datagram(const unsigned char *buf, size_t len, int *malformed) {
  size_t count = 0, offset = 0;
  *malformed = 0;
  while (offset < len) {
    size_t left = len - offset;
    struct nlmsghdr h;
    if (left < sizeof h) goto bad;
    memcpy(&h, buf + offset, sizeof h);
    if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > left) goto bad;
    const unsigned char *payload = buf + offset + NLMSG_HDRLEN;
    size_t payload_len = h.nlmsg_len - NLMSG_HDRLEN;
    /* The next message starts aligned; the last one may end unpadded. */
    size_t step = NLMSG_ALIGN(h.nlmsg_len);
    offset = step < left ? offset + step : len;

    if (h.nlmsg_type == NLMSG_NOOP) continue;
    if (h.nlmsg_type == NLMSG_ERROR || h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_OVERRUN) goto bad;
    if ((h.nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES) continue; /* another subsystem's group: not asked for */
    unsigned type = h.nlmsg_type & 0xff;
    if (!names_table(type)) continue;
    if (payload_len < NLMSG_ALIGN(sizeof(struct nfgenmsg))) goto bad;
    struct nfgenmsg g;
    memcpy(&g, payload, sizeof g);
    size_t at = NLMSG_ALIGN(sizeof(struct nfgenmsg));
    int found = 0;
    while (at < payload_len) {
      struct nlattr a;
      if (payload_len - at < sizeof a) goto bad;
      memcpy(&a, payload + at, sizeof a);
      if (a.nla_len < NLA_HDRLEN || a.nla_len > payload_len - at) goto bad;
      if ((a.nla_type & NLA_TYPE_MASK) == 1) {
        const char *value = (const char *)payload + at + NLA_HDRLEN;
        size_t size = a.nla_len - NLA_HDRLEN;
        size_t name_len = strnlen(value, size);
        /* A NUL-terminated, non-empty name the kernel would accept. */
        if (name_len == 0 || name_len == size || name_len >= TABLE_NAME_MAX) goto bad;
        if (count >= EVENTS_MAX) goto bad;
        event_t *e = &events[count++];
        e->family = g.nfgen_family;
        e->type = (uint8_t)type;
        memcpy(e->table, value, name_len);
        e->table[name_len] = '\0';
        found = 1;
        break;
      }
      size_t attr_step = NLA_ALIGN(a.nla_len);
      at = attr_step < payload_len - at ? at + attr_step : payload_len;
    }
    if (!found) goto bad;
    continue;
  bad:
    /* Nothing after a bad length can be trusted: stop, and say so. */
    *malformed = 1;
    break;
  }
  return count;
}

static napi_value events_array(napi_env env, size_t count) {
  napi_value list;
  napi_create_array_with_length(env, count, &list);
  for (size_t i = 0; i < count; i++) {
    napi_value item, family, type, table;
    napi_create_array_with_length(env, 3, &item);
    napi_create_uint32(env, events[i].family, &family);
    napi_create_uint32(env, events[i].type, &type);
    napi_create_string_utf8(env, events[i].table, NAPI_AUTO_LENGTH, &table);
    napi_set_element(env, item, 0, family);
    napi_set_element(env, item, 1, type);
    napi_set_element(env, item, 2, table);
    napi_set_element(env, list, i, item);
  }
  return list;
}

static napi_value parse(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  size_t len = 0;
  bool is_buffer = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 || napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok || len > DATAGRAM_MAX) {
    napi_throw_type_error(env, NULL, "parse(buffer of at most 64 KiB)");
    return NULL;
  }
  int malformed = 0;
  size_t count = parse_datagram(data, len, &malformed);
  napi_value result, flag;
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "events", events_array(env, count));
  napi_get_boolean(env, malformed, &flag);
  napi_set_named_property(env, result, "malformed", flag);
  return result;
}

typedef struct {
  uv_poll_t poll;
  int fd;
  int raw;
  int closed;
  /* The JS handle and the uv handle: freed when both are gone. */
  int refs;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
} watch_t;

static unsigned char datagram[DATAGRAM_MAX] __attribute__((aligned(NLMSG_ALIGNTO)));

/* Calls the callback; an exception it throws goes to process 'uncaughtException', as any callback's would. */
static void deliver(watch_t *w, size_t argc, napi_value *argv) {
  napi_env env = w->env;
  napi_value callback, global, ignored;
  napi_get_reference_value(env, w->callback, &callback);
  napi_get_global(env, &global);
  if (napi_make_callback(env, w->context, global, callback, argc, argv, &ignored) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
}

static void on_readable(uv_poll_t *handle, int status, int revents) {
  watch_t *w = handle->data;
  (void)revents;
  napi_handle_scope scope;
  napi_open_handle_scope(w->env, &scope);
  for (int n = 0; n < DATAGRAMS_PER_WAKE && !w->closed; n++) {
    napi_value argv[2];
    const char *problem = NULL;
    int last = 0; /* an error the socket may keep returning: report it once per wake-up */
    size_t count = 0;
    struct sockaddr_nl from;
    socklen_t from_len = sizeof from;
    ssize_t got = status < 0 ? -1 : recvfrom(w->fd, datagram, sizeof datagram, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&from, &from_len);
    if (got < 0) {
      if (status >= 0 && (errno == EAGAIN || errno == EINTR)) break;
      /* ENOBUFS: the kernel dropped notifications for us. Anything else: the same, as far as we know. */
      problem = "overrun";
      last = status < 0 || errno != ENOBUFS;
      status = 0;
    } else if (from_len != sizeof from || from.nl_family != AF_NETLINK || from.nl_pid != 0) {
      continue; /* not from the kernel */
    } else if ((size_t)got > sizeof datagram) {
      problem = "overrun";
    } else if (w->raw) {
      void *copy;
      napi_create_buffer_copy(w->env, (size_t)got, datagram, &copy, &argv[0]);
      deliver(w, 1, argv);
      continue;
    } else {
      int malformed = 0;
      count = parse_datagram(datagram, (size_t)got, &malformed);
      if (malformed) problem = "malformed";
      if (count == 0 && !problem) continue;
    }
    if (w->raw) {
      /* A capture has no events to give: an empty buffer says notifications were lost. */
      napi_create_buffer(w->env, 0, NULL, &argv[0]);
      deliver(w, 1, argv);
      if (last) break;
      continue;
    }
    argv[0] = events_array(w->env, count);
    if (problem) napi_create_string_utf8(w->env, problem, NAPI_AUTO_LENGTH, &argv[1]);
    else napi_get_null(w->env, &argv[1]);
    deliver(w, 2, argv);
    if (last) break;
  }
  napi_close_handle_scope(w->env, scope);
}

static void release(watch_t *w) {
  if (--w->refs == 0) free(w);
}

static void on_closed(uv_handle_t *handle) {
  watch_t *w = handle->data;
  close(w->fd);
  release(w);
}

static void stop(watch_t *w) {
  if (w->closed) return;
  w->closed = 1;
  napi_delete_reference(w->env, w->callback);
  napi_async_destroy(w->env, w->context);
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, on_closed);
}

static napi_value close_watch(napi_env env, napi_callback_info info) {
  napi_value self;
  watch_t *w = NULL;
  if (napi_get_cb_info(env, info, NULL, NULL, &self, NULL) != napi_ok || napi_unwrap(env, self, (void **)&w) != napi_ok || w == NULL) {
    napi_throw_type_error(env, NULL, "close() of a watch handle");
    return NULL;
  }
  stop(w);
  return NULL;
}

/* A handle collected without close(): nobody can close it any more, so it stops listening. */
static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  watch_t *w = data;
  stop(w);
  release(w);
}

static int open_socket(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
  if (fd < 0) return -1;
  int size = RCVBUF_BYTES, group = NFNLGRP_NFTABLES;
  /* Past rmem_max with CAP_NET_ADMIN; else as much as rmem_max allows. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0) (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0 || setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

static napi_value watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype kind = napi_undefined;
  bool raw = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_typeof(env, argv[0], &kind) != napi_ok || kind != napi_function ||
      (argc > 1 && napi_get_value_bool(env, argv[1], &raw) != napi_ok)) {
    napi_throw_type_error(env, NULL, "watch(callback, raw?)");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    napi_throw_error(env, NULL, "no event loop");
    return NULL;
  }
  int fd = open_socket();
  if (fd < 0) {
    throw_errno(env, errno, "nf_tables notification socket");
    return NULL;
  }
  watch_t *w = calloc(1, sizeof *w);
  int err = w ? uv_poll_init(loop, &w->poll, fd) : UV_ENOMEM;
  if (err != 0) {
    free(w);
    close(fd);
    throw_errno(env, -err, "uv_poll_init");
    return NULL;
  }
  w->fd = fd;
  w->raw = raw;
  w->env = env;
  w->refs = 2;
  w->poll.data = w;
  napi_value name, handle, close_fn;
  napi_create_reference(env, argv[0], 1, &w->callback);
  napi_create_string_utf8(env, "dockwarden:nft-events", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &w->context);
  uv_poll_start(&w->poll, UV_READABLE, on_readable);
  uv_unref((uv_handle_t *)&w->poll);
  napi_create_object(env, &handle);
  napi_create_function(env, "close", NAPI_AUTO_LENGTH, close_watch, NULL, &close_fn);
  napi_set_named_property(env, handle, "close", close_fn);
  napi_wrap(env, handle, w, finalize_handle, NULL, NULL);
  return handle;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"watch", NULL, watch, NULL, NULL, NULL, napi_default, NULL},
      {"parse", NULL, parse, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
