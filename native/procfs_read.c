/*
 * dw_procfs: procfs files read in order on libuv's thread pool (issue #18, start-up reconcile).
 *
 * A sync reads, for every running container, each of its processes' status and its init's
 * mountinfo, each followed by the cgroup file that proves the pid still is the container's. Read
 * synchronously on the event loop (they are made in memory and wait on no disk), the kernel's work
 * of making them was ~0.3 s of the daemon's one busy thread in a start-up reconcile of 1,000
 * containers, while the machine's other core waited; read here, beside the event loop's HTTP work.
 * (Node's own asynchronous reads cost a thread-pool round trip per open, read and close.)
 *
 *   readFiles(paths, maxBytes) -> Promise<Array<string | null>>
 *     Each file read whole, in the order given, one after the other (so a cgroup file listed after
 *     a status is read after it); null for a file that cannot be opened or read, or holds more than
 *     maxBytes. Contents decoded as UTF-8, as readFileSync(path, 'utf8').
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A status file is ~1.5 KiB, a container's mountinfo a few KiB: one read of this takes most whole. */
#define FIRST_READ 8192

typedef struct {
  char *path;
  char *data; /* NULL: unreadable or over the bound; else exactly len bytes (thousands may wait for complete) */
  size_t len;
} file_t;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  size_t max_bytes;
  char *scratch; /* every file is read into this, grown as needed, then copied out at its size */
  size_t scratch_size;
  size_t count;
  file_t files[];
} job_t;

/* The whole file into f->data, or f->data NULL. procfs reports size 0: read until EOF. */
static void read_whole(job_t *j, file_t *f) {
  int fd = open(f->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  size_t len = 0;
  for (;;) {
    if (len == j->scratch_size) {
      if (len > j->max_bytes) break;
      size_t size = j->scratch_size ? j->scratch_size * 2 : FIRST_READ;
      char *grown = realloc(j->scratch, size);
      if (!grown) break;
      j->scratch = grown;
      j->scratch_size = size;
    }
    ssize_t n = read(fd, j->scratch + len, j->scratch_size - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (n == 0) {
      if (len <= j->max_bytes && (f->data = malloc(len ? len : 1))) {
        memcpy(f->data, j->scratch, len);
        f->len = len;
      }
      break;
    }
    len += (size_t)n;
  }
  close(fd);
}

static void execute(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  for (size_t i = 0; i < j->count; i++) read_whole(j, &j->files[i]);
  free(j->scratch);
  j->scratch = NULL;
}

static void free_job(job_t *j) {
  for (size_t i = 0; i < j->count; i++) {
    free(j->files[i].path);
    free(j->files[i].data);
  }
  free(j->scratch);
  free(j);
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  napi_value result, nul;
  napi_get_null(env, &nul);
  napi_create_array_with_length(env, j->count, &result);
  for (size_t i = 0; i < j->count; i++) {
    napi_value text = nul;
    if (j->files[i].data) napi_create_string_utf8(env, j->files[i].data, j->files[i].len, &text);
    napi_set_element(env, result, (uint32_t)i, text);
  }
  if (status == napi_ok) napi_resolve_deferred(env, j->deferred, result);
  else {
    napi_value msg;
    napi_create_string_utf8(env, "readFiles: async work failed", NAPI_AUTO_LENGTH, &msg);
    napi_reject_deferred(env, j->deferred, msg);
  }
  napi_delete_async_work(env, j->work);
  free_job(j);
}

static napi_value read_files(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], promise, name;
  uint32_t count = 0;
  int64_t max_bytes = 0;
  bool is_array = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &count) != napi_ok ||
      napi_get_value_int64(env, argv[1], &max_bytes) != napi_ok || max_bytes < 0) {
    napi_throw_type_error(env, NULL, "readFiles(paths: string[], maxBytes: number)");
    return NULL;
  }
  job_t *j = calloc(1, sizeof *j + count * sizeof(file_t));
  if (!j) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  j->max_bytes = (size_t)max_bytes;
  for (uint32_t i = 0; i < count; i++, j->count++) {
    napi_value element;
    size_t len;
    napi_get_element(env, argv[0], i, &element);
    if (napi_get_value_string_utf8(env, element, NULL, 0, &len) != napi_ok || !(j->files[i].path = malloc(len + 1))) {
      free_job(j);
      napi_throw_type_error(env, NULL, "readFiles: every path must be a string");
      return NULL;
    }
    napi_get_value_string_utf8(env, element, j->files[i].path, len + 1, &len);
    if (strlen(j->files[i].path) != len) { /* an embedded NUL would cut the path short: refuse it */
      j->count++;
      free_job(j);
      napi_throw_type_error(env, NULL, "readFiles: a path holds a NUL");
      return NULL;
    }
  }
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "dw_procfs.readFiles", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"readFiles", NULL, read_files, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
