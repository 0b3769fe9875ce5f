export * from "./defaults.js";
export {
  CPU_PERIOD_US,
  checkLinuxResources,
  linuxResources,
  parseSize,
  resourcesForUpdate,
  windowsResources,
} from "./resources.js";
export type * from "./spec.js";
