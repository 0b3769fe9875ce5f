/*
 * mkfifo(3) for Node, which has none: a Node-API addon of one function, so FIFOs cost a system
 * call on any libc (glibc, musl) instead of a process (mkfifo(1)) or an FFI library.
 *
 *   mkfifo(path: string, mode: number): number   // 0, or the errno
 *
 * The caller refuses paths with NUL (C would cut them there).
 */
#include <errno.h>
#include <limits.h>
#include <node_api.h>
#include <sys/stat.h>
#include <sys/types.h>

static napi_value result(napi_env env, int value) {
  napi_value out;
  if (napi_create_int32(env, value, &out) != napi_ok) return NULL;
  return out;
}

static napi_value Mkfifo(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return result(env, EINVAL);
  char path[PATH_MAX];
  size_t length = 0;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &length) != napi_ok) return result(env, EINVAL);
  if (length >= sizeof path) return result(env, ENAMETOOLONG);
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &length) != napi_ok) return result(env, EINVAL);
  uint32_t mode = 0;
  if (napi_get_value_uint32(env, argv[1], &mode) != napi_ok) return result(env, EINVAL);
  return result(env, mkfifo(path, (mode_t)mode) == 0 ? 0 : errno);
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "mkfifo", NAPI_AUTO_LENGTH, Mkfifo, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "mkfifo", fn) != napi_ok) return NULL;
  return exports;
}
