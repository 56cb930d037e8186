/**
 * Containers' writable layers and mount refcounts.
 *
 * A container is a record (ID, names, image, metadata) plus a `container`-kind layer whose parent
 * is the image's top layer. Creation follows the layer lifecycle (layers.ts): the record becomes
 * visible only with the complete layer. Removal deletes the record and marks the layer `deleting`
 * in one transaction, so a crash leaves a layer that repair removes, never a record without files.
 *
 * Mounts: `M/<layerId>` counts mounts by all processes. The driver's mount/unmount run INSIDE the
 * transaction that changes the count, so two processes can never both mount (or one unmount while
 * the other counts on it). The count is stamped with the boot id; after a reboot it reads as 0.
 */
import type { Readable } from 'node:stream';
import type { Change } from '../drivers/types.js';
import {
  ContainerNotFoundError,
  InvalidStoreArgumentError,
  LayerMountedError,
  NameInUseError,
} from '../errors.js';
import type { Tx } from './db.js';
import {
  type Ctx,
  assertId,
  getLayerTx,
  newId,
  nowIso,
  parentChainTx,
  requireCompleteLayer,
} from './context.js';
import { lookupImageTx } from './images.js';
import { createLayer, finishDelete, markDeleting } from './layers.js';
import { bootId, currentOwner } from './owner.js';
import {
  type ContainerRecord,
  ContainerRecordSchema,
  Hex64,
  K,
  type MountRecord,
  MountRecordSchema,
} from './records.js';

export interface CreateContainerOptions {
  id?: string;
  /** Unique among containers. */
  name?: string;
  /** Image reference (resolved like lookupImage); omitted: a container on an empty rootfs. */
  image?: string;
  /** Caller's data (e.g. JSON), stored verbatim. */
  metadata?: string;
  /** Its layer is mounted `volatile` (see MountOptions.volatile): for containers that go after one run. */
  volatile?: boolean;
  signal?: AbortSignal;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export async function createContainer(ctx: Ctx, opts: CreateContainerOptions): Promise<ContainerRecord> {
  const id = opts.id ?? newId();
  assertId('container ID', id);
  let created: ContainerRecord | undefined;
  if (opts.name !== undefined && (!NAME.test(opts.name) || opts.name.length > 253)) {
    throw new InvalidStoreArgumentError('container name', JSON.stringify(opts.name));
  }
  let imageId: string | null = null;
  const { layer } = await createLayer(ctx, {
    kind: 'container',
    signal: opts.signal,
    // One transaction to check the names and resolve the image, one to publish the container.
    resolveParent: async (tx) => {
      if (await tx.has(K.container(id))) throw new NameInUseError(id, `container ${id}`);
      if (opts.name !== undefined) await assertNameFree(tx, opts.name);
      if (opts.image === undefined) return undefined;
      const img = await lookupImageTx(tx, opts.image);
      imageId = img.id;
      return img.topLayer ?? undefined;
    },
    onComplete: async (tx, l) => {
      if (await tx.has(K.container(id))) throw new NameInUseError(id, `container ${id}`);
      if (opts.name !== undefined) await assertNameFree(tx, opts.name);
      if (imageId !== null && !(await tx.has(K.image(imageId)))) {
        throw new ContainerNotFoundError(`image ${imageId} was removed while creating the container`);
      }
      const rec: ContainerRecord = {
        id,
        names: opts.name !== undefined ? [opts.name] : [],
        imageId,
        layerId: l.id,
        created: nowIso(),
        ...(opts.metadata !== undefined ? { metadata: opts.metadata } : {}),
        ...(opts.volatile ? { volatile: true } : {}),
      };
      tx.put(K.container(id), rec);
      if (opts.name !== undefined) tx.put(K.containerName(opts.name), id);
      if (imageId !== null) tx.put(K.containerByImage(imageId, id), '');
      created = rec;
    },
  });
  void layer;
  return created!;
}

async function assertNameFree(tx: Tx, name: string): Promise<void> {
  const holder = await tx.get(K.containerName(name), Hex64);
  if (holder) throw new NameInUseError(name, `container ${holder}`);
}

export async function getContainerTx(tx: Tx, ref: string): Promise<ContainerRecord> {
  if (/^[a-f0-9]{64}$/.test(ref)) {
    const c = await tx.get(K.container(ref), ContainerRecordSchema);
    if (c) return c;
  }
  const byName = await tx.get(K.containerName(ref), Hex64);
  if (byName) {
    const c = await tx.get(K.container(byName), ContainerRecordSchema);
    if (c) return c;
  }
  if (/^[a-f0-9]{3,63}$/.test(ref)) {
    const hits = await tx.range(`${K.containerPrefix}${ref}`, ContainerRecordSchema, { limit: 2 });
    if (hits.length === 1) return hits[0]![1];
  }
  throw new ContainerNotFoundError(ref);
}

export async function listContainers(ctx: Ctx): Promise<ContainerRecord[]> {
  return ctx.db.transaction(async (tx) =>
    (await tx.range(K.containerPrefix, ContainerRecordSchema)).map(([, c]) => c),
  );
}

export interface DeleteContainerOptions {
  /** Unmount first if mounted (otherwise a mounted container is LayerMountedError). */
  force?: boolean;
  signal?: AbortSignal;
}

export async function deleteContainer(
  ctx: Ctx,
  ref: string,
  opts: DeleteContainerOptions = {},
): Promise<void> {
  const owner = currentOwner();
  const { layer, mounted } = await ctx.db.transaction(async (tx) => {
    const c = await getContainerTx(tx, ref);
    const m = liveMount(await tx.get(K.mount(c.layerId), MountRecordSchema));
    if (m && !opts.force) throw new LayerMountedError(c.layerId, m.count);
    tx.del(K.container(c.id));
    for (const n of c.names) tx.del(K.containerName(n));
    if (c.imageId !== null) tx.del(K.containerByImage(c.imageId, c.id));
    const l = await getLayerTx(tx, c.layerId);
    if (l) markDeleting(tx, l, owner);
    if (m) {
      // Unmount under the lock so no other process sees a count for a mount that is going away.
      await ctx.driver.unmount(c.layerId);
      tx.del(K.mount(c.layerId));
    }
    return { layer: l, mounted: m };
  }, opts.signal);
  void mounted;
  if (layer) await finishDelete(ctx, layer, owner);
}

/** A mount record that still counts (same boot); undefined otherwise. */
export function liveMount(m: MountRecord | undefined): MountRecord | undefined {
  return m && m.count > 0 && m.boot === bootId() ? m : undefined;
}

export interface MountLayerOptions {
  readonly?: boolean;
  mountOptions?: string[];
  volatile?: boolean;
  signal?: AbortSignal;
}

/** Mount a layer (refcounted across processes); returns the merged path. */
export async function mountLayer(ctx: Ctx, layerId: string, opts: MountLayerOptions = {}): Promise<string> {
  assertId('layer ID', layerId);
  return ctx.db.transaction(async (tx) => {
    const l = await requireCompleteLayer(tx, layerId);
    const chain = await parentChainTx(tx, l);
    const m = liveMount(await tx.get(K.mount(layerId), MountRecordSchema));
    // Always ask the driver: it is idempotent, and remounts if someone unmounted behind our back.
    const path = await ctx.driver.mount(layerId, chain, {
      readonly: opts.readonly,
      mountOptions: opts.mountOptions,
      ...(opts.volatile ? { volatile: true } : {}),
    });
    tx.put(K.mount(layerId), { count: (m?.count ?? 0) + 1, boot: bootId(), path });
    return path;
  }, opts.signal);
}

/**
 * Drop one mount reference; the driver unmounts when the count reaches 0 (or at once with
 * `force`). Returns the remaining count.
 */
export async function unmountLayer(
  ctx: Ctx,
  layerId: string,
  opts: { force?: boolean } = {},
): Promise<number> {
  assertId('layer ID', layerId);
  return ctx.db.transaction(async (tx) => {
    const m = liveMount(await tx.get(K.mount(layerId), MountRecordSchema));
    const count = opts.force ? 0 : Math.max(0, (m?.count ?? 0) - 1);
    if (count === 0) {
      await ctx.driver.unmount(layerId);
      tx.del(K.mount(layerId));
    } else {
      tx.put(K.mount(layerId), { ...m!, count });
    }
    return count;
  });
}

export async function mountCount(ctx: Ctx, layerId: string): Promise<number> {
  return ctx.db.transaction(
    async (tx) => liveMount(await tx.get(K.mount(layerId), MountRecordSchema))?.count ?? 0,
  );
}

async function containerLayer(ctx: Ctx, ref: string): Promise<{ layerId: string; chain: string[] }> {
  return ctx.db.transaction(async (tx) => {
    const c = await getContainerTx(tx, ref);
    const l = await requireCompleteLayer(tx, c.layerId);
    return { layerId: l.id, chain: await parentChainTx(tx, l) };
  });
}

export async function containerChanges(ctx: Ctx, ref: string): Promise<Change[]> {
  const { layerId, chain } = await containerLayer(ctx, ref);
  return ctx.driver.changes(layerId, chain);
}

export async function containerDiff(ctx: Ctx, ref: string): Promise<Readable> {
  const { layerId, chain } = await containerLayer(ctx, ref);
  return ctx.driver.diff(layerId, chain);
}

export async function layerDiff(ctx: Ctx, layerId: string): Promise<Readable> {
  const chain = await ctx.db.transaction(async (tx) =>
    parentChainTx(tx, await requireCompleteLayer(tx, layerId)),
  );
  return ctx.driver.diff(layerId, chain);
}
