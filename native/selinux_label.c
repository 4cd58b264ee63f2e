/*
 * dw_selinux: SELinux file labels without ever following a symlink (DESIGN §5).
 *
 * Node has no xattr API, and the npm packages that add one call getxattr/setxattr, which follow
 * symlinks: a container could plant a link to /etc/shadow in its volume. Here every entry is reached
 * from a directory fd opened with O_NOFOLLOW, component by component from "/", and labelled through
 * /proc/self/fd/<dirfd>/<name> with the l* calls: the directory is the one we opened even if its path
 * is swapped under us, and the last component is never followed. The walk stays on the root's
 * filesystem, skips entries already labelled, labels each directory after its contents (the root
 * last), and runs on libuv's thread pool so the daemon's event loop keeps turning. Where the kernel
 * has getxattrat/setxattrat (Linux 6.13+), they do the same from the directory fd without the trip
 * through procfs, at about twice the speed; older kernels get the /proc path.
 *
 *   relabelTree(root, typeLevel, statFiles) -> Promise<{visited, labelled, alreadyLabelled,
 *       otherFilesystem, vanished, failed, errors: [{path, code}], rootError, rootOldLabel, rootNewLabel}>
 *     Each entry gets "<its own user>:<its own role>:<typeLevel>" (system_u:object_r when unlabelled).
 *     statFiles false (no mount below the root): regular files are not stat'ed for their device.
 *   lgetxattrLabel(path) -> string | null      (null: no label)
 *   lsetxattrLabel(path, label)
 *   useProcPaths(bool)   tests: force the /proc path, as on kernels without *xattrat
 *   prepareDirectory(path, mode, uid, gid) -> "created" | "adopted" | "exists"
 *     A persistent storage directory, made without following symlinks (missing parents as root
 *     0755, as dockerd makes them); "adopted": it was the empty root:root 0755 directory dockerd
 *     makes for a missing -v source, now given the owner and mode.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Linux 6.13's *xattrat calls (one number on every architecture); glibc has no wrapper yet. */
#ifndef __NR_setxattrat
#define __NR_setxattrat 463
#endif
#ifndef __NR_getxattrat
#define __NR_getxattrat 464
#endif
struct xattr_args_v0 {
  uint64_t value;
  uint32_t size;
  uint32_t flags;
};
/* 1 until the kernel answers ENOSYS (or a test asks for the /proc path); read by pool threads. */
static int use_xattrat = 1;

#define XATTR_NAME "security.selinux"
#define LABEL_MAX 4096
#define MAX_ERRORS 20
/* Each level holds one directory fd: bound it so a hostile, very deep tree cannot exhaust fds. */
#define MAX_DEPTH 512
#define DEFAULT_USER_ROLE "system_u:object_r"

typedef struct {
  char path[PATH_MAX];
  int code;
} failure_t;

typedef struct {
  char *root;
  char *type_level;
  /* 0 when no mount lies below the root: regular files (by d_type) then skip the stat that only
     the one-filesystem check needs, a fifth of the walk's time */
  int stat_files;
  /* results */
  double visited, labelled, already, other_fs, vanished, failed;
  failure_t errors[MAX_ERRORS];
  int n_errors;
  int root_error;
  char root_old[LABEL_MAX];
  int root_had_old;
  char root_new[LABEL_MAX];
  /* the path of the entry being handled, for error reports only (the walk itself never uses it) */
  char where[PATH_MAX];
  size_t where_len;
  napi_deferred deferred;
  napi_async_work work;
} job_t;

static void note_failure(job_t *j, int code) {
  j->failed++;
  if (j->n_errors < MAX_ERRORS) {
    snprintf(j->errors[j->n_errors].path, PATH_MAX, "%s", j->where);
    j->errors[j->n_errors].code = code;
    j->n_errors++;
  }
}

/* where += "/" name (cut short when too long: it is only for messages); returns the old length. */
static size_t where_push(job_t *j, const char *name) {
  size_t old = j->where_len;
  size_t len = strlen(name);
  if (old + 1 + len < PATH_MAX) {
    j->where[old] = '/';
    memcpy(j->where + old + 1, name, len + 1);
    j->where_len = old + 1 + len;
  }
  return old;
}

static void where_pop(job_t *j, size_t old) {
  j->where_len = old;
  j->where[old] = '\0';
}

/* "/proc/self/fd/<dirfd>/<name>": resolves through the open directory, never through its path. */
static int entry_path(char *out, size_t size, int dirfd, const char *name) {
  int n = snprintf(out, size, "/proc/self/fd/%d/%s", dirfd, name);
  return n > 0 && (size_t)n < size ? 0 : ENAMETOOLONG;
}

/* The label `current` should have: its own user:role (or the default) and the wanted type:level. */
static void target_label(char *out, size_t size, const char *current, const char *type_level) {
  const char *first = current ? strchr(current, ':') : NULL;
  const char *second = first ? strchr(first + 1, ':') : NULL;
  const char *prefix = second && second > first + 1 && first > current ? current : DEFAULT_USER_ROLE;
  size_t prefix_len = prefix == current ? (size_t)(second - current) : strlen(DEFAULT_USER_ROLE);
  size_t tail_len = strlen(type_level);
  /* by hand, not snprintf: this runs for every entry */
  if (prefix_len + 1 + tail_len >= size) {
    out[0] = '\0';
    return;
  }
  memcpy(out, prefix, prefix_len);
  out[prefix_len] = ':';
  memcpy(out + prefix_len + 1, type_level, tail_len + 1);
}

/* A label as read: NUL-terminated, without the kernel's trailing NUL; returns its length (n >= 0). */
static ssize_t terminate(char *buf, ssize_t n) {
  while (n > 0 && buf[n - 1] == '\0') n--;
  buf[n] = '\0';
  return n;
}

/* Reads the label of a path itself; returns its length, 0 when there is none, -errno on failure. */
static ssize_t read_label(const char *path, char *buf, size_t size) {
  ssize_t n = lgetxattr(path, XATTR_NAME, buf, size - 1);
  if (n < 0) return errno == ENODATA ? 0 : -errno;
  return terminate(buf, n);
}

static int xattrat_missing(void) {
  if (errno != ENOSYS) return 0;
  __atomic_store_n(&use_xattrat, 0, __ATOMIC_RELAXED);
  return 1;
}

/* The label of <dirfd>/<name> itself, as read_label. */
static ssize_t read_label_at(int dirfd, const char *name, char *buf, size_t size) {
  if (__atomic_load_n(&use_xattrat, __ATOMIC_RELAXED)) {
    struct xattr_args_v0 args = {(uint64_t)(uintptr_t)buf, (uint32_t)(size - 1), 0};
    long n = syscall(__NR_getxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, XATTR_NAME, &args, sizeof args);
    if (n >= 0) return terminate(buf, n);
    if (!xattrat_missing()) return errno == ENODATA ? 0 : -errno;
  }
  char path[PATH_MAX];
  int err = entry_path(path, sizeof path, dirfd, name);
  return err ? -err : read_label(path, buf, size);
}

/* Sets the label of <dirfd>/<name> itself (stored with its NUL, as libselinux does); 0 or an errno. */
static int write_label_at(int dirfd, const char *name, const char *label) {
  size_t size = strlen(label) + 1;
  if (__atomic_load_n(&use_xattrat, __ATOMIC_RELAXED)) {
    struct xattr_args_v0 args = {(uint64_t)(uintptr_t)label, (uint32_t)size, 0};
    if (syscall(__NR_setxattrat, dirfd, name, AT_SYMLINK_NOFOLLOW, XATTR_NAME, &args, sizeof args) == 0) return 0;
    if (!xattrat_missing()) return errno;
  }
  char path[PATH_MAX];
  int err = entry_path(path, sizeof path, dirfd, name);
  if (err) return err;
  return lsetxattr(path, XATTR_NAME, label, size, 0) == 0 ? 0 : errno;
}

/* Labels one entry (the entry itself, whatever it is); returns 0 or an errno. */
static int label_entry(job_t *j, int dirfd, const char *name, int is_root) {
  char current[LABEL_MAX] = "";
  char wanted[LABEL_MAX];
  ssize_t n = read_label_at(dirfd, name, current, sizeof current);
  if (n < 0) return (int)-n;
  target_label(wanted, sizeof wanted, n > 0 ? current : NULL, j->type_level);
  if (wanted[0] == '\0') return E2BIG; /* never write an empty label */
  if (is_root) {
    j->root_had_old = n > 0;
    snprintf(j->root_old, LABEL_MAX, "%s", current);
    snprintf(j->root_new, LABEL_MAX, "%s", wanted);
  }
  if (n > 0 && strcmp(current, wanted) == 0) {
    j->already++;
    return 0;
  }
  int err = write_label_at(dirfd, name, wanted);
  if (err) return err;
  j->labelled++;
  return 0;
}

static void walk_dir(job_t *j, int dirfd, dev_t dev, int depth);

/* One entry of a directory: recurse into directories of the same filesystem, then label it. */
static void visit(job_t *j, int dirfd, const char *name, dev_t dev, int depth, unsigned char type) {
  struct stat st;
  size_t mark = where_push(j, name);
  j->visited++;
  if (type == DT_REG && !j->stat_files) {
    int err = label_entry(j, dirfd, name, 0);
    if (err == ENOENT) j->vanished++;
    else if (err) note_failure(j, err);
    where_pop(j, mark);
    return;
  }
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) j->vanished++;
    else note_failure(j, errno);
    where_pop(j, mark);
    return;
  }
  if (st.st_dev != dev) {
    j->other_fs++; /* a mount point: neither labelled nor entered */
    where_pop(j, mark);
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    if (depth >= MAX_DEPTH) {
      note_failure(j, ELOOP);
      where_pop(j, mark);
      return;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat opened;
    if (fd < 0) {
      if (errno == ENOENT) j->vanished++;
      else note_failure(j, errno);
      where_pop(j, mark);
      return;
    }
    if (fstat(fd, &opened) != 0 || opened.st_ino != st.st_ino || opened.st_dev != st.st_dev) {
      close(fd);
      j->vanished++; /* replaced between the stat and the open */
      where_pop(j, mark);
      return;
    }
    walk_dir(j, fd, dev, depth + 1); /* closes fd */
  }
  int err = label_entry(j, dirfd, name, 0);
  if (err == ENOENT) j->vanished++;
  else if (err) note_failure(j, err);
  where_pop(j, mark);
}

static void walk_dir(job_t *j, int fd, dev_t dev, int depth) {
  DIR *dir = fdopendir(fd);
  if (!dir) {
    note_failure(j, errno);
    close(fd);
    return;
  }
  struct dirent *entry;
  for (errno = 0; (entry = readdir(dir)) != NULL; errno = 0) {
    const char *name = entry->d_name;
    if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
    visit(j, dirfd(dir), name, dev, depth, entry->d_type);
  }
  if (errno != 0) note_failure(j, errno);
  closedir(dir);
}

/*
 * Opens the parent of `path` one component at a time, refusing any symlink on the way: the path the
 * caller approved is the path labelled. Returns the parent's fd and points *name at the last component.
 * `make`: missing directories on the way are made (root, 0755, as dockerd makes them).
 */
static int open_parent(char *path, char **name, int *err, int make) {
  size_t len = strlen(path);
  while (len > 1 && path[len - 1] == '/') path[--len] = '\0';
  if (path[0] != '/' || len < 2) {
    *err = EINVAL; /* never "/" itself, never a relative path */
    return -1;
  }
  int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return -1;
  }
  char *part = path + 1;
  for (;;) {
    while (*part == '/') part++;
    char *slash = strchr(part, '/');
    if (!slash) break;
    *slash = '\0';
    if (strcmp(part, ".") == 0 || strcmp(part, "..") == 0) {
      close(fd);
      *err = EINVAL; /* only normalised paths: what was approved is what is opened */
      return -1;
    }
    int next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && make && (mkdirat(fd, part, 0755) == 0 || errno == EEXIST))
      next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int saved = errno;
    *slash = '/';
    close(fd);
    if (next < 0) {
      *err = saved;
      return -1;
    }
    fd = next;
    part = slash + 1;
  }
  if (*part == '\0' || strcmp(part, ".") == 0 || strcmp(part, "..") == 0) {
    close(fd);
    *err = EINVAL;
    return -1;
  }
  *name = part;
  return fd;
}

static void relabel_execute(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  char *copy = strdup(j->root);
  char *name = NULL;
  int err = 0;
  snprintf(j->where, PATH_MAX, "%s", j->root);
  j->where_len = strlen(j->where);
  int parent = copy ? open_parent(copy, &name, &err, 0) : -1;
  if (!copy) err = ENOMEM;
  if (parent < 0) {
    j->root_error = err;
    free(copy);
    return;
  }
  struct stat st;
  if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    j->root_error = errno;
  } else if (S_ISLNK(st.st_mode)) {
    j->root_error = ELOOP; /* the approved real path became a symlink */
  } else {
    j->visited++;
    if (S_ISDIR(st.st_mode)) {
      int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) j->root_error = errno;
      else walk_dir(j, fd, st.st_dev, 1);
    }
    if (!j->root_error) {
      snprintf(j->where, PATH_MAX, "%s", j->root);
      j->where_len = strlen(j->where);
      j->root_error = label_entry(j, parent, name, 1);
    }
  }
  close(parent);
  free(copy);
}

static napi_value make_number(napi_env env, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  return v;
}

static napi_value make_string(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value errno_name(napi_env env, int code) {
  const char *name = strerrorname_np(code);
  if (name) return make_string(env, name);
  char buf[32];
  snprintf(buf, sizeof buf, "E%d", code);
  return make_string(env, buf);
}

static void set(napi_env env, napi_value obj, const char *key, napi_value value) {
  napi_set_named_property(env, obj, key, value);
}

static void relabel_complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  napi_value result, errors, nul;
  napi_get_null(env, &nul);
  napi_create_object(env, &result);
  set(env, result, "visited", make_number(env, j->visited));
  set(env, result, "labelled", make_number(env, j->labelled));
  set(env, result, "alreadyLabelled", make_number(env, j->already));
  set(env, result, "otherFilesystem", make_number(env, j->other_fs));
  set(env, result, "vanished", make_number(env, j->vanished));
  set(env, result, "failed", make_number(env, j->failed));
  napi_create_array_with_length(env, (size_t)j->n_errors, &errors);
  for (int i = 0; i < j->n_errors; i++) {
    napi_value e;
    napi_create_object(env, &e);
    set(env, e, "path", make_string(env, j->errors[i].path));
    set(env, e, "code", errno_name(env, j->errors[i].code));
    napi_set_element(env, errors, (uint32_t)i, e);
  }
  set(env, result, "errors", errors);
  set(env, result, "rootError", j->root_error ? errno_name(env, j->root_error) : nul);
  set(env, result, "rootOldLabel", j->root_had_old ? make_string(env, j->root_old) : nul);
  set(env, result, "rootNewLabel", j->root_new[0] ? make_string(env, j->root_new) : nul);
  if (status == napi_ok) napi_resolve_deferred(env, j->deferred, result);
  else napi_reject_deferred(env, j->deferred, make_string(env, "relabelTree: async work failed"));
  napi_delete_async_work(env, j->work);
  free(j->root);
  free(j->type_level);
  free(j);
}

/* A JS string argument as a malloc'ed C string; NULL (with a pending TypeError) when it is not one. */
static char *string_arg(napi_env env, napi_value value, const char *what) {
  size_t len;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  char *s = malloc(len + 1);
  if (!s) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, value, s, len + 1, &len);
  if (strlen(s) != len) { /* an embedded NUL would cut the path short: refuse it */
    free(s);
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  return s;
}

static napi_value relabel_tree(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], promise, name;
  bool stat_files = true;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3 || napi_get_value_bool(env, argv[2], &stat_files) != napi_ok) {
    napi_throw_type_error(env, NULL, "relabelTree(root, typeLevel, statFiles)");
    return NULL;
  }
  job_t *j = calloc(1, sizeof *j);
  if (!j) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  j->stat_files = stat_files;
  j->root = string_arg(env, argv[0], "root must be a string without NUL");
  j->type_level = j->root ? string_arg(env, argv[1], "typeLevel must be a string without NUL") : NULL;
  if (!j->root || !j->type_level) {
    free(j->root);
    free(j);
    return NULL;
  }
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "dw_selinux.relabelTree", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, relabel_execute, relabel_complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

static void throw_errno(napi_env env, int code, const char *call) {
  napi_value error, msg, code_value;
  char text[128];
  snprintf(text, sizeof text, "%s: %s", call, strerror(code));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  code_value = errno_name(env, code);
  napi_create_error(env, code_value, msg, &error);
  napi_throw(env, error);
}

static napi_value get_label(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  char label[LABEL_MAX];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char *path = argc ? string_arg(env, argv[0], "path must be a string without NUL") : NULL;
  if (!path) return NULL;
  ssize_t n = read_label(path, label, sizeof label);
  free(path);
  if (n < 0) {
    throw_errno(env, (int)-n, "lgetxattr");
    return NULL;
  }
  if (n == 0) napi_get_null(env, &result);
  else result = make_string(env, label);
  return result;
}

static napi_value set_label(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char *path = argc == 2 ? string_arg(env, argv[0], "path must be a string without NUL") : NULL;
  char *label = path ? string_arg(env, argv[1], "label must be a string without NUL") : NULL;
  int err = label && lsetxattr(path, XATTR_NAME, label, strlen(label) + 1, 0) != 0 ? errno : 0;
  free(path);
  if (!label) return NULL;
  free(label);
  if (err) throw_errno(env, err, "lsetxattr");
  return NULL;
}

static int is_empty_dir(int fd) {
  DIR *dir = fdopendir(dup(fd));
  if (!dir) return 0;
  struct dirent *entry;
  int empty = 1;
  while (empty && (entry = readdir(dir)) != NULL) empty = strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0;
  closedir(dir);
  return empty;
}

static napi_value prepare_directory(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint32_t mode, uid, gid;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4 || napi_get_value_uint32(env, argv[1], &mode) != napi_ok || napi_get_value_uint32(env, argv[2], &uid) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &gid) != napi_ok || mode > 07777) {
    napi_throw_type_error(env, NULL, "prepareDirectory(path, mode, uid, gid)");
    return NULL;
  }
  char *path = string_arg(env, argv[0], "path must be a string without NUL");
  if (!path) return NULL;
  char *name = NULL;
  int err = 0;
  const char *outcome = "exists";
  int parent = open_parent(path, &name, &err, 1);
  if (parent >= 0) {
    int made = mkdirat(parent, name, 0700) == 0;
    if (!made && errno != EEXIST) err = errno;
    int fd = err ? -1 : openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (!err && (fd < 0 || fstat(fd, &st) != 0)) err = errno;
    int adopt = !err && !made && st.st_uid == 0 && st.st_gid == 0 && (st.st_mode & 07777) == 0755 && is_empty_dir(fd);
    /* owner first: chown clears set-id bits that the mode may ask for */
    if (!err && (made || adopt) && (fchown(fd, uid, gid) != 0 || fchmod(fd, mode) != 0)) err = errno;
    if (!err && (made || adopt)) outcome = made ? "created" : "adopted";
    if (fd >= 0) close(fd);
    close(parent);
  }
  free(path);
  if (err) {
    throw_errno(env, err, "prepareDirectory");
    return NULL;
  }
  return make_string(env, outcome);
}

static napi_value use_proc_paths(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool on = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_bool(env, argv[0], &on) != napi_ok) {
    napi_throw_type_error(env, NULL, "useProcPaths(boolean)");
    return NULL;
  }
  __atomic_store_n(&use_xattrat, on ? 0 : 1, __ATOMIC_RELAXED);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"relabelTree", NULL, relabel_tree, NULL, NULL, NULL, napi_default, NULL},
      {"lgetxattrLabel", NULL, get_label, NULL, NULL, NULL, napi_default, NULL},
      {"lsetxattrLabel", NULL, set_label, NULL, NULL, NULL, napi_default, NULL},
      {"useProcPaths", NULL, use_proc_paths, NULL, NULL, NULL, napi_default, NULL},
      {"prepareDirectory", NULL, prepare_directory, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
