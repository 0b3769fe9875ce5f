export { type ContainerdAddress, formatAddress, parseAddress } from "../grpc/address.js";
export { DEFAULT_NAMESPACE, RemoteClient, type RemoteClientOptions } from "./client.js";
export { UNKNOWN_EXIT_CODE } from "./events.js";
