import { Content } from "../../src/gen/github.com/containerd/containerd/api/services/content/v1/content_pb.js";
import { Images } from "../../src/gen/github.com/containerd/containerd/api/services/images/v1/images_pb.js";
import { Leases } from "../../src/gen/github.com/containerd/containerd/api/services/leases/v1/leases_pb.js";
import { Snapshots } from "../../src/gen/github.com/containerd/containerd/api/services/snapshots/v1/snapshots_pb.js";
import { createContainerdTransport, serviceClient } from "../../src/libcontainerd/grpc/transport.js";

/** What a namespace holds in containerd's stores: blobs, ingests, snapshots, leases, images. */
export async function storeContents(address: string, namespace: string) {
  const transport = createContainerdTransport({ address, namespace });
  const content = serviceClient(Content, transport);
  const blobs: string[] = [];
  for await (const res of content.list({})) blobs.push(...res.info.map((i) => i.digest));
  const { statuses } = await content.listStatuses({});
  const snapshots: string[] = [];
  for await (const res of serviceClient(Snapshots, transport).list({ snapshotter: "overlayfs" }))
    snapshots.push(...res.info.map((i) => i.name));
  const { leases } = await serviceClient(Leases, transport).list({});
  const { images } = await serviceClient(Images, transport).list({});
  return {
    blobs,
    ingests: statuses.map((s) => s.ref),
    snapshots,
    leases: leases.map((l) => l.id),
    images: images.map((i) => i.name),
  };
}

/** Runs containerd's GC now (a lease deleted with sync does that) so what nothing holds is gone. */
export async function collectGarbage(address: string, namespace: string): Promise<void> {
  const leases = serviceClient(Leases, createContainerdTransport({ address, namespace }));
  const id = `gc-trigger-${process.pid}-${Date.now()}`;
  await leases.create({ id });
  await leases.delete({ id, sync: true });
}
