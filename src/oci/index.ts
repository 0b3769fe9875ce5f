export * from "./defaults.js";
export type * from "./spec.js";
