/**
 * Layer lifecycle across processes (see records.ts for the invariants):
 *
 *   (none) --tx A--> incomplete{owner} --files written--> tx B --> complete
 *   complete --tx A (no refs, not mounted)--> deleting{owner} --files removed--> tx B --> (none)
 *
 * Files are only written or removed between transactions, by the record's owner. A dead owner's
 * incomplete/deleting layer is removed by whoever finds it (openStore, repair, or a createLayer
 * of the same ID). Only a transaction that holds the database lock changes a state.
 */
import { rm, stat } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LayerLimits } from '../archive/limits.js';
import { DiffIDMismatchError, LayerInUseError, LayerMountedError, LayerNotFoundError } from '../errors.js';
import type { Tx } from './db.js';
import {
  type Ctx,
  assertId,
  chainIdOf,
  getLayerTx,
  hexOf,
  newId,
  nowIso,
  parentChainTx,
  requireCompleteLayer,
} from './context.js';
import { tarSplitPath } from './layout.js';
import { bootId, currentOwner, ownerAlive } from './owner.js';
import {
  K,
  type LayerRecord,
  LayerRecordSchema,
  type LeaseRecord,
  LeaseRecordSchema,
  MountRecordSchema,
  holder,
} from './records.js';
import { SplitRecorder, rebuildTar } from './tarsplit.js';
import { type StreamDigest, uncompressed } from './uncompress.js';

export interface LayerProgress {
  /** Uncompressed bytes applied so far. */
  bytes: number;
  entries?: number;
}

export interface CreateLayerOptions {
  /** Parent layer ID; omitted for a base layer. */
  parent?: string;
  /** The layer tar, gzip / zstd / plain (detected). Omitted: an empty layer. */
  tar?: Readable;
  /**
   * The diffID the uncompressed tar must have. When set, the layer's ID is derived from its
   * chainID (content-addressed, so a second pull finds it) and a mismatch removes the layer and
   * throws DiffIDMismatchError.
   */
  expectedDiffID?: string;
  /** Explicit ID (64 hex). Default: hex of the chainID when expectedDiffID is given, else random. */
  id?: string;
  /** Digest/size of the compressed blob, recorded for reuse lookups. */
  compressedDigest?: string;
  compressedSize?: number;
  /** Keep the layer alive under this lease until the lease is released. */
  lease?: string;
  limits?: LayerLimits;
  signal?: AbortSignal;
  onProgress?: (p: LayerProgress) => void;
  /** @internal container layers */
  kind?: 'image' | 'container';
  /** @internal runs first in the claiming transaction; returns the parent (overrides `parent`). */
  resolveParent?: (tx: Tx) => Promise<string | undefined>;
  /**
   * `parent` does not have to exist yet: it is being written concurrently (a pull applying
   * several layers at once). The layer's files are written without looking at the parent chain
   * (as containers/storage applies layers; overlay only), and it becomes complete only after this
   * promise resolves with `parent`, the parent is complete, and the parent reference is added.
   * Requires `id`.
   */
  parentPending?: Promise<string>;
  /**
   * Checks the sha256 digest and size of the bytes read from `tar` (the compressed blob), after
   * the diffID check and before the layer becomes complete; whatever it throws removes the layer
   * and is rethrown. The store computes them anyway (off the main thread for large gzip layers),
   * so a caller needs no hash of its own.
   */
  verifyInput?: (input: StreamDigest) => void;
  /** @internal runs in the completing transaction (e.g. writes the container record). */
  onComplete?: (tx: Tx, layer: LayerRecord) => Promise<void>;
}

export interface CreateLayerResult {
  layer: LayerRecord;
  /** false when a complete layer with this ID already existed (the tar was not read). */
  created: boolean;
  /** sha256 and size of the bytes read from `tar` (set when the layer was created from a tar). */
  input?: StreamDigest;
}

const POLL_MS = 50;

type Claim =
  | { kind: 'exists'; layer: LayerRecord }
  | { kind: 'claimed'; takeover: boolean; parentChainID: string | undefined; chain: string[] }
  | { kind: 'wait' };

/** Create (or find) a layer; see CreateLayerOptions. */
export async function createLayer(ctx: Ctx, opts: CreateLayerOptions): Promise<CreateLayerResult> {
  // A pending parent that fails makes this layer pointless: stop extracting it at once.
  const parentFailed = new AbortController();
  opts.parentPending?.catch((err: unknown) => parentFailed.abort(err));
  const signal = opts.parentPending
    ? opts.signal
      ? AbortSignal.any([opts.signal, parentFailed.signal])
      : parentFailed.signal
    : opts.signal;
  if (opts.parent !== undefined) assertId('parent layer ID', opts.parent);
  if (opts.id !== undefined) assertId('layer ID', opts.id);
  if (opts.parentPending && (opts.id === undefined || opts.parent === undefined)) {
    throw new LayerNotFoundError(opts.id ?? '', 'parentPending needs an explicit id and parent');
  }
  const owner = currentOwner();
  let id = opts.id;
  let parentId = opts.parent;
  for (;;) {
    signal?.throwIfAborted();
    const claim = await ctx.db.transaction<Claim>(async (tx) => {
      let parentChainID: string | undefined;
      let chain: string[] = [];
      if (opts.resolveParent) parentId = await opts.resolveParent(tx);
      if (parentId !== undefined && !opts.parentPending) {
        const parent = await requireCompleteLayer(tx, parentId);
        parentChainID = parent.chainID;
        if (opts.tar) chain = [...(await parentChainTx(tx, parent)), parent.id];
      }
      if (id === undefined) {
        id =
          opts.expectedDiffID !== undefined && (parentId === undefined || parentChainID !== undefined)
            ? hexOf(chainIdOf(parentChainID, opts.expectedDiffID))
            : newId();
      }
      const existing = await getLayerTx(tx, id);
      if (existing?.state === 'complete') {
        if (existing.parent !== (parentId ?? null)) {
          throw new LayerInUseError(id, ['a layer with this ID but another parent']);
        }
        if (opts.lease !== undefined) await addLeaseRef(tx, opts.lease, id);
        return { kind: 'exists', layer: existing };
      }
      if (existing?.owner && ownerAlive(existing.owner)) return { kind: 'wait' };
      // New, or left behind by a dead writer/deleter: take it over.
      const rec: LayerRecord = {
        id,
        parent: parentId ?? null,
        state: 'incomplete',
        owner,
        kind: opts.kind ?? 'image',
        created: nowIso(),
      };
      if (existing && existing.parent !== null && existing.parent !== rec.parent) {
        tx.del(K.ref(existing.parent, holder.layer(id)));
      }
      tx.put(K.layer(id), rec);
      if (rec.parent !== null && !opts.parentPending) tx.put(K.ref(rec.parent, holder.layer(id)), '');
      return { kind: 'claimed', takeover: existing !== undefined, parentChainID, chain };
    }, signal);
    if (claim.kind === 'exists') {
      opts.tar?.destroy();
      return { layer: claim.layer, created: false };
    }
    if (claim.kind === 'wait') {
      await sleep(POLL_MS, undefined, { signal });
      continue;
    }
    const layerId = id!;
    let recorder: SplitRecorder | undefined;
    try {
      if (claim.takeover) await removeLayerFiles(ctx, layerId);
      // With a pending parent the files are written standalone (overlay: an upper dir needs no
      // parent); mount() gets the chain from the records later.
      const driverParent = opts.parentPending ? undefined : parentId;
      await ctx.driver.createLayer(layerId, driverParent);
      let diffID: string | undefined;
      let input: StreamDigest | undefined;
      let uncompressedSize = 0;
      let size = 0;
      if (opts.tar) {
        // Decompression and both digests (input blob, diffID) are computed off this thread for
        // large gzip layers (store/uncompress.ts); this thread parses, records and applies.
        const plain = await uncompressed(opts.tar, signal);
        const rec = new SplitRecorder(tarSplitPath(ctx.layout, layerId));
        recorder = rec;
        const tap = new Transform({
          highWaterMark: 1 << 20,
          transform(chunk: Buffer, _enc, cb) {
            try {
              rec.write(chunk);
            } catch (err) {
              cb(err as Error);
              return;
            }
            cb(null, chunk);
          },
        });
        plain.stream.on('error', (err) => tap.destroy(err));
        plain.stream.pipe(tap);
        const res = await ctx.driver.applyDiff(layerId, driverParent, tap, {
          signal,
          limits: opts.limits,
          parentChain: claim.chain,
          onProgress: opts.onProgress
            ? (p) => opts.onProgress?.({ bytes: p.bytes, entries: p.entries })
            : undefined,
        });
        // applyDiff stops at end-of-archive: read the padding that may follow, so the diffID
        // covers the whole stream as the image-spec defines it.
        await drain(tap);
        await rec.finish();
        const digests = await plain.digests;
        size = res.size;
        diffID = digests.output.digest;
        uncompressedSize = digests.output.size;
        if (opts.expectedDiffID !== undefined && diffID !== opts.expectedDiffID) {
          throw new DiffIDMismatchError(opts.expectedDiffID, diffID);
        }
        input = digests.input;
        // Before the layer is complete: a blob that fails its digest never becomes visible.
        opts.verifyInput?.(input);
      } else if ((opts.kind ?? 'image') === 'image') {
        diffID = EMPTY_TAR_DIFFID;
      }
      if (opts.parentPending) {
        const actual = await opts.parentPending;
        if (actual !== parentId) throw new LayerNotFoundError(parentId ?? '', `parent became ${actual}`);
      }
      const layer = await ctx.db.transaction(async (tx) => {
        const cur = await getLayerTx(tx, layerId);
        if (cur?.state !== 'incomplete' || !sameOwner(cur.owner, owner)) {
          throw new LayerNotFoundError(layerId, 'taken over by another process while being written');
        }
        if (opts.parentPending && parentId !== undefined) {
          // The parent is complete now: take its chainID and hold it like any child does.
          claim.parentChainID = (await requireCompleteLayer(tx, parentId)).chainID;
          tx.put(K.ref(parentId, holder.layer(layerId)), '');
        }
        const chainID =
          diffID !== undefined && (parentId === undefined || claim.parentChainID !== undefined)
            ? chainIdOf(claim.parentChainID, diffID)
            : undefined;
        const done: LayerRecord = {
          ...cur,
          state: 'complete',
          owner: undefined,
          diffID,
          chainID,
          compressedDigest: opts.compressedDigest,
          compressedSize: opts.compressedSize,
          uncompressedSize: opts.tar ? uncompressedSize : undefined,
          size,
        };
        if (opts.compressedDigest !== undefined) done.compressedDigests = [opts.compressedDigest];
        tx.put(K.layer(layerId), stripUndefined(done));
        if (diffID !== undefined) tx.put(K.layerByDiff(diffID, layerId), '');
        if (opts.compressedDigest !== undefined) {
          done.compressedDigests = [opts.compressedDigest];
          tx.put(K.layerByBlob(opts.compressedDigest, layerId), '');
        }
        if (chainID !== undefined && !(await tx.has(K.layerByChain(chainID)))) {
          tx.put(K.layerByChain(chainID), layerId);
        }
        if (opts.lease !== undefined) await addLeaseRef(tx, opts.lease, layerId);
        await opts.onComplete?.(tx, done);
        return done;
      });
      return { layer: layer, created: true, input };
    } catch (err) {
      opts.tar?.destroy();
      await recorder?.abort();
      await abandonLayer(ctx, layerId, owner).catch(() => undefined);
      throw err;
    }
  }
}

/** sha256 of 1024 zero bytes: the diffID of an empty tar (end-of-archive only). */
export const EMPTY_TAR_DIFFID = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

function drain(s: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (s.readableEnded) return resolve();
    s.on('end', resolve);
    s.on('error', reject);
    s.resume();
  });
}

function sameOwner(a: LayerRecord['owner'], b: LayerRecord['owner']): boolean {
  return !!a && !!b && a.pid === b.pid && a.start === b.start && a.boot === b.boot;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Remove a layer we own that failed half-way: files first, then the record. */
async function abandonLayer(ctx: Ctx, id: string, owner: LayerRecord['owner']): Promise<void> {
  await removeLayerFiles(ctx, id);
  await ctx.db.transaction(async (tx) => {
    const cur = await getLayerTx(tx, id);
    if (!cur || cur.state === 'complete' || !sameOwner(cur.owner, owner)) return;
    dropLayerRecord(tx, cur);
  });
}

/** Delete the record of a layer whose files are gone, with its index entries and parent ref. */
export function dropLayerRecord(tx: Tx, layer: LayerRecord): void {
  tx.del(K.layer(layer.id));
  for (const d of layer.compressedDigests ?? []) tx.del(K.layerByBlob(d, layer.id));
  if (layer.parent !== null) tx.del(K.ref(layer.parent, holder.layer(layer.id)));
  if (layer.diffID !== undefined) tx.del(K.layerByDiff(layer.diffID, layer.id));
  tx.del(K.mount(layer.id));
}

/** Holders of a layer (child layers, images, leases) plus a live mount, if any. */
export async function layerUsers(tx: Tx, id: string): Promise<string[]> {
  const users = (await tx.keys(K.refPrefix(id))).map((k) => k.slice(K.refPrefix(id).length));
  const m = await tx.get(K.mount(id), MountRecordSchema);
  if (m && m.count > 0 && m.boot === bootId()) users.push(`mount(${m.count})`);
  return users;
}

export interface DeleteLayerOptions {
  signal?: AbortSignal;
  /** Internal: also delete when mounted (container removal with force). */
  force?: boolean;
}

/**
 * Delete a layer nobody uses. Throws LayerInUseError when children, images, leases hold it,
 * LayerMountedError when mounted. Returns the parent ID (for garbage-collection cascades).
 */
export async function deleteLayer(
  ctx: Ctx,
  id: string,
  opts: DeleteLayerOptions = {},
): Promise<string | null> {
  assertId('layer ID', id);
  const owner = currentOwner();
  const layer = await ctx.db.transaction(async (tx) => {
    const l = await getLayerTx(tx, id);
    if (!l) throw new LayerNotFoundError(id);
    if (l.state !== 'complete' && l.owner && ownerAlive(l.owner)) {
      throw new LayerNotFoundError(id, `layer is ${l.state} by pid ${l.owner.pid}`);
    }
    const users = (await tx.keys(K.refPrefix(id))).map((k) => k.slice(K.refPrefix(id).length));
    if (users.length > 0) throw new LayerInUseError(id, users);
    const m = await tx.get(K.mount(id), MountRecordSchema);
    if (m && m.count > 0 && m.boot === bootId() && !opts.force) throw new LayerMountedError(id, m.count);
    markDeleting(tx, l, owner);
    return l;
  }, opts.signal);
  await finishDelete(ctx, layer, owner);
  return layer.parent;
}

/** In the deleting transaction: hide the layer from lookups and name ourselves the deleter. */
export function markDeleting(tx: Tx, l: LayerRecord, owner: LayerRecord['owner']): void {
  if (l.diffID !== undefined) tx.del(K.layerByDiff(l.diffID, l.id));
  for (const d of l.compressedDigests ?? []) tx.del(K.layerByBlob(d, l.id));
  tx.put(K.layer(l.id), { ...l, state: 'deleting', owner });
}

/** Every file of a layer: the driver's, then its tar-split. Missing files are not an error. */
export async function removeLayerFiles(ctx: Ctx, id: string): Promise<void> {
  await ctx.driver.removeLayer(id);
  await rm(tarSplitPath(ctx.layout, id), { force: true });
}

export async function finishDelete(ctx: Ctx, layer: LayerRecord, owner: LayerRecord['owner']): Promise<void> {
  await removeLayerFiles(ctx, layer.id);
  await ctx.db.transaction(async (tx) => {
    const cur = await getLayerTx(tx, layer.id);
    if (!cur || !sameOwner(cur.owner, owner)) return;
    dropLayerRecord(tx, cur);
    if (cur.chainID !== undefined) {
      const holderId = await tx.get(K.layerByChain(cur.chainID), LayerRecordSchema.shape.id);
      if (holderId === cur.id) tx.del(K.layerByChain(cur.chainID));
    }
  });
}

/**
 * Delete `id` and then its ancestors, for as long as each is unused (image removal, lease end).
 * Stops quietly at the first layer still in use. Returns the deleted IDs.
 */
export async function collectLayerChain(
  ctx: Ctx,
  id: string | null,
  signal?: AbortSignal,
): Promise<string[]> {
  const deleted: string[] = [];
  let cur = id;
  while (cur !== null) {
    const next: string | null | undefined = await ctx.db
      .transaction(async (tx) => {
        tx.del(K.gc(cur!));
        const l = await getLayerTx(tx, cur!);
        if (l?.state !== 'complete' || l.kind !== 'image') return undefined;
        if ((await layerUsers(tx, cur!)).length > 0) return undefined;
        markDeleting(tx, l, currentOwner());
        // If we die before the parent's turn, repair continues the cascade from this mark.
        if (l.parent !== null) tx.put(K.gc(l.parent), '');
        return l.parent;
      }, signal)
      .catch(() => undefined);
    if (next === undefined) break;
    const l = await ctx.db.transaction((tx) => getLayerTx(tx, cur!));
    if (l) await finishDelete(ctx, l, currentOwner());
    deleted.push(cur);
    cur = next;
  }
  return deleted;
}

// --- leases: keep layers alive while an operation (a pull) runs ---

export async function createLease(ctx: Ctx): Promise<string> {
  const id = newId();
  await ctx.db.transaction(async (tx) => {
    const rec: LeaseRecord = { id, owner: currentOwner(), created: nowIso(), layers: [] };
    tx.put(K.lease(id), rec);
  });
  return id;
}

async function addLeaseRef(tx: Tx, lease: string, layerId: string): Promise<void> {
  const rec = await tx.get(K.lease(lease), LeaseRecordSchema);
  if (!rec) throw new LayerNotFoundError(layerId, `lease ${lease} does not exist`);
  if (!rec.layers.includes(layerId)) tx.put(K.lease(lease), { ...rec, layers: [...rec.layers, layerId] });
  tx.put(K.ref(layerId, holder.lease(lease)), '');
}

/** Add a complete layer to a lease (it survives until the lease is released). */
export async function leaseLayer(ctx: Ctx, lease: string, layerId: string): Promise<LayerRecord> {
  return ctx.db.transaction(async (tx) => {
    const l = await requireCompleteLayer(tx, layerId);
    await addLeaseRef(tx, lease, layerId);
    return l;
  });
}

/** Release a lease; its layers that nothing else holds are deleted (with unused ancestors). */
export async function releaseLease(ctx: Ctx, lease: string): Promise<string[]> {
  const layers = await ctx.db.transaction(async (tx) => {
    const rec = await tx.get(K.lease(lease), LeaseRecordSchema);
    if (!rec) return [];
    for (const l of rec.layers) {
      tx.del(K.ref(l, holder.lease(lease)));
      tx.put(K.gc(l), '');
    }
    tx.del(K.lease(lease));
    return rec.layers;
  });
  const deleted: string[] = [];
  for (const l of layers) deleted.push(...(await collectLayerChain(ctx, l)));
  return deleted;
}

/**
 * The layer's tar as it was applied (same bytes, so its sha256 is the layer's diffID), rebuilt
 * from the tar-split and the layer's files. Layers without a tar-split (container layers,
 * layers created without a tar) get the driver's diff (whiteouts for deletions) instead.
 */
export async function layerTar(ctx: Ctx, id: string): Promise<Readable> {
  assertId('layer ID', id);
  const { layer, chain } = await ctx.db.transaction(async (tx) => {
    const l = await requireCompleteLayer(tx, id);
    return { layer: l, chain: await parentChainTx(tx, l) };
  });
  const split = tarSplitPath(ctx.layout, id);
  const hasSplit = await stat(split).then(
    () => true,
    () => false,
  );
  if (hasSplit) return rebuildTar(split, ctx.driver.layerDir(id));
  if (layer.diffID === EMPTY_TAR_DIFFID) return Readable.from([Buffer.alloc(1024)]);
  return ctx.driver.diff(id, chain);
}

/**
 * Record that `digest` (a compressed blob, verified by the caller) decompresses to layer `id`'s
 * content, so a later pull of that blob is skipped.
 */
export async function recordBlobDigest(ctx: Ctx, id: string, digest: string, size: number): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const l = await requireCompleteLayer(tx, id);
    const all = l.compressedDigests ?? [];
    if (all.includes(digest)) return;
    tx.put(
      K.layer(id),
      stripUndefined({
        ...l,
        compressedDigest: l.compressedDigest ?? digest,
        compressedSize: l.compressedSize ?? size,
        compressedDigests: [...all, digest],
      }),
    );
    tx.put(K.layerByBlob(digest, id), '');
  });
}

/** Complete layers whose content came from the compressed blob `digest`. */
export async function layersByBlobDigest(ctx: Ctx, digest: string): Promise<LayerRecord[]> {
  return ctx.db.transaction(async (tx) => {
    const out: LayerRecord[] = [];
    for (const k of await tx.keys(K.layerByBlobPrefix(digest))) {
      const l = await getLayerTx(tx, k.slice(K.layerByBlobPrefix(digest).length));
      if (l?.state === 'complete') out.push(l);
    }
    return out;
  });
}
