/* Shared by the addons: a JS Error for an errno, with the errno's name as `code` (as Node's own errors have). */
#ifndef DW_ERRNO_ERROR_H
#define DW_ERRNO_ERROR_H
#include <node_api.h>
#include <stdio.h>
#include <string.h>

static void throw_errno(napi_env env, int code, const char *call) {
  napi_value error, msg, code_value;
  char text[160];
  const char *name = strerrorname_np(code);
  snprintf(text, sizeof text, "%s: %s", call, strerror(code));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code_value);
  napi_create_error(env, code_value, msg, &error);
  napi_throw(env, error);
}

#endif
