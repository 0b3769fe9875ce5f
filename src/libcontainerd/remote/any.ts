import { create } from "@bufbuild/protobuf";
import { type Any, AnySchema } from "@bufbuild/protobuf/wkt";

/** Non-protobuf payloads travel as JSON under these type URLs (containerd's typeurl registry). */
export const TYPE_URL = {
  spec: "types.containerd.io/opencontainers/runtime-spec/1/Spec",
  process: "types.containerd.io/opencontainers/runtime-spec/1/Process",
  linuxResources: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
  windowsResources: "types.containerd.io/opencontainers/runtime-spec/1/WindowsResources",
} as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function jsonAny(typeUrl: string, value: unknown): Any {
  return create(AnySchema, { typeUrl, value: encoder.encode(JSON.stringify(value)) });
}

export function parseJsonAny<T>(any: Any | undefined): T | undefined {
  return any && any.value.length > 0 ? (JSON.parse(decoder.decode(any.value)) as T) : undefined;
}

/** An Any with a bare type URL: containerd 1.6's shims do not accept the `type.googleapis.com/` prefix. */
export function bareAny(typeUrl: string, value: Uint8Array): Any {
  return create(AnySchema, { typeUrl, value });
}
