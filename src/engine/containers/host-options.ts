import {
  applySecurityOpt,
  capabilityError,
  deviceCgroupRuleError,
  type LinuxRunOptions,
  type Ulimit,
} from "../../oci/linux-options.js";
import type { SeccompProfile } from "../../oci/seccomp.js";
import { badRequest } from "../errors.js";
import type { HostConfig } from "./config.js";

/**
 * HostConfig's privilege, device, rlimit, sysctl and namespace settings as the library's LinuxRunOptions,
 * checked as dockerd checks them at create (its wording). Each used to be kept as the client sent it and
 * ignored: `--cap-add NET_ADMIN` gave no NET_ADMIN, `--privileged` no extra capability, `--shm-size`,
 * `--ulimit`, `--sysctl`, `--device` nothing. Group names in GroupAdd are resolved at each start in the
 * container's /etc/group (the manager's resolveGroupsAtStart), as dockerd does; ids are taken here.
 */
export function hostRunOptions(
  hostConfig: HostConfig,
  hostname = "",
  defaultSeccomp?: SeccompProfile,
): { options: LinuxRunOptions } {
  const options: LinuxRunOptions = { noNewPrivileges: false };
  if (hostConfig.Privileged) options.privileged = true;
  // moby's validateCapabilities, at create: a name no kernel has, or one this host cannot give.
  for (const [name, given] of [
    ["CapAdd", hostConfig.CapAdd],
    ["CapDrop", hostConfig.CapDrop],
  ] as const)
    for (const capability of list(given, name)) {
      if (typeof capability !== "string") throw badRequest(`invalid ${name}: want capability names`);
      const error = capabilityError(capability);
      if (error) throw badRequest(`invalid ${name}: ${error}`);
    }
  if (hostConfig.CapAdd?.length) options.capAdd = hostConfig.CapAdd;
  if (hostConfig.CapDrop?.length) options.capDrop = hostConfig.CapDrop;
  const devices = list(hostConfig.Devices, "Devices").map((device, index) => {
    if (!isObject(device) || typeof device.PathOnHost !== "string" || device.PathOnHost === "")
      throw badRequest(`invalid Devices[${index}]: PathOnHost is required`);
    const inContainer =
      typeof device.PathInContainer === "string" && device.PathInContainer !== ""
        ? device.PathInContainer
        : device.PathOnHost;
    const permissions =
      typeof device.CgroupPermissions === "string" && device.CgroupPermissions !== ""
        ? device.CgroupPermissions
        : "rwm";
    if (!/^[rwm]{1,3}$/.test(permissions)) throw badRequest(`invalid device mode: ${permissions}`);
    return `${device.PathOnHost}:${inContainer}:${permissions}`;
  });
  if (devices.length > 0) options.devices = devices;
  const rules = list(hostConfig.DeviceCgroupRules, "DeviceCgroupRules").map((rule) => {
    if (typeof rule !== "string") throw badRequest("invalid DeviceCgroupRules: want strings");
    const error = deviceCgroupRuleError(rule);
    if (error) throw badRequest(error);
    return rule;
  });
  if (rules.length > 0) options.deviceCgroupRules = rules;
  const ulimits = list(hostConfig.Ulimits, "Ulimits").map((ulimit): Ulimit => {
    if (!isObject(ulimit) || typeof ulimit.Name !== "string")
      throw badRequest("invalid Ulimits: want {Name, Soft, Hard}");
    const soft = typeof ulimit.Soft === "number" ? ulimit.Soft : 0;
    const hard = typeof ulimit.Hard === "number" ? ulimit.Hard : 0;
    return { name: ulimit.Name, soft, hard };
  });
  if (ulimits.length > 0) options.ulimits = ulimits;
  const shmSize = hostConfig.ShmSize;
  if (shmSize !== undefined && shmSize !== null && shmSize !== 0) {
    if (typeof shmSize !== "number" || !Number.isInteger(shmSize) || shmSize < 0)
      throw badRequest("SHM size can not be less than 0");
    options.shmSize = shmSize;
  }
  const sysctls = hostConfig.Sysctls;
  if (sysctls !== undefined && sysctls !== null) {
    if (!isObject(sysctls) || Object.values(sysctls).some((value) => typeof value !== "string"))
      throw badRequest("invalid Sysctls: want a map of strings");
    if (Object.keys(sysctls).length > 0) options.sysctls = sysctls as Record<string, string>;
  }
  // container:NAME (PidMode, IpcMode): that container's namespace, joined at start (shared-namespaces.ts).
  const pid = mode(hostConfig.PidMode, "PidMode", ["", "host"]);
  if (pid === "host") options.pid = "host";
  // IpcMode: "private" (dockerd's default) and "shareable" are both a namespace of the container's own.
  const ipc = mode(hostConfig.IpcMode, "IpcMode", ["", "private", "shareable", "host", "none"]);
  if (ipc === "host" || ipc === "none") options.ipc = ipc;
  const uts = mode(hostConfig.UTSMode, "UTSMode", ["", "host"]);
  if (uts === "host") {
    if (hostname !== "") throw badRequest("Conflicting options: hostname and the UTS mode");
    options.uts = "host";
  }
  const oomScoreAdj = hostConfig.OomScoreAdj;
  if (oomScoreAdj !== undefined && oomScoreAdj !== null && oomScoreAdj !== 0) {
    if (
      typeof oomScoreAdj !== "number" ||
      !Number.isInteger(oomScoreAdj) ||
      oomScoreAdj < -1000 ||
      oomScoreAdj > 1000
    )
      throw badRequest(`Invalid value ${String(oomScoreAdj)}, range for oom score adj is [-1000, 1000]`);
    options.oomScoreAdj = oomScoreAdj;
  }
  // API 1.40: the docker CLI sends --security-opt systempaths=unconfined as both lists empty.
  for (const name of ["MaskedPaths", "ReadonlyPaths"] as const) {
    const value = hostConfig[name];
    if (value === undefined || value === null) continue;
    if (!Array.isArray(value) || value.some((path) => typeof path !== "string" || !path.startsWith("/")))
      throw badRequest(`invalid ${name}: want a list of absolute paths`);
    options[name === "MaskedPaths" ? "maskedPaths" : "readonlyPaths"] = value as string[];
  }
  const groupIds: number[] = [];
  for (const group of list(hostConfig.GroupAdd, "GroupAdd")) {
    if (typeof group !== "string" || group === "")
      throw badRequest("invalid GroupAdd: want group names or ids");
    if (/^\d+$/.test(group)) groupIds.push(Number(group));
  }
  if (groupIds.length > 0) options.groupAdd = groupIds;
  for (const opt of list(hostConfig.SecurityOpt, "SecurityOpt")) {
    if (typeof opt !== "string") throw badRequest("invalid SecurityOpt: want strings");
    applySecurityOpt(opt, options);
  }
  // dockerd's default profile unless the request names one (or "unconfined").
  if (options.seccomp === undefined && defaultSeccomp) options.seccomp = defaultSeccomp;
  return { options };
}

function mode(value: unknown, name: string, allowed: readonly string[]): string {
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") throw badRequest(`invalid ${name}: want a string`);
  if (value.startsWith("container:")) {
    if (value === "container:") throw badRequest(`invalid ${name}: ${value}`);
    return value;
  }
  if (!allowed.includes(value)) throw badRequest(`invalid ${name}: ${value}`);
  return value;
}

function list(value: unknown, name: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw badRequest(`invalid ${name}: want a list`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** dockerd's verifyPlatformContainerResources for the limits resourcesOf applies beyond Memory and CPU. */
export function checkResourceSettings(hostConfig: HostConfig): void {
  const number = (name: string): number => {
    const value = hostConfig[name];
    if (value === undefined || value === null) return 0;
    if (typeof value !== "number" || !Number.isFinite(value))
      throw badRequest(`invalid ${name}: want a number`);
    return value;
  };
  const memory = hostConfig.Memory;
  const swap = number("MemorySwap");
  if (swap > 0 && memory === 0)
    throw badRequest("You should always set the Memory limit when using Memoryswap limit, see usage");
  if (swap > 0 && swap < memory)
    throw badRequest("Minimum memoryswap limit should be larger than memory limit, see usage");
  const reservation = number("MemoryReservation");
  if (memory > 0 && reservation > memory)
    throw badRequest("Minimum memory limit can not be less than memory reservation limit, see usage");
  if (reservation < 0 || (reservation > 0 && reservation < 6 * 1024 * 1024))
    throw badRequest("Minimum memory reservation allowed is 6MB");
  const swappiness = hostConfig.MemorySwappiness;
  if (swappiness !== undefined && swappiness !== null && swappiness !== -1) {
    if (typeof swappiness !== "number" || !Number.isInteger(swappiness) || swappiness < 0 || swappiness > 100)
      throw badRequest(`Invalid value: ${String(swappiness)}, valid memory swappiness range is 0-100`);
  }
  const weight = number("BlkioWeight");
  if (weight !== 0 && (weight < 10 || weight > 1000))
    throw badRequest("Range of blkio weight is from 10 to 1000");
  for (const name of ["CpusetCpus", "CpusetMems"]) {
    const value = hostConfig[name];
    if (value === undefined || value === null || value === "") continue;
    if (typeof value !== "string" || !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(value))
      throw badRequest(
        `Invalid value ${String(value)} for cpuset ${name === "CpusetCpus" ? "cpus" : "mems"}`,
      );
  }
  if (
    hostConfig.OomKillDisable !== undefined &&
    hostConfig.OomKillDisable !== null &&
    typeof hostConfig.OomKillDisable !== "boolean"
  )
    throw badRequest("invalid OomKillDisable: want a boolean");
}
