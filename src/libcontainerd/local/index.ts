export { LocalClient, type LocalClientOptions } from "./client.js";
export { LOCAL_RUNTIME_NAME } from "./container.js";
export {
  type CreateDocument,
  createDocument,
  WINDOWS_BUILD_RS1,
  WINDOWS_BUILD_RS4,
  WINDOWS_BUILD_RS5,
} from "./documents.js";
export type { LcowOptions } from "./lcow.js";
