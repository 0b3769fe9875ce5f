/*
 * Strict validation of the documents HCS parses, field by field, as the real service does: an unknown field or
 * a value of the wrong shape is ERROR_VMCOMPUTE_INVALID_JSON (0xC037010D) with a message naming the field.
 *
 * The field lists are hcsshim's Go types at 7c9ff7f48 (microsoft/hcsshim):
 *   - v1: internal/hcs/schema1/schema1.go ContainerConfig, Layer, MappedDir, MappedPipe, HvRuntime,
 *     MappedVirtualDisk, AssignedDevice, ProcessConfig;
 *   - v2.1: internal/hcs/schema2/{compute_system,container,guest_os,storage,layer,storage_qo_s,mapped_directory,
 *     mapped_pipe,memory,processor,networking,version,process_parameters,process_modify_request,console_size,
 *     close_handle,property_query}.go; schema1.ComputeSystemQuery for HcsEnumerateComputeSystems.
 * Keys match case-insensitively (Go's decoder does; how HCS matches them is unverified). Nested objects that this
 * fake never interprets (a v2 VirtualMachine, HostedSystem, HvSocket, …) are checked to be objects, not walked.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

typedef enum { F_STR, F_BOOL, F_UINT, F_INT, F_STRARR, F_STRMAP, F_OBJ, F_OBJARR, F_ANYOBJ, F_ANYARR, F_SIZE2 } ftype;

struct schema;
typedef struct {
  const char *name;
  ftype type;
  const struct schema *sub; /* F_OBJ / F_OBJARR */
} field;

typedef struct schema {
  const char *name;
  const field *fields;
} schema;

#define END {NULL, F_STR, NULL}

/* ---- schema v1 (schema1.go) ---- */
static const field v1_layer_f[] = {{"ID", F_STR, NULL}, {"Path", F_STR, NULL}, END};
static const schema v1_layer = {"Layer", v1_layer_f};
static const field v1_mapped_dir_f[] = {{"HostPath", F_STR, NULL},         {"ContainerPath", F_STR, NULL},
                                        {"ReadOnly", F_BOOL, NULL},        {"BandwidthMaximum", F_UINT, NULL},
                                        {"IOPSMaximum", F_UINT, NULL},     {"CreateInUtilityVM", F_BOOL, NULL},
                                        {"LinuxMetadata", F_BOOL, NULL},   END};
static const schema v1_mapped_dir = {"MappedDir", v1_mapped_dir_f};
static const field v1_mapped_pipe_f[] = {{"HostPath", F_STR, NULL}, {"ContainerPipeName", F_STR, NULL}, END};
static const schema v1_mapped_pipe = {"MappedPipe", v1_mapped_pipe_f};
static const field v1_hv_runtime_f[] = {{"ImagePath", F_STR, NULL},           {"SkipTemplate", F_BOOL, NULL},
                                        {"LinuxInitrdFile", F_STR, NULL},     {"LinuxKernelFile", F_STR, NULL},
                                        {"LinuxBootParameters", F_STR, NULL}, {"BootSource", F_STR, NULL},
                                        {"WritableBootSource", F_BOOL, NULL}, END};
static const schema v1_hv_runtime = {"HvRuntime", v1_hv_runtime_f};
static const field v1_mvd_f[] = {{"HostPath", F_STR, NULL}, {"ContainerPath", F_STR, NULL},
                                 {"CreateInUtilityVM", F_BOOL, NULL}, {"ReadOnly", F_BOOL, NULL},
                                 {"Cache", F_STR, NULL}, {"AttachOnly", F_BOOL, NULL}, END};
static const schema v1_mvd = {"MappedVirtualDisk", v1_mvd_f};
static const field v1_device_f[] = {{"InterfaceClassGuid", F_STR, NULL}, END};
static const schema v1_device = {"AssignedDevice", v1_device_f};
static const field v1_container_f[] = {{"SystemType", F_STR, NULL},
                                       {"Name", F_STR, NULL},
                                       {"Owner", F_STR, NULL},
                                       {"VolumePath", F_STR, NULL},
                                       {"IgnoreFlushesDuringBoot", F_BOOL, NULL},
                                       {"LayerFolderPath", F_STR, NULL},
                                       {"Layers", F_OBJARR, &v1_layer},
                                       {"Credentials", F_STR, NULL},
                                       {"ProcessorCount", F_UINT, NULL},
                                       {"ProcessorWeight", F_UINT, NULL},
                                       {"ProcessorMaximum", F_INT, NULL},
                                       {"StorageIOPSMaximum", F_UINT, NULL},
                                       {"StorageBandwidthMaximum", F_UINT, NULL},
                                       {"StorageSandboxSize", F_UINT, NULL},
                                       {"MemoryMaximumInMB", F_INT, NULL},
                                       {"HostName", F_STR, NULL},
                                       {"MappedDirectories", F_OBJARR, &v1_mapped_dir},
                                       {"MappedPipes", F_OBJARR, &v1_mapped_pipe},
                                       {"HvPartition", F_BOOL, NULL},
                                       {"NetworkSharedContainerName", F_STR, NULL},
                                       {"EndpointList", F_STRARR, NULL},
                                       {"HvRuntime", F_OBJ, &v1_hv_runtime},
                                       {"Servicing", F_BOOL, NULL},
                                       {"AllowUnqualifiedDNSQuery", F_BOOL, NULL},
                                       {"DNSSearchList", F_STR, NULL},
                                       {"ContainerType", F_STR, NULL},
                                       {"TerminateOnLastHandleClosed", F_BOOL, NULL},
                                       {"MappedVirtualDisks", F_OBJARR, &v1_mvd},
                                       {"AssignedDevices", F_OBJARR, &v1_device},
                                       END};
static const schema v1_container = {"ContainerConfig", v1_container_f};
static const field v1_process_f[] = {{"ApplicationName", F_STR, NULL},   {"CommandLine", F_STR, NULL},
                                     {"CommandArgs", F_STRARR, NULL},    {"User", F_STR, NULL},
                                     {"WorkingDirectory", F_STR, NULL},  {"Environment", F_STRMAP, NULL},
                                     {"EmulateConsole", F_BOOL, NULL},   {"CreateStdInPipe", F_BOOL, NULL},
                                     {"CreateStdOutPipe", F_BOOL, NULL}, {"CreateStdErrPipe", F_BOOL, NULL},
                                     {"ConsoleSize", F_SIZE2, NULL},     {"CreateInUtilityVm", F_BOOL, NULL},
                                     {"OCISpecification", F_ANYOBJ, NULL}, END};
static const schema v1_process = {"ProcessConfig", v1_process_f};

/* ---- schema v2.1 (the schema2 package) ---- */
static const field v2_version_f[] = {{"Major", F_INT, NULL}, {"Minor", F_INT, NULL}, END};
static const schema v2_version = {"Version", v2_version_f};
static const field v2_guest_os_f[] = {{"HostName", F_STR, NULL}, END};
static const schema v2_guest_os = {"GuestOs", v2_guest_os_f};
static const field v2_layer_f[] = {{"Id", F_STR, NULL}, {"Path", F_STR, NULL}, {"PathType", F_STR, NULL},
                                   {"Cache", F_STR, NULL}, END};
static const schema v2_layer = {"Layer", v2_layer_f};
static const field v2_qos_f[] = {{"IopsMaximum", F_INT, NULL}, {"BandwidthMaximum", F_INT, NULL}, END};
static const schema v2_qos = {"StorageQoS", v2_qos_f};
static const field v2_storage_f[] = {{"Layers", F_OBJARR, &v2_layer}, {"Path", F_STR, NULL}, {"QoS", F_OBJ, &v2_qos},
                                     {"PrivilegedContainerRootPath", F_STR, NULL}, END};
static const schema v2_storage = {"Storage", v2_storage_f};
static const field v2_mapped_dir_f[] = {{"HostPath", F_STR, NULL}, {"HostPathType", F_STR, NULL},
                                        {"ContainerPath", F_STR, NULL}, {"ReadOnly", F_BOOL, NULL}, END};
static const schema v2_mapped_dir = {"MappedDirectory", v2_mapped_dir_f};
static const field v2_mapped_pipe_f[] = {{"ContainerPipeName", F_STR, NULL}, {"HostPath", F_STR, NULL},
                                         {"HostPathType", F_STR, NULL}, END};
static const schema v2_mapped_pipe = {"MappedPipe", v2_mapped_pipe_f};
static const field v2_memory_f[] = {{"SizeInMB", F_UINT, NULL}, END};
static const schema v2_memory = {"Memory", v2_memory_f};
static const field v2_processor_f[] = {{"Count", F_INT, NULL}, {"Maximum", F_INT, NULL}, {"Weight", F_INT, NULL}, END};
static const schema v2_processor = {"Processor", v2_processor_f};
static const field v2_networking_f[] = {{"AllowUnqualifiedDnsQuery", F_BOOL, NULL},
                                        {"DnsSearchList", F_STR, NULL},
                                        {"NetworkSharedContainerName", F_STR, NULL},
                                        {"Namespace", F_STR, NULL},
                                        {"NetworkAdapters", F_STRARR, NULL},
                                        END};
static const schema v2_networking = {"Networking", v2_networking_f};
/* schema2/registry_changes.go, registry_value.go, registry_key.go */
static const field v2_reg_key_f[] = {{"Hive", F_STR, NULL}, {"Name", F_STR, NULL}, {"Volatile", F_BOOL, NULL}, END};
static const schema v2_reg_key = {"RegistryKey", v2_reg_key_f};
static const field v2_reg_value_f[] = {{"Key", F_OBJ, &v2_reg_key},        {"Name", F_STR, NULL},
                                       {"Type", F_STR, NULL},              {"StringValue", F_STR, NULL},
                                       {"BinaryValue", F_STR, NULL},       {"DWordValue", F_INT, NULL},
                                       {"QWordValue", F_INT, NULL},        {"CustomType", F_INT, NULL},
                                       END};
static const schema v2_reg_value = {"RegistryValue", v2_reg_value_f};
static const field v2_reg_changes_f[] = {{"AddValues", F_OBJARR, &v2_reg_value},
                                         {"DeleteKeys", F_OBJARR, &v2_reg_key}, END};
static const schema v2_reg_changes = {"RegistryChanges", v2_reg_changes_f};
static const field v2_container_f[] = {{"GuestOs", F_OBJ, &v2_guest_os},
                                       {"Storage", F_OBJ, &v2_storage},
                                       {"MappedDirectories", F_OBJARR, &v2_mapped_dir},
                                       {"MappedPipes", F_OBJARR, &v2_mapped_pipe},
                                       {"Memory", F_OBJ, &v2_memory},
                                       {"Processor", F_OBJ, &v2_processor},
                                       {"Networking", F_OBJ, &v2_networking},
                                       {"HvSocket", F_ANYOBJ, NULL},
                                       {"ContainerCredentialGuard", F_ANYOBJ, NULL},
                                       {"RegistryChanges", F_OBJ, &v2_reg_changes},
                                       {"AssignedDevices", F_ANYARR, NULL},
                                       {"AdditionalDeviceNamespace", F_ANYOBJ, NULL},
                                       {"IsolationType", F_STR, NULL},
                                       END};
static const schema v2_container = {"Container", v2_container_f};
static const field v2_compute_system_f[] = {{"Owner", F_STR, NULL},
                                            {"SchemaVersion", F_OBJ, &v2_version},
                                            {"HostingSystemId", F_STR, NULL},
                                            {"HostedSystem", F_ANYOBJ, NULL},
                                            {"Container", F_OBJ, &v2_container},
                                            {"VirtualMachine", F_ANYOBJ, NULL},
                                            {"ShouldTerminateOnLastHandleClosed", F_BOOL, NULL},
                                            END};
static const schema v2_compute_system = {"ComputeSystem", v2_compute_system_f};
static const field v2_process_f[] = {{"ApplicationName", F_STR, NULL},  {"CommandLine", F_STR, NULL},
                                     {"CommandArgs", F_STRARR, NULL},   {"User", F_STR, NULL},
                                     {"WorkingDirectory", F_STR, NULL}, {"Environment", F_STRMAP, NULL},
                                     {"RestrictedToken", F_BOOL, NULL}, {"EmulateConsole", F_BOOL, NULL},
                                     {"CreateStdInPipe", F_BOOL, NULL}, {"CreateStdOutPipe", F_BOOL, NULL},
                                     {"CreateStdErrPipe", F_BOOL, NULL}, {"ConsoleSize", F_SIZE2, NULL},
                                     {"UseExistingLogin", F_BOOL, NULL}, {"UseLegacyConsole", F_BOOL, NULL},
                                     END};
static const schema v2_process = {"ProcessParameters", v2_process_f};

/* ---- queries and modify requests ---- */
static const field console_size_f[] = {{"Height", F_UINT, NULL}, {"Width", F_UINT, NULL}, END};
static const schema console_size = {"ConsoleSize", console_size_f};
static const field close_handle_f[] = {{"Handle", F_STR, NULL}, END};
static const schema close_handle = {"CloseHandle", close_handle_f};
static const field process_modify_f[] = {{"Operation", F_STR, NULL}, {"ConsoleSize", F_OBJ, &console_size},
                                         {"CloseHandle", F_OBJ, &close_handle}, END};
static const schema process_modify = {"ProcessModifyRequest", process_modify_f};
static const field property_query_f[] = {{"PropertyTypes", F_STRARR, NULL}, {"Queries", F_ANYOBJ, NULL}, END};
static const schema property_query = {"PropertyQuery", property_query_f};
static const field system_query_f[] = {{"Ids", F_STRARR, NULL}, {"Types", F_STRARR, NULL}, {"Names", F_STRARR, NULL},
                                       {"Owners", F_STRARR, NULL}, END};
static const schema system_query = {"ComputeSystemQuery", system_query_f};

/* ---- the walker ---- */

static int integral(const jval *v, long long lo, long long hi) {
  long long n;
  return json_int(v, &n) && n >= lo && n <= hi;
}

static int check(const jval *v, const schema *s, const char *path, char *msg, size_t n);

static int check_value(const jval *v, const field *f, const char *path, char *msg, size_t n) {
  char sub[300];
  if (v->t == J_NULL) return 1; /* Go decodes null as the zero value for every field type */
  switch (f->type) {
    case F_STR:
      if (v->t == J_STR) return 1;
      return snprintf(msg, n, "%s must be a string", path), 0;
    case F_BOOL:
      if (v->t == J_BOOL) return 1;
      return snprintf(msg, n, "%s must be a boolean", path), 0;
    case F_UINT:
      if (integral(v, 0, 9007199254740991LL)) return 1;
      return snprintf(msg, n, "%s must be an unsigned integer", path), 0;
    case F_INT:
      if (integral(v, -9007199254740991LL, 9007199254740991LL)) return 1;
      return snprintf(msg, n, "%s must be an integer", path), 0;
    case F_SIZE2:
      if (v->t == J_ARR && v->len == 2 && integral(v->items[0], 0, 65535) && integral(v->items[1], 0, 65535)) return 1;
      return snprintf(msg, n, "%s must be [Height, Width]", path), 0;
    case F_STRARR:
      if (v->t != J_ARR) return snprintf(msg, n, "%s must be an array of strings", path), 0;
      for (size_t i = 0; i < v->len; i++)
        if (v->items[i]->t != J_STR) return snprintf(msg, n, "%s[%zu] must be a string", path, i), 0;
      return 1;
    case F_STRMAP:
      if (v->t != J_OBJ) return snprintf(msg, n, "%s must map names to strings", path), 0;
      for (size_t i = 0; i < v->len; i++)
        if (v->items[i]->t != J_STR) return snprintf(msg, n, "%s.%s must be a string", path, v->keys[i]), 0;
      return 1;
    case F_ANYOBJ:
      if (v->t == J_OBJ) return 1;
      return snprintf(msg, n, "%s must be an object", path), 0;
    case F_ANYARR:
      if (v->t == J_ARR) return 1;
      return snprintf(msg, n, "%s must be an array", path), 0;
    case F_OBJ:
      if (v->t != J_OBJ) return snprintf(msg, n, "%s must be an object (%s)", path, f->sub->name), 0;
      return check(v, f->sub, path, msg, n);
    case F_OBJARR:
      if (v->t != J_ARR) return snprintf(msg, n, "%s must be an array of %s", path, f->sub->name), 0;
      for (size_t i = 0; i < v->len; i++) {
        snprintf(sub, sizeof sub, "%.250s[%zu]", path, i);
        if (v->items[i]->t != J_OBJ) return snprintf(msg, n, "%s must be an object (%s)", sub, f->sub->name), 0;
        if (!check(v->items[i], f->sub, sub, msg, n)) return 0;
      }
      return 1;
  }
  return 0;
}

static int check(const jval *v, const schema *s, const char *path, char *msg, size_t n) {
  for (size_t i = 0; i < v->len; i++) {
    const field *f = s->fields;
    while (f->name && strcasecmp(f->name, v->keys[i]) != 0) f++;
    char sub[300];
    snprintf(sub, sizeof sub, "%.200s%s%.80s", path, *path ? "." : "", v->keys[i]);
    if (!f->name) return snprintf(msg, n, "unknown field %s in %s", sub, s->name), 0;
    if (!check_value(v->items[i], f, sub, msg, n)) return 0;
  }
  return 1;
}

int schema_check(const jval *doc, int which, char *msg, size_t n) {
  const schema *s;
  switch (which) {
    case SCHEMA_V1_CONTAINER: s = &v1_container; break;
    case SCHEMA_V2_COMPUTE_SYSTEM: s = &v2_compute_system; break;
    case SCHEMA_V1_PROCESS: s = &v1_process; break;
    case SCHEMA_V2_PROCESS: s = &v2_process; break;
    case SCHEMA_PROCESS_MODIFY: s = &process_modify; break;
    case SCHEMA_PROPERTY_QUERY: s = &property_query; break;
    case SCHEMA_SYSTEM_QUERY: s = &system_query; break;
    default: return snprintf(msg, n, "unknown schema"), 0;
  }
  if (!doc || doc->t != J_OBJ) return snprintf(msg, n, "the document is not a JSON object"), 0;
  return check(doc, s, "", msg, n);
}
