export type * from "./client.js";
export * from "./errors.js";
export * from "./events.js";
export type * from "./inspect.js";
export type * from "./resources.js";
export type * from "./stats.js";
