export * from "./addresses.js";
export * from "./detect.js";
export * from "./windows-builds.js";
