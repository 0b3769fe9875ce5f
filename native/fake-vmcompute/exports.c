/*
 * The vmcompute.dll exports (reference §2) and the test-only Fake* exports. Compute-system state lives here;
 * handles, notifications and threads are in notify.c; real processes in process.c.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_ASYNC_DELAY_MS 1
#define DEFAULT_SHUTDOWN_TIMEOUT_MS 5000
#define DEFAULT_UNREGISTER_TIMEOUT_MS 5000

int g_opt_async_delay_ms = DEFAULT_ASYNC_DELAY_MS;
int g_opt_sync_completion = 0;
int g_opt_shutdown_timeout_ms = DEFAULT_SHUTDOWN_TIMEOUT_MS;
int g_opt_unregister_timeout_ms = DEFAULT_UNREGISTER_TIMEOUT_MS;
int g_opt_inject_async = 0;
int g_opt_block_signal = 0;
int g_opt_block_create = 0;
int g_opt_block_create_process = 0;
int g_opt_process_exited_status = 0;
pthread_cond_t g_block_cv = PTHREAD_COND_INITIALIZER;
static int g_blocked_calls; /* calls parked by the blocking options (g_mu) */

static uint16_t *g_last_create_doc; /* malloc'd */
static uint16_t *g_last_modify_doc; /* malloc'd: the last HcsModifyComputeSystem document accepted */

#define LOCK() pthread_mutex_lock(&g_mu)
#define UNLOCK() pthread_mutex_unlock(&g_mu)
#define OUTNULL(pp) \
  do {              \
    if (pp) *(pp) = NULL; \
  } while (0)

/* ---- ResultError documents ---- */

static const char *hr_text(int32_t hr) {
  switch ((uint32_t)hr) {
    case 0xC0370100u: return "A virtual machine or container exited unexpectedly while starting.";
    case 0xC0370105u: return "The requested virtual machine or container operation is not valid in the current state.";
    case 0xC0370106u: return "The virtual machine or container exited unexpectedly.";
    case 0xC037010Du: return "The JSON document is invalid.";
    case 0xC037010Eu: return "A virtual machine or container with the specified identifier does not exist.";
    case 0xC037010Fu: return "A virtual machine or container with the specified identifier already exists.";
    case 0xC0370110u: return "The virtual machine or container with the specified identifier is not running.";
    case 0x8037011Fu: return "The process has already exited.";
    case 0x80070002u: return "The system cannot find the file specified.";
    case 0x80070005u: return "Access is denied.";
    case 0x80070006u: return "The handle is invalid.";
    case 0x8007000Eu: return "Not enough memory resources are available to complete this operation.";
    case 0x80070057u: return "The parameter is incorrect.";
    case 0x800700C1u: return "The specified executable is not a valid application for this OS platform.";
    case 0x8007010Bu: return "The directory name is invalid.";
    case 0x80070490u: return "Element not found.";
    case 0x800705B4u: return "This operation returned because the timeout period expired.";
    default: return "Unspecified error";
  }
}

static char *result_error_json(int32_t hr, const char *detail) {
  sbuf b = {0};
  sb_printf(&b, "{\"Error\":%d,\"ErrorMessage\":", hr);
  sb_jstr(&b, hr_text(hr));
  sb_puts(&b, ",\"ErrorEvents\":[{\"Message\":");
  sb_jstr(&b, detail && *detail ? detail : hr_text(hr));
  sb_printf(&b,
            ",\"StackTrace\":\"\",\"Provider\":\"{17103e3f-3c6e-4677-bb17-3b267eb5be57}\",\"EventId\":%u,"
            "\"Flags\":0,\"Source\":\"fake-vmcompute\"}]}",
            (unsigned)hr & 0xffffu);
  if (b.oom) {
    sb_free(&b);
    return NULL;
  }
  return b.p;
}

static int32_t fail(uint16_t **result, int32_t hr, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int32_t fail(uint16_t **result, int32_t hr, const char *fmt, ...) {
  if (!result) return hr;
  char detail[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  char *doc = result_error_json(hr, detail);
  if (doc) out_str(result, doc);
  free(doc);
  return hr;
}

/* ---- failure injection ---- */

typedef struct inj {
  struct inj *next;
  char *name;
  int32_t hr;
  uint16_t *doc; /* malloc'd or NULL */
  int async;
} inj;
static inj *g_inj;

/* g_mu held. If an injection is queued for name, consumes it. */
static inj *take_injection(const char *name) {
  for (inj **pp = &g_inj; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->name, name) == 0) {
      inj *i = *pp;
      *pp = i->next;
      return i;
    }
  }
  return NULL;
}

static void inj_free(inj *i) {
  if (!i) return;
  free(i->name);
  free(i->doc);
  free(i);
}

static int32_t inj_fail(inj *i, uint16_t **result, const char *name) {
  int32_t hr = i->hr;
  if (result) {
    if (i->doc) {
      *result = u16_dup_cotask(i->doc);
    } else {
      char detail[160];
      snprintf(detail, sizeof detail, "fake-vmcompute: injected failure for %s", name);
      char *doc = result_error_json(hr, detail);
      if (doc) out_str(result, doc);
      free(doc);
    }
  }
  inj_free(i);
  return hr;
}

/* Synchronous injection check at the top of an export. */
#define INJECT(name, result)                   \
  do {                                         \
    inj *i_ = take_injection(name);            \
    if (i_) {                                  \
      int32_t hr_ = inj_fail(i_, result, name); \
      UNLOCK();                                \
      return hr_;                              \
    }                                          \
  } while (0)

/* ---- documents ---- */

/* Converts and parses a document. Empty or NULL → *out = NULL and S_OK if allow_empty. Must be an object. */
static int32_t parse_doc(const uint16_t *doc16, int allow_empty, jval **out, uint16_t **result, const char *what) {
  *out = NULL;
  char *text = u16_to_utf8(doc16);
  if (doc16 && !text) return fail(result, E_OUTOFMEMORY, "out of memory");
  const char *t = text ? text : "";
  const char *q = t;
  while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
  if (!*q) {
    free(text);
    if (allow_empty) return S_OK;
    return fail(result, VMC_INVALID_JSON, "%s: empty document", what);
  }
  char err[160];
  jval *v = json_parse(t, err, sizeof err);
  free(text);
  if (!v) return fail(result, VMC_INVALID_JSON, "%s: %s", what, err);
  if (v->t != J_OBJ) {
    json_free(v);
    return fail(result, VMC_INVALID_JSON, "%s: the document is not a JSON object", what);
  }
  *out = v;
  return S_OK;
}

static int is_str_or_absent(const jval *v) { return !v || v->t == J_NULL || v->t == J_STR; }
static int is_bool_or_absent(const jval *v) { return !v || v->t == J_NULL || v->t == J_BOOL; }
static int is_obj(const jval *v) { return v && v->t == J_OBJ; }

static char *dup_or(const char *s, const char *dflt) { return strdup(s ? s : dflt); }

static int contains_ci(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; hay && *hay; hay++)
    if (strncasecmp(hay, needle, n) == 0) return 1;
  return 0;
}

/* Fills s's identity fields from a v1 or v2 create document. Returns 0 and a message when invalid. */
static int derive_system(const jval *doc, const char *id, fsystem *s, char *msg, size_t n) {
  const jval *sv = json_get(doc, "SchemaVersion");
  const jval *owner = json_get(doc, "Owner");
  if (!is_str_or_absent(owner)) return snprintf(msg, n, "Owner must be a string"), 0;
  long long major = 1, minor = 0;
  if (sv && sv->t != J_NULL) {
    if (!is_obj(sv) || !json_int(json_get(sv, "Major"), &major) || !json_int(json_get(sv, "Minor"), &minor))
      return snprintf(msg, n, "SchemaVersion must be {\"Major\":n,\"Minor\":n}"), 0;
    if (!((major == 1 && minor == 0) || (major == 2 && minor >= 0 && minor <= 9)))
      return snprintf(msg, n, "unsupported schema version %lld.%lld", major, minor), 0;
  }
  if (!schema_check(doc, major >= 2 ? SCHEMA_V2_COMPUTE_SYSTEM : SCHEMA_V1_CONTAINER, msg, n)) return 0;
  s->schema_major = (int)major;
  s->schema_minor = (int)minor;
  s->owner = dup_or(json_str(owner), "");
  if (major >= 2) {
    const jval *c = json_get(doc, "Container"), *vm = json_get(doc, "VirtualMachine"),
               *hs = json_get(doc, "HostedSystem");
    int count = (is_obj(c) ? 1 : 0) + (is_obj(vm) ? 1 : 0) + (is_obj(hs) ? 1 : 0);
    if (count != 1)
      return snprintf(msg, n, "a schema 2 document needs exactly one of Container, VirtualMachine, HostedSystem"), 0;
    const jval *term = json_get(doc, "ShouldTerminateOnLastHandleClosed");
    if (!is_bool_or_absent(term)) return snprintf(msg, n, "ShouldTerminateOnLastHandleClosed must be a bool"), 0;
    s->terminate_on_close = json_truthy(term);
    s->name = strdup(id);
    if (is_obj(vm)) {
      s->system_type = strdup("VirtualMachine");
      const jval *chipset = json_get(vm, "Chipset");
      const jval *boot = json_get(json_get(chipset, "Uefi"), "BootThis");
      int linux_vm = is_obj(json_get(chipset, "LinuxKernelDirect")) ||
                     contains_ci(json_str(json_get(boot, "DevicePath")), "kernel");
      s->runtime_os = strdup(linux_vm ? "Linux" : "Windows");
    } else {
      s->system_type = strdup("Container");
      s->runtime_os = strdup("Windows");
    }
  } else {
    const jval *st = json_get(doc, "SystemType"), *name = json_get(doc, "Name"), *ct = json_get(doc, "ContainerType");
    const jval *layers = json_get(doc, "Layers"), *hv = json_get(doc, "HvPartition");
    const jval *term = json_get(doc, "TerminateOnLastHandleClosed");
    const char *sts = json_str(st);
    if (!sts) return snprintf(msg, n, "SystemType is required in a schema 1 document"), 0;
    if (strcasecmp(sts, "container") == 0) s->system_type = strdup("Container");
    else if (strcasecmp(sts, "virtualmachine") == 0) s->system_type = strdup("VirtualMachine");
    else return snprintf(msg, n, "unknown SystemType '%s'", sts), 0;
    if (!is_str_or_absent(name) || !is_str_or_absent(ct)) return snprintf(msg, n, "Name/ContainerType must be strings"), 0;
    if (layers && layers->t != J_NULL && layers->t != J_ARR) return snprintf(msg, n, "Layers must be an array"), 0;
    if (!is_bool_or_absent(hv) || !is_bool_or_absent(term))
      return snprintf(msg, n, "HvPartition/TerminateOnLastHandleClosed must be bools"), 0;
    s->terminate_on_close = json_truthy(term);
    s->name = dup_or(json_str(name), id);
    const char *cts = json_str(ct);
    if (cts && strcasecmp(cts, "linux") != 0) return snprintf(msg, n, "unknown ContainerType '%s'", cts), 0;
    if (cts) {
      /* LCOW v1 (hcsshim's legacy CreateContainer, moby's createLinux): a Hyper-V utility VM booted from a kernel
       * and initrd, or from a VHD. */
      const jval *rt = json_get(doc, "HvRuntime");
      const char *kernel = json_str(json_get(rt, "LinuxKernelFile")), *initrd = json_str(json_get(rt, "LinuxInitrdFile"));
      const char *boot = json_str(json_get(rt, "BootSource"));
      if (!json_truthy(hv)) return snprintf(msg, n, "a Linux container needs HvPartition: true"), 0;
      if (!json_str(json_get(rt, "ImagePath")) || (!(kernel && initrd) && !(boot && strcasecmp(boot, "Vhd") == 0)))
        return snprintf(msg, n, "a Linux container needs HvRuntime with ImagePath and LinuxKernelFile + "
                                "LinuxInitrdFile (or BootSource Vhd)"), 0;
    }
    s->runtime_os = strdup(cts ? "Linux" : "Windows");
  }
  if (!s->owner || !s->name || !s->system_type || !s->runtime_os) return snprintf(msg, n, "out of memory"), 0;
  return 1;
}

/* "\\?\Volume{GUID}" with ("\\?\Volume{GUID}\") or without its trailing backslash. */
static int volume_path(const char *p, int trailing) {
  static const char prefix[] = "\\\\?\\Volume{";
  size_t n = strlen(prefix);
  if (!p || strncasecmp(p, prefix, n) != 0) return 0;
  p += n;
  for (int i = 0; i < 36; i++, p++) {
    int dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? *p != '-' : !isxdigit((unsigned char)*p)) return 0;
  }
  if (*p++ != '}') return 0;
  return trailing ? strcmp(p, "\\") == 0 : *p == 0;
}

/* What a Windows container's storage must be, as hcsshim and moby build it (E_INVALIDARG otherwise; HCS's exact
 * HRESULT is unverified):
 *   - v1 SystemType is "Container" (hcsshim internal/hcs/schema1/schema1.go: "HCS requires this to be hard-coded");
 *   - v1 process isolation: VolumePath without its trailing backslash ("Required for v1", hcsshim
 *     internal/hcsoci/hcsdoc_wcow.go; "HCS API requires the trailing backslash to be removed", moby
 *     daemon/internal/libcontainerd/local/local_windows.go createWindows) and the read-only Layers (schema1.go:
 *     "Required for Windows Server and Hyper-V Containers");
 *   - v1 Hyper-V: HvRuntime.ImagePath (the UtilityVM folder) and the Layers, no VolumePath (inferred: moby's
 *     own check before it calls HCS, "Root.Path must be omitted for a Hyper-V container", not HCS's);
 *   - v2 Container: Storage.Path WITH the trailing backslash (hcsdoc_wcow.go appends it) and Storage.Layers.
 * LCOW (ContainerType "Linux") is checked by derive_system; a v2 VirtualMachine or HostedSystem is not walked. */
static int check_storage(const jval *doc, int major, char *msg, size_t n) {
  if (major >= 2) {
    const jval *c = json_get(doc, "Container");
    if (!is_obj(c)) return 1;
    const jval *st = json_get(c, "Storage"), *layers = json_get(st, "Layers");
    if (!is_obj(st)) return snprintf(msg, n, "Container.Storage is required"), 0;
    if (!volume_path(json_str(json_get(st, "Path")), 1))
      return snprintf(msg, n, "Container.Storage.Path must be a volume GUID path \\\\?\\Volume{GUID}\\ with its "
                              "trailing backslash"), 0;
    if (!layers || layers->t != J_ARR || layers->len == 0) return snprintf(msg, n, "Container.Storage.Layers is empty"), 0;
    return 1;
  }
  const char *type = json_str(json_get(doc, "SystemType"));
  if (!type || strcasecmp(type, "Container") != 0) return snprintf(msg, n, "SystemType must be Container"), 0;
  if (json_str(json_get(doc, "ContainerType"))) return 1; /* LCOW */
  const jval *layers = json_get(doc, "Layers");
  if (!layers || layers->t != J_ARR || layers->len == 0)
    return snprintf(msg, n, "Layers is empty: a Windows container needs its read-only layers"), 0;
  const char *volume = json_str(json_get(doc, "VolumePath"));
  if (json_truthy(json_get(doc, "HvPartition"))) {
    const char *image = json_str(json_get(json_get(doc, "HvRuntime"), "ImagePath"));
    if (!image || !*image) return snprintf(msg, n, "a Hyper-V container needs HvRuntime.ImagePath"), 0;
    if (volume) return snprintf(msg, n, "a Hyper-V container has no VolumePath"), 0;
    return 1;
  }
  if (!volume_path(volume, 0))
    return snprintf(msg, n, "VolumePath must be a volume GUID path \\\\?\\Volume{GUID} without a trailing "
                            "backslash"), 0;
  return 1;
}

/* A v2 container's registry values: the hive and the value type are enums (schema2/registry_hive.go,
 * registry_value_type.go), the key and value named. */
static int check_registry(const jval *doc, int major, char *msg, size_t n) {
  static const char *const hives[] = {"System", "Software", "Security", "Sam"};
  static const char *const types[] = {"None",   "String", "ExpandedString", "MultiString",
                                      "Binary", "DWord",  "QWord",          "CustomType"};
  const jval *values = major >= 2 ? json_get(json_get(json_get(doc, "Container"), "RegistryChanges"), "AddValues") : NULL;
  for (size_t i = 0; values && values->t == J_ARR && i < values->len; i++) {
    const jval *v = values->items[i];
    const char *hive = json_str(json_get(json_get(v, "Key"), "Hive")), *key = json_str(json_get(json_get(v, "Key"), "Name"));
    const char *name = json_str(json_get(v, "Name")), *type = json_str(json_get(v, "Type"));
    int hive_ok = 0, type_ok = 0;
    for (size_t k = 0; hive && k < sizeof hives / sizeof *hives; k++) hive_ok |= strcmp(hive, hives[k]) == 0;
    for (size_t k = 0; type && k < sizeof types / sizeof *types; k++) type_ok |= strcmp(type, types[k]) == 0;
    if (!hive_ok || !key || !*key || !name || !*name || !type_ok)
      return snprintf(msg, n, "Container.RegistryChanges.AddValues[%zu] needs Key{Hive (System, Software, Security, "
                              "Sam), Name}, Name and Type (String, DWord, ...)", i), 0;
  }
  return 1;
}

/* Processor limits as HCS applies them (E_INVALIDARG, "The parameter is incorrect", when it cannot):
 *   - weight and maximum run from 1 to 10000, 0 meaning none (hcsshim internal/hcs/schema1/schema1.go
 *     ContainerConfig.ProcessorWeight/ProcessorMaximum: "Range is from 1 to 10000");
 *   - a count above the host's processors is refused (hcsshim internal/hcsoci/hcsdoc_wcow.go NormalizeProcessorCount
 *     and moby local_windows.go extractResourcesFromSpec lower it before HCS sees it);
 *   - a process-isolated container's job object takes one of count, weight and maximum (OCI config-windows.md
 *     "mutually exclusive"; hcsshim ConvertCPULimits refuses more; moby verifyPlatformContainerResources keeps one).
 *     A Hyper-V partition takes a count with a maximum (moby daemon/oci_windows.go sends both).
 * The refusals are inferred from the references, which never send these shapes; HCS's exact HRESULT is unverified. */
static int check_processors(const jval *doc, int major, char *msg, size_t n) {
  const jval *count, *weight, *maximum;
  int hyperv;
  if (major >= 2) {
    const jval *proc = json_get(json_get(doc, "Container"), "Processor");
    if (!is_obj(proc)) return 1;
    count = json_get(proc, "Count");
    weight = json_get(proc, "Weight");
    maximum = json_get(proc, "Maximum");
    hyperv = 0;
  } else {
    count = json_get(doc, "ProcessorCount");
    weight = json_get(doc, "ProcessorWeight");
    maximum = json_get(doc, "ProcessorMaximum");
    hyperv = json_truthy(json_get(doc, "HvPartition"));
  }
  long long c = 0, w = 0, m = 0;
  json_int(count, &c);
  json_int(weight, &w);
  json_int(maximum, &m);
  if (w < 0 || w > 10000) return snprintf(msg, n, "processor weight %lld is outside 1-10000", w), 0;
  if (m < 0 || m > 10000) return snprintf(msg, n, "processor maximum %lld is outside 1-10000", m), 0;
  cpu_set_t set;
  long host = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
  if (c < 0 || (host > 0 && c > host))
    return snprintf(msg, n, "processor count %lld is more than the host's %ld processors", c, host), 0;
  if (!hyperv && (c != 0) + (w != 0) + (m != 0) > 1)
    return snprintf(msg, n, "a process-isolated container takes one of processor count, weight and maximum"), 0;
  return 1;
}

/* ---- systems ---- */

static fsystem *find_system(const char *id) {
  for (fsystem *s = g_systems; s; s = s->next)
    if (strcmp(s->id, id) == 0) return s;
  return NULL;
}

static void system_unlist(fsystem *s) {
  if (!s->listed) return;
  for (fsystem **pp = &g_systems; *pp; pp = &(*pp)->next) {
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  }
  s->listed = 0;
  s->next = NULL;
  system_unref(s);
}

/* A stopped system disappears when its last handle closes. */
static void system_maybe_drop(fsystem *s) {
  if (s->state == ST_STOPPED && s->nhandles == 0) system_unlist(s);
}

static void process_untrack(fprocess *p) {
  if (!p->tracked) return;
  for (fprocess **pp = &p->sys->procs; *pp; pp = &(*pp)->next) {
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  }
  p->tracked = 0;
  p->next = NULL;
  process_unref(p);
}

static int live_processes(fsystem *s) {
  int n = 0;
  for (fprocess *p = s->procs; p; p = p->next)
    if (!p->exited) n++;
  return n;
}

static void system_finish_stop(fsystem *s) {
  s->state = ST_STOPPED;
  post_system_exited(s);
  /* Exited processes without handles are of no use any more. */
  fprocess *p = s->procs;
  while (p) {
    fprocess *next = p->next;
    if (p->exited && p->nhandles == 0) process_untrack(p);
    p = next;
  }
  system_maybe_drop(s);
}

void system_on_process_exit(fprocess *p) {
  fsystem *s = p->sys;
  system_ref(s);
  if (p->nhandles == 0) process_untrack(p);
  if (s->state == ST_STOPPING && live_processes(s) == 0) system_finish_stop(s);
  system_unref(s);
}

static void escalate(void *arg) {
  fsystem *s = arg;
  if (s->state == ST_STOPPING) system_signal_all(s, SIGKILL);
  system_unref(s);
}

static void system_begin_stop(fsystem *s, int sig, const char *exit_type, int32_t status) {
  int was_paused = s->state == ST_PAUSED;
  s->state = ST_STOPPING;
  s->exit_type = exit_type;
  s->exit_status = status;
  system_signal_all(s, sig);
  if (was_paused) system_signal_all(s, SIGCONT);
  if (live_processes(s) == 0) {
    system_finish_stop(s);
  } else if (sig != SIGKILL && g_opt_shutdown_timeout_ms >= 0) {
    system_ref(s);
    if (schedule(g_opt_shutdown_timeout_ms, escalate, s) != 0) system_unref(s);
  }
}

static const char *state_name(int st) {
  switch (st) {
    case ST_CREATED: return "Created";
    case ST_RUNNING:
    case ST_STOPPING: return "Running";
    case ST_PAUSED: return "Paused";
    default: return "Stopped";
  }
}

static void props_json(sbuf *b, fsystem *s, int plist, int stats) {
  sb_puts(b, "{\"Id\":");
  sb_jstr(b, s->id);
  sb_puts(b, ",\"Name\":");
  sb_jstr(b, s->name);
  sb_puts(b, ",\"SystemType\":");
  sb_jstr(b, s->system_type);
  sb_puts(b, ",\"RuntimeOsType\":");
  sb_jstr(b, s->runtime_os);
  sb_puts(b, ",\"Owner\":");
  sb_jstr(b, s->owner);
  sb_puts(b, ",\"State\":");
  sb_jstr(b, state_name(s->state));
  sb_printf(b, ",\"Stopped\":%s", s->state == ST_STOPPED ? "true" : "false");
  if (s->state == ST_STOPPED && s->exit_type) {
    sb_puts(b, ",\"ExitType\":");
    sb_jstr(b, s->exit_type);
  }
  sb_printf(b, ",\"TerminateOnLastHandleClosed\":%s", s->terminate_on_close ? "true" : "false");
  if (plist) {
    sb_puts(b, ",\"ProcessList\":[");
    int first = 1;
    for (fprocess *p = s->procs; p; p = p->next) {
      if (p->exited) continue;
      procstat ps;
      if (!procstat_read(p->pid, &ps)) continue;
      sb_printf(b, "%s{\"ProcessId\":%u,\"ImageName\":", first ? "" : ",", (unsigned)p->pid);
      sb_jstr(b, p->image ? p->image : ps.comm);
      sb_puts(b, ",\"CreateTimestamp\":");
      fmt_time(b, &p->started_at);
      sb_printf(b,
                ",\"UserTime100ns\":%llu,\"KernelTime100ns\":%llu,\"MemoryCommitBytes\":%llu,"
                "\"MemoryWorkingSetPrivateBytes\":%llu,\"MemoryWorkingSetSharedBytes\":%llu}",
                (unsigned long long)ps.user100ns, (unsigned long long)ps.kernel100ns,
                (unsigned long long)ps.rss_bytes,
                (unsigned long long)(ps.rss_bytes > ps.shared_bytes ? ps.rss_bytes - ps.shared_bytes : 0),
                (unsigned long long)ps.shared_bytes);
      first = 0;
    }
    sb_puts(b, "]");
  }
  if (stats) {
    uint64_t user = s->dead_user100ns, kernel = s->dead_kernel100ns, commit = 0, priv = 0;
    uint64_t rb = 0, wb = 0, rc = 0, wc = 0;
    for (fprocess *p = s->procs; p; p = p->next) {
      procstat ps;
      if (p->exited || !procstat_read(p->pid, &ps)) continue;
      user += ps.user100ns;
      kernel += ps.kernel100ns;
      commit += ps.rss_bytes;
      priv += ps.rss_bytes > ps.shared_bytes ? ps.rss_bytes - ps.shared_bytes : 0;
      rb += ps.read_bytes, wb += ps.write_bytes, rc += ps.read_count, wc += ps.write_count;
    }
    if (commit > s->peak_commit) s->peak_commit = commit;
    struct timespec now, mono;
    clock_gettime(CLOCK_REALTIME, &now);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    const struct timespec *start = s->started_at.tv_sec ? &s->started_at : &s->created_at;
    int64_t up100 = ((int64_t)now.tv_sec - start->tv_sec) * 10000000LL + (now.tv_nsec - start->tv_nsec) / 100;
    if (up100 < 0) up100 = 0;
    sb_puts(b, ",\"Statistics\":{\"Timestamp\":");
    fmt_time(b, &now);
    sb_puts(b, ",\"ContainerStartTime\":");
    fmt_time(b, start);
    sb_printf(b,
              ",\"Uptime100ns\":%lld,\"Processor\":{\"TotalRuntime100ns\":%llu,\"RuntimeUser100ns\":%llu,"
              "\"RuntimeKernel100ns\":%llu},\"Memory\":{\"MemoryUsageCommitBytes\":%llu,"
              "\"MemoryUsageCommitPeakBytes\":%llu,\"MemoryUsagePrivateWorkingSetBytes\":%llu},"
              "\"Storage\":{\"ReadCountNormalized\":%llu,\"ReadSizeBytes\":%llu,\"WriteCountNormalized\":%llu,"
              "\"WriteSizeBytes\":%llu},\"Network\":[]}",
              (long long)up100, (unsigned long long)(user + kernel), (unsigned long long)user,
              (unsigned long long)kernel, (unsigned long long)commit, (unsigned long long)s->peak_commit,
              (unsigned long long)priv, (unsigned long long)rc, (unsigned long long)rb, (unsigned long long)wc,
              (unsigned long long)wb);
  }
  sb_puts(b, "}");
}

static fhandle *sys_handle(HCS_SYSTEM h) { return handle_lookup((uintptr_t)h, K_SYSTEM); }
static fhandle *proc_handle(HCS_PROCESS h) { return handle_lookup((uintptr_t)h, K_PROCESS); }

/* Ends an asynchronous export: pending + a *Completed notification later, or S_OK in SyncCompletion mode. */
static int32_t complete_async(fhandle *h, uint32_t type) {
  if (g_opt_sync_completion) return S_OK;
  schedule_completion(h->value, type, S_OK, NULL);
  return VMC_PENDING;
}

static int32_t inject_async(inj *i, fhandle *h, uint32_t type, uint16_t **result, const char *name) {
  if (!i->async) return inj_fail(i, result, name);
  char *data = i->doc ? u16_to_utf8(i->doc) : NULL;
  schedule_completion(h->value, type, i->hr, data);
  free(data);
  inj_free(i);
  return VMC_PENDING;
}

/* HcsModifyComputeSystem. A v2 container takes hcsschema.ModifySettingRequest (schema2/modify_setting_request.go);
 * the updates hcsshim sends to a running silo (cmd/containerd-shim-runhcs-v1/task_hcs.go updateWCOWResources,
 * internal/hcs/resourcepaths/silo.go) are checked: "Container/Memory/SizeInMB" takes a size, "Container/Processor"
 * a Processor with one of Count/Maximum/Weight (isValidWindowsCPUResources), both with RequestType "Update".
 * Other resource paths are accepted unchecked; a v1 system takes no ResourcePath (v1 cannot change limits). */
static int32_t check_modify(const jval *doc, const fsystem *s, char *msg, size_t n) {
  const jval *path = json_get(doc, "ResourcePath");
  if (s->schema_major < 2) {
    if (path) return snprintf(msg, n, "a schema 1 system takes no ResourcePath"), VMC_INVALID_JSON;
    return S_OK;
  }
  static const char *const keys[] = {"ResourcePath", "RequestType", "Settings", "GuestRequest"};
  for (size_t i = 0; i < doc->len; i++) {
    int known = 0;
    for (size_t k = 0; k < 4; k++) known |= strcasecmp(doc->keys[i], keys[k]) == 0;
    if (!known) return snprintf(msg, n, "unknown field %s in ModifySettingRequest", doc->keys[i]), VMC_INVALID_JSON;
  }
  const char *p = json_str(path), *type = json_str(json_get(doc, "RequestType"));
  const jval *settings = json_get(doc, "Settings");
  int memory = p && strcmp(p, "Container/Memory/SizeInMB") == 0, processor = p && strcmp(p, "Container/Processor") == 0;
  if (!memory && !processor) return S_OK;
  if (!type || strcmp(type, "Update") != 0) return snprintf(msg, n, "%s takes RequestType Update", p), E_INVALIDARG;
  long long v;
  if (memory) {
    if (!json_int(settings, &v) || v <= 0) return snprintf(msg, n, "%s takes a size in MB", p), E_INVALIDARG;
    return S_OK;
  }
  if (!is_obj(settings)) return snprintf(msg, n, "%s takes a Processor", p), E_INVALIDARG;
  int set = 0;
  for (size_t i = 0; i < settings->len; i++) {
    const char *k = settings->keys[i];
    if (strcasecmp(k, "Count") && strcasecmp(k, "Maximum") && strcasecmp(k, "Weight"))
      return snprintf(msg, n, "unknown field %s in Processor", k), VMC_INVALID_JSON;
    if (!json_int(settings->items[i], &v) || v < 0 || v > (strcasecmp(k, "Count") ? 10000 : 1 << 20))
      return snprintf(msg, n, "Processor.%s is out of range", k), E_INVALIDARG;
    set += v != 0;
  }
  if (set != 1) return snprintf(msg, n, "a Processor update takes one of Count, Maximum and Weight"), E_INVALIDARG;
  return S_OK;
}

/* ---- exports: compute systems ---- */

API int32_t HcsEnumerateComputeSystems(const uint16_t *query, uint16_t **computeSystems, uint16_t **result) {
  OUTNULL(computeSystems);
  OUTNULL(result);
  LOCK();
  INJECT("HcsEnumerateComputeSystems", result);
  jval *q;
  int32_t hr = parse_doc(query, 1, &q, result, "query");
  if (hr < 0) {
    UNLOCK();
    return hr;
  }
  char smsg[256];
  if (q && !schema_check(q, SCHEMA_SYSTEM_QUERY, smsg, sizeof smsg)) {
    json_free(q);
    hr = fail(result, VMC_INVALID_JSON, "query: %s", smsg);
    UNLOCK();
    return hr;
  }
  static const char *const keys[] = {"Ids", "Names", "Types", "Owners"};
  const jval *filters[4] = {0};
  for (int k = 0; k < 4; k++) {
    const jval *f = json_get(q, keys[k]);
    if (f && f->t == J_NULL) f = NULL;
    if (f && f->t != J_ARR) goto badq;
    for (size_t i = 0; f && i < f->len; i++)
      if (f->items[i]->t != J_STR) goto badq;
    filters[k] = f;
  }
#ifdef FAKE_RS1
  /* RS1/RS2's enumeration race: while a silo is going away HCS fails the enumeration with ERROR_ACCESS_DENIED
   * (hcsshim internal/hcs/errors.go ErrVmcomputeOperationAccessIsDenied: "encountered when enumerating compute
   * systems in RS1/RS2 builds when the underlying silo might be in the process of terminating. HCS was fixed in
   * RS3"; moby daemon/graphdriver/windows/windows.go retries it, and INVALID_STATE, before RS3). */
  for (fsystem *s = g_systems; s; s = s->next) {
    if (s->state == ST_STOPPING) {
      json_free(q);
      hr = fail(result, HR_ACCESS_DENIED, "compute system '%s' is terminating", s->id);
      UNLOCK();
      return hr;
    }
  }
#endif
  sbuf b = {0};
  sb_puts(&b, "[");
  int first = 1;
  for (fsystem *s = g_systems; s; s = s->next) {
    const char *vals[4] = {s->id, s->name, s->system_type, s->owner};
    int ok = 1;
    for (int k = 0; k < 4 && ok; k++) {
      if (!filters[k] || filters[k]->len == 0) continue;
      int any = 0;
      for (size_t i = 0; i < filters[k]->len; i++)
        if ((k == 2 ? strcasecmp : strcmp)(filters[k]->items[i]->s, vals[k]) == 0) any = 1;
      ok = any;
    }
    if (!ok) continue;
    if (!first) sb_puts(&b, ",");
    props_json(&b, s, 0, 0);
    first = 0;
  }
  sb_puts(&b, "]");
  json_free(q);
  hr = b.oom ? E_OUTOFMEMORY : out_str(computeSystems, b.p);
  sb_free(&b);
  UNLOCK();
  return hr < 0 ? fail(result, hr, "out of memory") : S_OK;
badq:
  json_free(q);
  hr = fail(result, VMC_INVALID_JSON, "query: Ids, Names, Types and Owners must be arrays of strings");
  UNLOCK();
  return hr;
}

API int32_t HcsCreateComputeSystem(const uint16_t *id, const uint16_t *configuration, void *identity,
                                   HCS_SYSTEM *computeSystem, uint16_t **result) {
  (void)identity; /* hcsshim passes 0 */
  OUTNULL(computeSystem);
  OUTNULL(result);
  LOCK();
  /* "BlockCreateComputeSystem": a slow create (a utility VM booting), parked before anything happens. */
  if (g_opt_block_create) {
    g_blocked_calls++;
    while (g_opt_block_create) pthread_cond_wait(&g_block_cv, &g_mu);
    g_blocked_calls--;
  }
  free(g_last_create_doc);
  g_last_create_doc = configuration ? u16_dup_malloc(configuration) : NULL;
  inj *in = take_injection("HcsCreateComputeSystem");
  if (in && !in->async) {
    int32_t hr = inj_fail(in, result, "HcsCreateComputeSystem");
    UNLOCK();
    return hr;
  }
  int32_t hr;
  char msg[256];
  char *id8 = u16_to_utf8(id);
  jval *doc = NULL;
  fsystem *s = NULL;
  if (!computeSystem || !id8 || !*id8) {
    hr = fail(result, E_INVALIDARG, "HcsCreateComputeSystem needs an id and an out handle");
    goto out;
  }
  if ((hr = parse_doc(configuration, 0, &doc, result, "configuration")) < 0) goto out;
  if (find_system(id8)) {
    hr = fail(result, VMC_ALREADY_EXISTS, "compute system '%s' already exists", id8);
    goto out;
  }
  s = calloc(1, sizeof *s);
  if (!s) {
    hr = fail(result, E_OUTOFMEMORY, "out of memory");
    goto out;
  }
  s->refs = 1;
  s->id = id8;
  id8 = NULL;
  if (!derive_system(doc, s->id, s, msg, sizeof msg)) {
    hr = fail(result, VMC_INVALID_JSON, "configuration: %s", msg);
    system_unref(s);
    goto out;
  }
  if (!check_storage(doc, s->schema_major, msg, sizeof msg) || !check_processors(doc, s->schema_major, msg, sizeof msg) ||
      !check_registry(doc, s->schema_major, msg, sizeof msg)) {
    hr = fail(result, E_INVALIDARG, "configuration: %s", msg);
    system_unref(s);
    goto out;
  }
  s->state = ST_CREATED;
  clock_gettime(CLOCK_REALTIME, &s->created_at);
  s->listed = 1;
  s->next = g_systems;
  g_systems = s;
  fhandle *h = fhandle_new_system(s);
  if (!h) {
    system_unlist(s);
    hr = fail(result, E_OUTOFMEMORY, "out of memory");
    goto out;
  }
  *computeSystem = (HCS_SYSTEM)h->value;
  if (in) {
    /* Asynchronous failure: the system never comes up. */
    s->state = ST_STOPPED;
    s->exit_type = "UnexpectedExit";
    s->exit_status = in->hr;
    system_unlist(s);
    hr = inject_async(in, h, HcsNotificationSystemCreateCompleted, result, "HcsCreateComputeSystem");
    in = NULL;
  } else {
    hr = complete_async(h, HcsNotificationSystemCreateCompleted);
  }
out:
  if (in) { /* an asynchronous injection on a call that failed its checks still fails, synchronously */
    if (result) {
      CoTaskMemFree(*result);
      *result = NULL;
    }
    hr = inj_fail(in, result, "HcsCreateComputeSystem");
  }
  json_free(doc);
  free(id8);
  UNLOCK();
  return hr;
}

API int32_t HcsOpenComputeSystem(const uint16_t *id, HCS_SYSTEM *computeSystem, uint16_t **result) {
  OUTNULL(computeSystem);
  OUTNULL(result);
  LOCK();
  INJECT("HcsOpenComputeSystem", result);
  int32_t hr;
  char *id8 = u16_to_utf8(id);
  fsystem *s;
  if (!computeSystem || !id8) {
    hr = fail(result, E_INVALIDARG, "HcsOpenComputeSystem needs an id and an out handle");
  } else if (!(s = find_system(id8))) {
    hr = fail(result, VMC_SYSTEM_NOT_FOUND, "compute system '%s' does not exist", id8);
  } else {
    fhandle *h = fhandle_new_system(s);
    if (!h) {
      hr = fail(result, E_OUTOFMEMORY, "out of memory");
    } else {
      *computeSystem = (HCS_SYSTEM)h->value;
      hr = S_OK;
    }
  }
  free(id8);
  UNLOCK();
  return hr;
}

API int32_t HcsCloseComputeSystem(HCS_SYSTEM computeSystem) {
  LOCK();
  INJECT("HcsCloseComputeSystem", NULL);
  fhandle *h = sys_handle(computeSystem);
  if (!h) {
    UNLOCK();
    return HR_INVALID_HANDLE;
  }
  fsystem *s = h->sys;
  system_ref(s);
  fhandle_close(h);
  if (s->nhandles == 0 && s->terminate_on_close && s->state != ST_STOPPED && s->state != ST_STOPPING)
    system_begin_stop(s, SIGKILL, "ForcedExit", S_OK);
  system_maybe_drop(s);
  system_unref(s);
  UNLOCK();
  return S_OK;
}

/* Shared prologue of the handle + options exports. `completion` is the *Completed notification of an
 * asynchronous export (0 for the others): an injection made with InjectAsync=1 is then delivered as a pending
 * call plus a failing completion; every other injection fails the call synchronously, before any check. */
#define SYS_PROLOGUE(name, completion)                                              \
  OUTNULL(result);                                                                  \
  LOCK();                                                                           \
  inj *in = take_injection(name);                                                   \
  int32_t hr;                                                                       \
  jval *opts = NULL;                                                                \
  fhandle *h = sys_handle(computeSystem);                                           \
  if (in) {                                                                         \
    hr = (completion) && in->async && h ? inject_async(in, h, (completion), result, name) \
                                        : inj_fail(in, result, name);              \
    in = NULL;                                                                      \
    goto out;                                                                       \
  }                                                                                 \
  if (!h) {                                                                         \
    hr = fail(result, HR_INVALID_HANDLE, "%s: invalid compute system handle", name); \
    goto out;                                                                       \
  }                                                                                 \
  if ((hr = parse_doc(options, 1, &opts, result, "options")) < 0) goto out;         \
  fsystem *s = h->sys;

#define SYS_EPILOGUE() \
  out:                 \
  if (in) inj_free(in); \
  json_free(opts);     \
  UNLOCK();            \
  return hr;

API int32_t HcsStartComputeSystem(HCS_SYSTEM computeSystem, const uint16_t *options, uint16_t **result) {
  SYS_PROLOGUE("HcsStartComputeSystem", HcsNotificationSystemStartCompleted)
  if (s->state != ST_CREATED) {
    hr = fail(result, VMC_INVALID_STATE, "cannot start compute system '%s' in state %s", s->id, state_name(s->state));
    goto out;
  }
  s->state = ST_RUNNING;
  clock_gettime(CLOCK_REALTIME, &s->started_at);
  hr = complete_async(h, HcsNotificationSystemStartCompleted);
  SYS_EPILOGUE()
}

static int32_t stop_system(HCS_SYSTEM computeSystem, const uint16_t *options, uint16_t **result, int force,
                           const char *name) {
  SYS_PROLOGUE(name, 0) /* no *Completed notification: injections are synchronous */
  if (s->state == ST_STOPPED) {
    hr = fail(result, VMC_ALREADY_STOPPED, "compute system '%s' is already stopped", s->id);
    goto out;
  }
  if (s->state == ST_STOPPING) {
    if (force) {
      s->exit_type = "ForcedExit";
      system_signal_all(s, SIGKILL);
    }
  } else {
    system_begin_stop(s, force ? SIGKILL : SIGTERM, force ? "ForcedExit" : "GracefulExit", S_OK);
  }
  hr = g_opt_sync_completion ? S_OK : VMC_PENDING;
  SYS_EPILOGUE()
}

API int32_t HcsShutdownComputeSystem(HCS_SYSTEM computeSystem, const uint16_t *options, uint16_t **result) {
  return stop_system(computeSystem, options, result, 0, "HcsShutdownComputeSystem");
}

API int32_t HcsTerminateComputeSystem(HCS_SYSTEM computeSystem, const uint16_t *options, uint16_t **result) {
  return stop_system(computeSystem, options, result, 1, "HcsTerminateComputeSystem");
}

typedef struct {
  uintptr_t handle;
  fsystem *s;
  int tries;
} pause_wait;

static int all_stopped(fsystem *s) {
  for (fprocess *p = s->procs; p; p = p->next) {
    procstat ps;
    if (p->exited || !procstat_read(p->pid, &ps)) continue;
    if (ps.state != 'T' && ps.state != 't' && ps.state != 'Z' && ps.state != 'X') return 0;
  }
  return 1;
}

static void pause_check(void *arg) {
  pause_wait *w = arg;
  if (w->s->state == ST_PAUSED && !all_stopped(w->s) && ++w->tries < 400 && schedule(5, pause_check, w) == 0) return;
  fhandle *h = handle_lookup(w->handle, K_SYSTEM);
  if (h) post_to_handle(h, HcsNotificationSystemPauseCompleted, S_OK, NULL);
  system_unref(w->s);
  free(w);
}

API int32_t HcsPauseComputeSystem(HCS_SYSTEM computeSystem, const uint16_t *options, uint16_t **result) {
  SYS_PROLOGUE("HcsPauseComputeSystem", HcsNotificationSystemPauseCompleted)
  if (s->state != ST_RUNNING) {
    hr = fail(result, VMC_INVALID_STATE, "cannot pause compute system '%s' in state %s", s->id, state_name(s->state));
    goto out;
  }
  s->state = ST_PAUSED;
  system_signal_all(s, SIGSTOP);
  if (g_opt_sync_completion) {
    hr = S_OK;
  } else {
    /* PauseCompleted once every process is really stopped (SIGSTOP is asynchronous). */
    pause_wait *w = calloc(1, sizeof *w);
    if (!w) {
      hr = complete_async(h, HcsNotificationSystemPauseCompleted);
      goto out;
    }
    w->handle = h->value;
    w->s = s;
    system_ref(s);
    if (schedule(g_opt_async_delay_ms, pause_check, w) != 0) {
      system_unref(s);
      free(w);
      hr = complete_async(h, HcsNotificationSystemPauseCompleted);
      goto out;
    }
    hr = VMC_PENDING;
  }
  SYS_EPILOGUE()
}

API int32_t HcsResumeComputeSystem(HCS_SYSTEM computeSystem, const uint16_t *options, uint16_t **result) {
  SYS_PROLOGUE("HcsResumeComputeSystem", HcsNotificationSystemResumeCompleted)
  if (s->state != ST_PAUSED) {
    hr = fail(result, VMC_INVALID_STATE, "cannot resume compute system '%s' in state %s", s->id, state_name(s->state));
    goto out;
  }
  s->state = ST_RUNNING;
  system_signal_all(s, SIGCONT);
  hr = complete_async(h, HcsNotificationSystemResumeCompleted);
  SYS_EPILOGUE()
}

#ifndef FAKE_RS1
API
#endif
int32_t HcsSaveComputeSystem(HCS_SYSTEM computeSystem, const uint16_t *options, uint16_t **result) {
  SYS_PROLOGUE("HcsSaveComputeSystem", HcsNotificationSystemSaveCompleted)
  if (s->state == ST_STOPPED || s->state == ST_STOPPING) {
    hr = fail(result, VMC_INVALID_STATE, "cannot save compute system '%s' in state %s", s->id, state_name(s->state));
    goto out;
  }
  hr = complete_async(h, HcsNotificationSystemSaveCompleted);
  SYS_EPILOGUE()
}

API int32_t HcsGetComputeSystemProperties(HCS_SYSTEM computeSystem, const uint16_t *propertyQuery,
                                          uint16_t **properties, uint16_t **result) {
  OUTNULL(properties);
  const uint16_t *options = propertyQuery;
  SYS_PROLOGUE("HcsGetComputeSystemProperties", 0)
  int plist = 0, stats = 0;
  char smsg[256];
  if (opts && !schema_check(opts, SCHEMA_PROPERTY_QUERY, smsg, sizeof smsg)) {
    hr = fail(result, VMC_INVALID_JSON, "propertyQuery: %s", smsg);
    goto out;
  }
  const jval *types = json_get(opts, "PropertyTypes");
  if (types && types->t != J_NULL) {
    if (types->t != J_ARR) {
      hr = fail(result, VMC_INVALID_JSON, "PropertyTypes must be an array of strings");
      goto out;
    }
    for (size_t i = 0; i < types->len; i++) {
      const char *t = json_str(types->items[i]);
      if (!t) {
        hr = fail(result, VMC_INVALID_JSON, "PropertyTypes must be an array of strings");
        goto out;
      }
      if (strcasecmp(t, "ProcessList") == 0) plist = 1;
      else if (strcasecmp(t, "Statistics") == 0) stats = 1;
      /* other property types (Memory, GuestConnection, MappedVirtualDisk, …) are accepted and not reported */
    }
  }
  sbuf b = {0};
  props_json(&b, s, plist, stats);
  hr = b.oom ? E_OUTOFMEMORY : out_str(properties, b.p);
  sb_free(&b);
  if (hr < 0) hr = fail(result, hr, "out of memory");
  SYS_EPILOGUE()
}

API int32_t HcsModifyComputeSystem(HCS_SYSTEM computeSystem, const uint16_t *configuration, uint16_t **result) {
  const uint16_t *options = configuration;
  SYS_PROLOGUE("HcsModifyComputeSystem", 0)
  if (!opts) {
    hr = fail(result, VMC_INVALID_JSON, "configuration: empty document");
    goto out;
  }
  if (s->state == ST_STOPPED) {
    hr = fail(result, VMC_INVALID_STATE, "compute system '%s' is stopped", s->id);
    goto out;
  }
  char mmsg[256];
  int32_t mhr = check_modify(opts, s, mmsg, sizeof mmsg);
  if (mhr < 0) {
    hr = fail(result, mhr, "configuration: %s", mmsg);
    goto out;
  }
  free(g_last_modify_doc);
  g_last_modify_doc = u16_dup_malloc(configuration);
  hr = S_OK; /* accepted, not applied */
  SYS_EPILOGUE()
}

API int32_t HcsModifyServiceSettings(const uint16_t *settings, uint16_t **result) {
  OUTNULL(result);
  LOCK();
  INJECT("HcsModifyServiceSettings", result);
  jval *doc;
  int32_t hr = parse_doc(settings, 0, &doc, result, "settings");
  json_free(doc);
  UNLOCK();
  return hr;
}

API int32_t HcsGetServiceProperties(const uint16_t *propertyQuery, uint16_t **properties, uint16_t **result) {
  OUTNULL(properties);
  OUTNULL(result);
  LOCK();
  INJECT("HcsGetServiceProperties", result);
  jval *doc;
  int32_t hr = parse_doc(propertyQuery, 1, &doc, result, "query");
  json_free(doc);
  if (hr >= 0) {
    hr = out_str(properties,
                 "{\"Properties\":[{\"SupportedSchemaVersions\":[{\"Major\":1,\"Minor\":0},{\"Major\":2,"
                 "\"Minor\":1}]}]}");
    if (hr < 0) hr = fail(result, hr, "out of memory");
  }
  UNLOCK();
  return hr;
}

static int32_t register_cb(uintptr_t handle, int kind, HCS_NOTIFICATION_CALLBACK cb, void *ctx,
                           HCS_CALLBACK *callbackHandle, const char *name) {
  if (callbackHandle) *callbackHandle = NULL;
  LOCK();
  INJECT(name, NULL);
  fhandle *h = handle_lookup(handle, kind);
  int32_t hr;
  uintptr_t v = 0;
  if (!h) hr = HR_INVALID_HANDLE;
  else if (!cb || !callbackHandle) hr = E_INVALIDARG;
  else hr = reg_register(h, cb, ctx, &v);
  if (hr >= 0) *callbackHandle = (HCS_CALLBACK)v;
  UNLOCK();
  return hr;
}

API int32_t HcsRegisterComputeSystemCallback(HCS_SYSTEM computeSystem, HCS_NOTIFICATION_CALLBACK callback,
                                             void *context, HCS_CALLBACK *callbackHandle) {
  return register_cb((uintptr_t)computeSystem, K_SYSTEM, callback, context, callbackHandle,
                     "HcsRegisterComputeSystemCallback");
}

API int32_t HcsRegisterProcessCallback(HCS_PROCESS process, HCS_NOTIFICATION_CALLBACK callback, void *context,
                                       HCS_CALLBACK *callbackHandle) {
  return register_cb((uintptr_t)process, K_PROCESS, callback, context, callbackHandle, "HcsRegisterProcessCallback");
}

static int32_t unregister_cb(HCS_CALLBACK cb, int kind, const char *name) {
  char msg[256];
  LOCK();
  INJECT(name, NULL);
  int32_t hr = reg_unregister((uintptr_t)cb, kind, msg, sizeof msg);
  UNLOCK();
  return hr;
}

API int32_t HcsUnregisterComputeSystemCallback(HCS_CALLBACK callbackHandle) {
  return unregister_cb(callbackHandle, K_SYSTEM, "HcsUnregisterComputeSystemCallback");
}

API int32_t HcsUnregisterProcessCallback(HCS_CALLBACK callbackHandle) {
  return unregister_cb(callbackHandle, K_PROCESS, "HcsUnregisterProcessCallback");
}

/* ---- exports: processes ---- */

static int is_windows_path(const char *p) {
  return (((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z') && p[1] == ':') || (strchr(p, '\\') && !strchr(p, '/'));
}

static char **build_env(const jval *env) {
  char **envp = calloc(env->len + 1, sizeof *envp);
  if (!envp) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < env->len; i++) {
    const char *v = env->items[i]->s;
    char *kv = malloc(strlen(env->keys[i]) + strlen(v) + 2);
    if (!kv) {
      free_strv(envp);
      return NULL;
    }
    sprintf(kv, "%s=%s", env->keys[i], v);
    envp[k++] = kv;
  }
  return envp;
}

static int has_nul(const jval *v) { return v && v->t == J_STR && strlen(v->s) != v->slen; }

API int32_t HcsCreateProcess(HCS_SYSTEM computeSystem, const uint16_t *processParameters,
                             HCS_PROCESS_INFORMATION *processInformation, HCS_PROCESS *process, uint16_t **result) {
  OUTNULL(process);
  OUTNULL(result);
  if (processInformation) memset(processInformation, 0, sizeof *processInformation);
  LOCK();
  /* "BlockCreateProcess": a slow process start (a utility VM's guest), parked before anything happens. */
  if (g_opt_block_create_process) {
    g_blocked_calls++;
    while (g_opt_block_create_process) pthread_cond_wait(&g_block_cv, &g_mu);
    g_blocked_calls--;
  }
  INJECT("HcsCreateProcess", result);
  int32_t hr;
  jval *doc = NULL;
  spawn_req rq;
  memset(&rq, 0, sizeof rq);
  char msg[512];
  fhandle *h = sys_handle(computeSystem);
  if (!h) {
    hr = fail(result, HR_INVALID_HANDLE, "HcsCreateProcess: invalid compute system handle");
    goto out_locked;
  }
  if (!process) {
    hr = fail(result, E_INVALIDARG, "HcsCreateProcess needs an out process handle");
    goto out_locked;
  }
  if ((hr = parse_doc(processParameters, 0, &doc, result, "processParameters")) < 0) goto out_locked;
  fsystem *s = h->sys;
  if (s->state != ST_RUNNING) {
    hr = fail(result, VMC_INVALID_STATE, "compute system '%s' is not running (state %s)", s->id, state_name(s->state));
    goto out_locked;
  }
  /* The parameters are a v1 ProcessConfig or a v2 ProcessParameters, as the system's schema is. */
  if (!schema_check(doc, s->schema_major >= 2 ? SCHEMA_V2_PROCESS : SCHEMA_V1_PROCESS, msg, sizeof msg)) {
    hr = fail(result, VMC_INVALID_JSON, "processParameters: %s", msg);
    goto out_locked;
  }
  int lcow = strcmp(s->runtime_os, "Linux") == 0;
  const jval *cl = json_get(doc, "CommandLine"), *ca = json_get(doc, "CommandArgs");
  const jval *wd = json_get(doc, "WorkingDirectory"), *env = json_get(doc, "Environment");
  const jval *cin = json_get(doc, "CreateStdInPipe"), *cout = json_get(doc, "CreateStdOutPipe");
  const jval *cerr = json_get(doc, "CreateStdErrPipe"), *con = json_get(doc, "EmulateConsole");
  const jval *size = json_get(doc, "ConsoleSize");
  const jval *oci = json_get(doc, "OCISpecification");
  if (oci && oci->t == J_NULL) oci = NULL;
  if (has_nul(cl) || has_nul(wd)) {
    hr = fail(result, VMC_INVALID_JSON, "processParameters: a string contains NUL");
    goto out_locked;
  }
  if (!lcow && (oci || json_truthy(json_get(doc, "CreateInUtilityVm")))) {
    hr = fail(result, VMC_INVALID_JSON,
              "processParameters: OCISpecification/CreateInUtilityVm are for Linux containers (LCOW) only");
    goto out_locked;
  }
  if (lcow) {
    /* opengcs service/gcs/prot/protocol.go ProcessParameters: the first process of a container carries the whole
     * OCI spec (and the guest runs spec.process); every later one must leave OCISpecification out and give
     * CommandArgs/CommandLine, Environment and WorkingDirectory itself. */
    int init = s->processes_created == 0;
    if (init && !oci) {
      hr = fail(result, VMC_INVALID_JSON,
                "processParameters: the first process of a Linux container needs OCISpecification (the whole spec)");
      goto out_locked;
    }
    if (!init && oci) {
      hr = fail(result, VMC_INVALID_JSON,
                "processParameters: OCISpecification is only for the first process of a Linux container");
      goto out_locked;
    }
    if (init) {
      const jval *ver = json_get(oci, "ociVersion"), *op = json_get(oci, "process");
      if (!json_str(ver) || !is_obj(op) || json_get(oci, "args")) {
        hr = fail(result, VMC_INVALID_JSON,
                  "processParameters: OCISpecification must be a whole OCI spec (ociVersion, process, ...), "
                  "not an OCI process");
        goto out_locked;
      }
      /* The guest takes the init process from the spec alone. */
      ca = json_get(op, "args");
      cl = NULL;
      wd = json_get(op, "cwd");
      const jval *oci_env = json_get(op, "env");
      if ((ca && ca->t != J_ARR) || (oci_env && oci_env->t != J_NULL && oci_env->t != J_ARR) ||
          !is_str_or_absent(wd) || has_nul(wd)) {
        hr = fail(result, VMC_INVALID_JSON, "processParameters: OCISpecification.process has the wrong shape");
        goto out_locked;
      }
      size_t nenv = oci_env && oci_env->t == J_ARR ? oci_env->len : 0;
      rq.envp = calloc(nenv + 1, sizeof *rq.envp);
      for (size_t i = 0; rq.envp && i < nenv; i++) {
        if (oci_env->items[i]->t != J_STR || has_nul(oci_env->items[i])) {
          hr = fail(result, VMC_INVALID_JSON, "processParameters: OCISpecification.process.env must be strings");
          goto out_locked;
        }
        if (!(rq.envp[i] = strdup(oci_env->items[i]->s))) break;
      }
      if (!rq.envp) {
        hr = fail(result, E_OUTOFMEMORY, "out of memory");
        goto out_locked;
      }
      env = NULL;
    }
  }
  if (env && env->t != J_NULL) {
    for (size_t i = 0; i < env->len; i++) {
      if (has_nul(env->items[i])) {
        hr = fail(result, VMC_INVALID_JSON, "processParameters: Environment values must not contain NUL");
        goto out_locked;
      }
    }
    if (!(rq.envp = build_env(env))) {
      hr = fail(result, E_OUTOFMEMORY, "out of memory");
      goto out_locked;
    }
  }
  /* A Linux guest process gets exactly the environment it was given; a Windows one without Environment
   * inherits the container's defaults (here: the host's). */
  if (lcow && !rq.envp && !(rq.envp = calloc(1, sizeof *rq.envp))) {
    hr = fail(result, E_OUTOFMEMORY, "out of memory");
    goto out_locked;
  }
  if (size && size->t != J_NULL) {
    long long hgt, wid;
    json_int(size->items[0], &hgt); /* the schema check made it [Height, Width] of uint16 */
    json_int(size->items[1], &wid);
    rq.rows = (unsigned)hgt;
    rq.cols = (unsigned)wid;
  }
  if (json_str(cl) && *json_str(cl) && !(ca && ca->t == J_ARR && ca->len > 0 && lcow)) {
    if (cmdline_to_argv(json_str(cl), &rq.argv) < 0) {
      hr = fail(result, E_OUTOFMEMORY, "out of memory");
      goto out_locked;
    }
  } else if (ca && ca->t == J_ARR && ca->len > 0) {
    rq.argv = calloc(ca->len + 1, sizeof *rq.argv);
    for (size_t i = 0; rq.argv && i < ca->len; i++) {
      if (ca->items[i]->t != J_STR || has_nul(ca->items[i])) {
        hr = fail(result, VMC_INVALID_JSON, "processParameters: CommandArgs must be strings");
        goto out_locked;
      }
      rq.argv[i] = strdup(ca->items[i]->s);
    }
  } else {
    hr = fail(result, E_INVALIDARG, "processParameters: CommandLine is empty");
    goto out_locked;
  }
  if (!rq.argv || !rq.argv[0] || !rq.argv[0][0]) {
    hr = fail(result, E_INVALIDARG, "processParameters: no program in CommandLine");
    goto out_locked;
  }
  rq.want_in = json_truthy(cin);
  rq.want_out = json_truthy(cout);
  rq.want_err = json_truthy(cerr);
  rq.console = json_truthy(con);
  if (json_str(wd) && *json_str(wd) && !is_windows_path(json_str(wd))) rq.cwd = strdup(json_str(wd));
  rq.exe = resolve_exe(rq.argv[0], rq.envp);
  if (!rq.exe) {
    int e = errno;
    hr = fail(result, e == EACCES ? HR_ACCESS_DENIED : HR_FILE_NOT_FOUND, "%s: %s", rq.argv[0], strerror(e));
    goto out_locked;
  }
  uintptr_t sysv = h->value;
  UNLOCK();

  /* fork/exec without the lock */
  pid_t pid = 0;
  int fds[3];
  void *rl = NULL;
  hr = process_spawn(&rq, &pid, fds, &rl, msg, sizeof msg);

  LOCK();
  if (hr < 0) {
    hr = fail(result, hr, "%s", msg);
    goto out_locked;
  }
  h = sys_handle((HCS_SYSTEM)sysv);
  fprocess *p = NULL;
  if (!h || h->sys->state != ST_RUNNING || !(p = calloc(1, sizeof *p))) {
    hr = !h ? fail(result, HR_INVALID_HANDLE, "the compute system handle was closed during HcsCreateProcess")
         : !p ? fail(result, E_OUTOFMEMORY, "out of memory")
              : fail(result, VMC_INVALID_STATE, "the compute system stopped during HcsCreateProcess");
    goto kill_child;
  }
  s = h->sys;
  p->refs = 1; /* the system's process list */
  p->sys = s;
  system_ref(s);
  p->pid = pid;
  p->tracked = 1;
  p->master_fd = p->wake_fd = -1;
  p->console = rq.console;
  p->has_stdin = rq.want_in;
  const char *slash = strrchr(rq.exe, '/');
  p->image = strdup(slash ? slash + 1 : rq.exe);
  clock_gettime(CLOCK_REALTIME, &p->started_at);
  p->next = s->procs;
  s->procs = p;
  s->processes_created++;
  fhandle *ph = fhandle_new_process(p);
  if (!ph || process_start_threads(p, rl) != 0) {
    if (ph) fhandle_close(ph);
    process_untrack(p);
    p = NULL;
    hr = fail(result, E_OUTOFMEMORY, "cannot start the process' threads");
    goto kill_child;
  }
  /* The caller owns the pipe fds from here on; 0 means "not requested", so never hand out fds 0–2. */
  void *std[3];
  for (int i = 0; i < 3; i++) {
    if (fds[i] >= 0 && fds[i] < 3) {
      int nfd = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
      close(fds[i]);
      fds[i] = nfd;
    }
    std[i] = fds[i] >= 0 ? (void *)(intptr_t)fds[i] : NULL;
  }
  if (processInformation) {
    processInformation->ProcessId = (uint32_t)pid;
    processInformation->StdInput = std[0];
    processInformation->StdOutput = std[1];
    processInformation->StdError = std[2];
  } else {
    for (int i = 0; i < 3; i++)
      if (fds[i] >= 0) close(fds[i]);
  }
  *process = (HCS_PROCESS)ph->value;
  hr = S_OK;
  goto out_locked;

kill_child:
  kill(pid, SIGKILL);
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0) close(fds[i]);
  if (!p) process_discard_relay(rl);
  UNLOCK();
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
  LOCK();
out_locked:
  free_strv(rq.argv);
  free_strv(rq.envp);
  free(rq.exe);
  free(rq.cwd);
  json_free(doc);
  UNLOCK();
  return hr;
}

API int32_t HcsOpenProcess(HCS_SYSTEM computeSystem, uint32_t processId, HCS_PROCESS *process, uint16_t **result) {
  OUTNULL(process);
  OUTNULL(result);
  LOCK();
  INJECT("HcsOpenProcess", result);
  int32_t hr;
  fhandle *h = sys_handle(computeSystem);
  if (!h) {
    hr = fail(result, HR_INVALID_HANDLE, "HcsOpenProcess: invalid compute system handle");
  } else if (!process) {
    hr = fail(result, E_INVALIDARG, "HcsOpenProcess needs an out process handle");
  } else {
    fprocess *p = h->sys->procs;
    while (p && (uint32_t)p->pid != processId) p = p->next;
    fhandle *ph;
    if (!p) {
      hr = fail(result, HR_NOT_FOUND, "process %u not found in compute system '%s'", processId, h->sys->id);
    } else if (!(ph = fhandle_new_process(p))) {
      hr = fail(result, E_OUTOFMEMORY, "out of memory");
    } else {
      *process = (HCS_PROCESS)ph->value;
      hr = S_OK;
    }
  }
  UNLOCK();
  return hr;
}

API int32_t HcsCloseProcess(HCS_PROCESS process) {
  LOCK();
  INJECT("HcsCloseProcess", NULL);
  fhandle *h = proc_handle(process);
  if (!h) {
    UNLOCK();
    return HR_INVALID_HANDLE;
  }
  fprocess *p = h->proc;
  process_ref(p);
  fhandle_close(h);
  if (p->nhandles == 0 && p->exited) process_untrack(p);
  process_unref(p);
  UNLOCK();
  return S_OK;
}

#define PROC_PROLOGUE(name)                                                    \
  OUTNULL(result);                                                             \
  LOCK();                                                                      \
  INJECT(name, result);                                                        \
  int32_t hr;                                                                  \
  jval *doc = NULL;                                                            \
  fhandle *h = proc_handle(process);                                           \
  if (!h) {                                                                    \
    hr = fail(result, HR_INVALID_HANDLE, "%s: invalid process handle", name); \
    goto out;                                                                  \
  }                                                                            \
  fprocess *p = h->proc;

#define PROC_EPILOGUE() \
  out:                  \
  json_free(doc);       \
  UNLOCK();             \
  return hr;

API int32_t HcsTerminateProcess(HCS_PROCESS process, uint16_t **result) {
  PROC_PROLOGUE("HcsTerminateProcess")
  if (p->exited) {
    hr = fail(result, HCS_PROCESS_ALREADY_STOPPED, "process %d has already exited", (int)p->pid);
    goto out;
  }
  kill(p->pid, SIGKILL); /* the exit arrives later as ProcessExited (exit code 137) */
  hr = S_OK;
  PROC_EPILOGUE()
}

/* hcsshim internal/hcs/schema2 / guestresource: SignalProcessOptionsWCOW {"Signal": SignalValueWCOW} for a Windows
 * guest, SignalProcessOptionsLCOW {"Signal": int} for a Linux one (internal/signals/signalmap.go at 7c9ff7f48).
 * Nothing else is accepted. A console control event maps to the POSIX signal with the same meaning here. */
static int signal_from_options(const jval *doc, int lcow, char *msg, size_t n) {
  for (size_t i = 0; i < doc->len; i++)
    if (strcasecmp(doc->keys[i], "Signal") != 0) return snprintf(msg, n, "options: unknown field %s", doc->keys[i]), -1;
  const jval *v = json_get(doc, "Signal");
  if (lcow) {
    static const int lcow_signals[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                       23, 24, 25, 26, 27, 28, 29, 30, 31};
    long long sig;
    if (!json_int(v, &sig)) return snprintf(msg, n, "options: a Linux guest's Signal is a signal number"), -1;
    for (size_t i = 0; i < sizeof lcow_signals / sizeof lcow_signals[0]; i++)
      if (lcow_signals[i] == sig) return (int)sig;
    return snprintf(msg, n, "options: signal %lld is not in the LCOW signal map", sig), -1;
  }
  static const struct {
    const char *name;
    int sig;
  } wcow[] = {{"CtrlC", SIGINT}, {"CtrlBreak", SIGQUIT}, {"CtrlClose", SIGHUP}, {"CtrlLogOff", SIGHUP},
              {"CtrlShutdown", SIGTERM}};
  const char *name = json_str(v);
  for (size_t i = 0; name && i < sizeof wcow / sizeof wcow[0]; i++)
    if (strcmp(name, wcow[i].name) == 0) return wcow[i].sig;
  return snprintf(msg, n, "options: a Windows guest's Signal is CtrlC, CtrlBreak, CtrlClose, CtrlLogOff or "
                          "CtrlShutdown"), -1;
}

/* An RS1-era vmcompute (build/libfakevmcompute-rs1.so, -DFAKE_RS1) has no HcsSignalProcess, HcsSaveComputeSystem
 * or NameToGuid: callers must resolve them lazily (hcsshim's `//sys ... ?`) and cope without. */
#ifndef FAKE_RS1
API
#endif
int32_t HcsSignalProcess(HCS_PROCESS process, const uint16_t *options, uint16_t **result) {
  PROC_PROLOGUE("HcsSignalProcess")
  char msg[256];
  if ((hr = parse_doc(options, 0, &doc, result, "options")) < 0) goto out;
  int sig = signal_from_options(doc, strcmp(p->sys->runtime_os, "Linux") == 0, msg, sizeof msg);
  if (sig < 0) {
    hr = fail(result, VMC_INVALID_JSON, "%s", msg);
    goto out;
  }
  /* A signal to a process that is gone: HCS answers ERROR_VMCOMPUTE_INVALID_STATE, which hcsshim counts as "not
   * delivered" (internal/hcs/process.go processSignalResult). */
  if (p->exited) {
    hr = fail(result, VMC_INVALID_STATE, "process %d has already exited", (int)p->pid);
    goto out;
  }
  kill(p->pid, sig);
  /* "BlockSignalProcess": like servercore, the call returns only when the process has ended (or the option is
   * cleared). The model lock is released while it waits. */
  if (g_opt_block_signal) {
    process_ref(p);
    g_blocked_calls++;
    while (g_opt_block_signal && !p->exited) pthread_cond_wait(&g_block_cv, &g_mu);
    g_blocked_calls--;
    process_unref(p);
  }
  hr = S_OK;
  PROC_EPILOGUE()
}

API int32_t HcsGetProcessInfo(HCS_PROCESS process, HCS_PROCESS_INFORMATION *processInformation, uint16_t **result) {
  if (processInformation) memset(processInformation, 0, sizeof *processInformation);
  PROC_PROLOGUE("HcsGetProcessInfo")
  if (!processInformation) {
    hr = fail(result, E_INVALIDARG, "HcsGetProcessInfo needs processInformation");
    goto out;
  }
  /* The stdio handles were handed over by HcsCreateProcess; the fake keeps no copies (a copy of the stdin
   * write end would keep the child from ever seeing EOF), so they are 0 here. */
  processInformation->ProcessId = (uint32_t)p->pid;
  hr = S_OK;
  PROC_EPILOGUE()
}

API int32_t HcsGetProcessProperties(HCS_PROCESS process, uint16_t **processProperties, uint16_t **result) {
  OUTNULL(processProperties);
  PROC_PROLOGUE("HcsGetProcessProperties")
  char *js = process_status_json(p);
  hr = js ? out_str(processProperties, js) : E_OUTOFMEMORY;
  free(js);
  if (hr < 0) hr = fail(result, hr, "out of memory");
  PROC_EPILOGUE()
}

API int32_t HcsModifyProcess(HCS_PROCESS process, const uint16_t *settings, uint16_t **result) {
  PROC_PROLOGUE("HcsModifyProcess")
  if ((hr = parse_doc(settings, 0, &doc, result, "settings")) < 0) goto out;
  char smsg[256];
  if (!schema_check(doc, SCHEMA_PROCESS_MODIFY, smsg, sizeof smsg)) {
    hr = fail(result, VMC_INVALID_JSON, "settings: %s", smsg);
    goto out;
  }
  const char *op = json_str(json_get(doc, "Operation"));
  if (!op) {
    hr = fail(result, E_INVALIDARG, "settings: Operation is required");
    goto out;
  }
  if (p->exited) {
    hr = fail(result, VMC_INVALID_STATE, "process %d has already exited", (int)p->pid);
    goto out;
  }
  if (strcasecmp(op, "CloseHandle") == 0) {
    const char *which = json_str(json_get(json_get(doc, "CloseHandle"), "Handle"));
    if (!which || (strcasecmp(which, "StdIn") && strcasecmp(which, "StdOut") && strcasecmp(which, "StdErr") &&
                   strcasecmp(which, "All"))) {
      hr = fail(result, E_INVALIDARG, "settings: CloseHandle.Handle must be StdIn, StdOut, StdErr or All");
      goto out;
    }
    /* Only stdin has a guest side the fake owns; StdOut/StdErr belong to the caller already. */
    if (!strcasecmp(which, "StdIn") || !strcasecmp(which, "All")) process_request_stdin_close(p);
    hr = S_OK;
  } else if (strcasecmp(op, "ConsoleSize") == 0) {
    /* hcsschema.ConsoleSize's Height and Width are omitempty uint16s: hcsshim leaves a 0 out. */
    const jval *cs = json_get(doc, "ConsoleSize"), *hv = json_get(cs, "Height"), *wv = json_get(cs, "Width");
    long long hgt = 0, wid = 0;
    if (!is_obj(cs) || (hv && hv->t != J_NULL && !json_int(hv, &hgt)) ||
        (wv && wv->t != J_NULL && !json_int(wv, &wid)) || hgt < 0 || wid < 0 ||
        hgt > 65535 || wid > 65535) {
      hr = fail(result, E_INVALIDARG, "settings: ConsoleSize must be {\"Height\":n,\"Width\":n} (uint16)");
      goto out;
    }
    process_resize(p, (unsigned)hgt, (unsigned)wid); /* a no-op without EmulateConsole */
    hr = S_OK;
  } else {
    hr = fail(result, E_INVALIDARG, "settings: unknown Operation '%s'", op);
  }
  PROC_EPILOGUE()
}

/* ---- test-only exports ---- */

API int32_t FakeGetOpenHandles(void) {
  LOCK();
  int n = handle_count();
  UNLOCK();
  return n;
}

API int32_t FakeGetLastModifyDocument(uint16_t **doc) {
  if (!doc) return E_POINTER;
  LOCK();
  *doc = g_last_modify_doc ? u16_dup_cotask(g_last_modify_doc) : NULL;
  UNLOCK();
  return S_OK;
}

API int32_t FakeGetLastCreateDocument(uint16_t **doc) {
  if (!doc) return E_POINTER;
  LOCK();
  *doc = u16_dup_cotask(g_last_create_doc);
  UNLOCK();
  return *doc ? S_OK : E_OUTOFMEMORY;
}

API void FakeInjectFailure(const uint16_t *exportName, int32_t hresult, const uint16_t *resultErrorJson) {
  char *name = u16_to_utf8(exportName);
  if (!name) return;
  inj *i = calloc(1, sizeof *i);
  if (!i) {
    free(name);
    return;
  }
  i->name = name;
  i->hr = hresult;
  i->doc = resultErrorJson ? u16_dup_malloc(resultErrorJson) : NULL;
  LOCK();
  i->async = g_opt_inject_async;
  inj **pp = &g_inj; /* FIFO per export */
  while (*pp) pp = &(*pp)->next;
  *pp = i;
  UNLOCK();
}

API void FakeSetOption(const uint16_t *key, int32_t value) {
  char *k = u16_to_utf8(key);
  if (!k) return;
  LOCK();
  if (!strcmp(k, "AsyncDelayMs")) g_opt_async_delay_ms = value < 0 ? 0 : value;
  else if (!strcmp(k, "SyncCompletion")) g_opt_sync_completion = value != 0;
  else if (!strcmp(k, "ShutdownTimeoutMs")) g_opt_shutdown_timeout_ms = value;
  else if (!strcmp(k, "UnregisterTimeoutMs")) g_opt_unregister_timeout_ms = value;
  else if (!strcmp(k, "InjectAsync")) g_opt_inject_async = value != 0;
  else if (!strcmp(k, "BlockSignalProcess")) g_opt_block_signal = value != 0;
  else if (!strcmp(k, "BlockCreateComputeSystem")) g_opt_block_create = value != 0;
  else if (!strcmp(k, "BlockCreateProcess")) g_opt_block_create_process = value != 0;
  else if (!strcmp(k, "ProcessExitedStatus")) g_opt_process_exited_status = value;
  pthread_cond_broadcast(&g_block_cv);
  UNLOCK();
  free(k);
}

API void FakeReset(void) {
  LOCK();
  while (g_systems) {
    fsystem *s = g_systems;
    system_ref(s);
    system_unlist(s);
    if (s->state != ST_STOPPED) {
      if (s->state == ST_STOPPING) system_signal_all(s, SIGKILL);
      else system_begin_stop(s, SIGKILL, "ForcedExit", S_OK);
    }
    system_unref(s);
  }
  while (g_inj) {
    inj *i = g_inj;
    g_inj = i->next;
    inj_free(i);
  }
  free(g_last_create_doc);
  g_last_create_doc = NULL;
  free(g_last_modify_doc);
  g_last_modify_doc = NULL;
  g_opt_async_delay_ms = DEFAULT_ASYNC_DELAY_MS;
  g_opt_sync_completion = 0;
  g_opt_shutdown_timeout_ms = DEFAULT_SHUTDOWN_TIMEOUT_MS;
  g_opt_unregister_timeout_ms = DEFAULT_UNREGISTER_TIMEOUT_MS;
  g_opt_inject_async = 0;
  g_opt_block_signal = 0;
  g_opt_block_create = 0;
  g_opt_block_create_process = 0;
  g_opt_process_exited_status = 0;
  pthread_cond_broadcast(&g_block_cv);
  UNLOCK();
  wait_all_reaped(2000);
}

API int32_t FakeCrashComputeSystem(const uint16_t *id, int32_t hresult) {
  char *id8 = u16_to_utf8(id);
  int32_t hr = S_OK;
  LOCK();
  fsystem *s = id8 ? find_system(id8) : NULL;
  if (!s) hr = VMC_SYSTEM_NOT_FOUND;
  else if (s->state == ST_STOPPED) hr = VMC_ALREADY_STOPPED;
  else if (s->state == ST_STOPPING) {
    s->exit_type = "UnexpectedExit";
    s->exit_status = hresult ? hresult : VMC_UNEXPECTED_EXIT;
    system_signal_all(s, SIGKILL);
  } else {
    system_begin_stop(s, SIGKILL, "UnexpectedExit", hresult ? hresult : VMC_UNEXPECTED_EXIT);
  }
  UNLOCK();
  free(id8);
  return hr;
}

API int32_t FakeGetBlockedCalls(void) {
  LOCK();
  int n = g_blocked_calls;
  UNLOCK();
  return n;
}

/* ---- layers ---- */

/* vmcompute's NameToGuid(PCWSTR name, GUID *guid) (hcsshim internal/wclayer/wclayer.go: `//sys nameToGuid(name
 * string, guid *_guid) (hr error) = vmcompute.NameToGuid?`). HCS's own algorithm is not published: the fake
 * returns a name-based UUID (version 5, SHA-1 over the namespace 1a3b2c4d-5e6f-4a0b-8c9d-0e1f2a3b4c5d and the
 * UTF-8 name), laid out as a Windows GUID (Data1-3 in host byte order). Deterministic, so layer ids are stable. */
#ifndef FAKE_RS1
API
#endif
int32_t NameToGuid(const uint16_t *name, void *guid) {
  if (!name || !guid) return E_INVALIDARG;
  char *n8 = u16_to_utf8(name);
  if (!n8) return E_OUTOFMEMORY;
  static const uint8_t ns[16] = {0x1a, 0x3b, 0x2c, 0x4d, 0x5e, 0x6f, 0x4a, 0x0b,
                                 0x8c, 0x9d, 0x0e, 0x1f, 0x2a, 0x3b, 0x4c, 0x5d};
  uint8_t digest[20];
  sha1_two(ns, sizeof ns, (const uint8_t *)n8, strlen(n8), digest);
  free(n8);
  digest[6] = (uint8_t)((digest[6] & 0x0f) | 0x50);
  digest[8] = (uint8_t)((digest[8] & 0x3f) | 0x80);
  struct {
    uint32_t d1;
    uint16_t d2, d3;
    uint8_t d4[8];
  } g;
  g.d1 = (uint32_t)digest[0] << 24 | (uint32_t)digest[1] << 16 | (uint32_t)digest[2] << 8 | digest[3];
  g.d2 = (uint16_t)(digest[4] << 8 | digest[5]);
  g.d3 = (uint16_t)(digest[6] << 8 | digest[7]);
  memcpy(g.d4, digest + 8, 8);
  memcpy(guid, &g, sizeof g);
  return S_OK;
}

API void FakeServiceDisconnect(void) {
  LOCK();
  post_service_disconnect();
  UNLOCK();
}
