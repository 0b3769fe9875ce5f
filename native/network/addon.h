/* network.node: what the network module needs from the kernel without a process of Node's per step. */
#ifndef CTRD_NETWORK_ADDON_H
#define CTRD_NETWORK_ADDON_H
#include <node_api.h>

napi_value NetnsCreate(napi_env env, napi_callback_info info);
napi_value NetnsRemove(napi_env env, napi_callback_info info);
napi_value SpawnRun(napi_env env, napi_callback_info info);
napi_value SpawnKill(napi_env env, napi_callback_info info);

#endif
