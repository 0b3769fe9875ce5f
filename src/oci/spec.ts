/**
 * The OCI spec types live beside the other shared types (src/libcontainerd/types/oci-spec.ts), so that
 * the Client interface can name them without importing this folder (which depends on those types).
 */
export type {
  OciLinux,
  OciMount,
  OciProcess,
  OciSpec,
  OciUser,
  OciWindows,
} from "../libcontainerd/types/oci-spec.js";
