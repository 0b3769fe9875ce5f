/** Moved to src/errors.ts (a leaf every folder may import); kept so in-flight branches still build. */
export * from "../../errors.js";
