/*
 * network.node: a Node-API addon for the network module (src/network): network namespaces as files
 * (netns.c) and CNI plugins run without forking Node (spawn.c). Node-API is ABI-stable: one build
 * serves every Node version.
 */
#include "addon.h"

static int export(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, name, fn) == napi_ok;
}

NAPI_MODULE_INIT() {
  if (!export(env, exports, "createNetns", NetnsCreate) || !export(env, exports, "removeNetns", NetnsRemove) ||
      !export(env, exports, "run", SpawnRun) || !export(env, exports, "kill", SpawnKill))
    return NULL;
  return exports;
}
