/**
 * Consistency check and repair.
 *
 * check() reads every record in one transaction, then looks at the files (driver layers, image
 * blobs, mounts) outside it, and reports problems without changing anything. repair() fixes each
 * problem in its own short transaction, re-checking under the lock that the problem is still
 * there (another process may have finished the layer or deleted the image meanwhile).
 *
 * What repair() does, per problem kind:
 *   corrupt-record        a record that fails validation: deleted (what it described is then
 *                         found as orphan files / dangling references and removed in the next pass)
 *   dead-writer-layer     incomplete/deleting layer whose owner died: remove files, then record
 *   stale-lease           lease of a dead process: release (unused layers are collected)
 *   pending-gc            interrupted image/lease removal: continue collecting unused layers
 *   missing-layer-files   complete layer without files: remove it, every layer above it, and the
 *                         images and containers built on them (records must not point at
 *                         missing files)
 *   missing-image-blob    image whose config/manifest file is gone: remove the image record
 *   image-missing-layer   image whose layer record is gone: remove the image record
 *   container-missing-layer  container whose layer is gone: remove the container record
 *   dangling-ref / dangling-index  entry naming a missing record: delete the entry
 *   missing-ref           parent/image reference missing: add it
 *   stale-mount           mount count from another boot, or not mounted any more: drop it
 *   orphan-image-dir      image blob directory without a record: remove it
 *   orphan-layer-files    driver files without a layer record: remove them
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Tx } from './db.js';
import { type Ctx, getLayerTx } from './context.js';
import { dropImageRecord } from './images.js';
import { imageDir } from './layout.js';
import { collectLayerChain, dropLayerRecord, releaseLease, removeLayerFiles } from './layers.js';
import { bootId, ownerAlive } from './owner.js';
import {
  ContainerRecordSchema,
  Hex64,
  ImageRecordSchema,
  K,
  type LayerRecord,
  LayerRecordSchema,
  LeaseRecordSchema,
  MountRecordSchema,
  holder,
} from './records.js';

export type ProblemKind =
  | 'corrupt-record'
  | 'dead-writer-layer'
  | 'stale-lease'
  | 'pending-gc'
  | 'missing-layer-files'
  | 'missing-image-blob'
  | 'image-missing-layer'
  | 'container-missing-layer'
  | 'dangling-ref'
  | 'dangling-index'
  | 'missing-ref'
  | 'stale-mount'
  | 'orphan-image-dir'
  | 'orphan-layer-files';

export interface Problem {
  kind: ProblemKind;
  /** The layer / image / container / lease / key concerned. */
  id: string;
  detail: string;
}

export interface CheckReport {
  ok: boolean;
  problems: Problem[];
  counts: { layers: number; images: number; containers: number };
}

export interface RepairReport {
  /** Problems found before repairing. */
  found: Problem[];
  /** What was removed or fixed. */
  fixed: Problem[];
  /** Problems still present afterwards (should be empty). */
  remaining: Problem[];
}

interface Snapshot {
  layers: Map<string, LayerRecord>;
  refs: string[];
  images: Map<string, import('./records.js').ImageRecord>;
  containers: Map<string, import('./records.js').ContainerRecord>;
  indexes: Array<[string, string | undefined]>;
  mounts: Array<[string, import('./records.js').MountRecord]>;
  leases: Array<import('./records.js').LeaseRecord>;
  gc: string[];
  corrupt: string[];
}

/** Records under `prefix` that parse; the keys of those that do not go to `corrupt`. */
async function tolerantRange<T>(
  tx: Tx,
  prefix: string,
  schema: z.ZodType<T>,
  corrupt: string[],
): Promise<Array<[string, T]>> {
  const out: Array<[string, T]> = [];
  for (const [k, v] of await tx.range(prefix, z.unknown())) {
    const r = schema.safeParse(v);
    if (r.success) out.push([k, r.data]);
    else corrupt.push(k);
  }
  return out;
}

async function snapshot(tx: Tx): Promise<Snapshot> {
  const corrupt: string[] = [];
  const layers = new Map(
    (await tolerantRange(tx, K.layerPrefix, LayerRecordSchema, corrupt)).map(([, l]) => [l.id, l]),
  );
  const images = new Map(
    (await tolerantRange(tx, K.imagePrefix, ImageRecordSchema, corrupt)).map(([, i]) => [i.id, i]),
  );
  const containers = new Map(
    (await tolerantRange(tx, K.containerPrefix, ContainerRecordSchema, corrupt)).map(([, c]) => [c.id, c]),
  );
  const indexes: Array<[string, string | undefined]> = [];
  for (const prefix of ['In/', 'Cn/', 'Lc/']) {
    for (const [k, v] of await tolerantRange(tx, prefix, Hex64, corrupt)) indexes.push([k, v]);
  }
  for (const prefix of ['Id/', 'Ld/', 'Ci/', 'Lz/'])
    for (const k of await tx.keys(prefix)) indexes.push([k, undefined]);
  return {
    layers,
    refs: await tx.keys(K.refsPrefix),
    images,
    containers,
    indexes,
    mounts: (await tolerantRange(tx, K.mountPrefix, MountRecordSchema, corrupt)).map(([k, m]) => [
      k.slice(2),
      m,
    ]),
    leases: (await tolerantRange(tx, K.leasePrefix, LeaseRecordSchema, corrupt)).map(([, l]) => l),
    gc: (await tx.keys(K.gcPrefix)).map((k) => k.slice(2)),
    corrupt,
  };
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function listDir(p: string): Promise<string[]> {
  try {
    return await readdir(p);
  } catch {
    return [];
  }
}

export async function check(ctx: Ctx, signal?: AbortSignal): Promise<CheckReport> {
  const s = await ctx.db.transaction(snapshot, signal);
  const problems: Problem[] = [];
  const add = (kind: ProblemKind, id: string, detail: string) => problems.push({ kind, id, detail });
  for (const key of s.corrupt) add('corrupt-record', key, 'record fails validation');

  for (const l of s.layers.values()) {
    if (l.state !== 'complete') {
      if (!l.owner || !ownerAlive(l.owner))
        add('dead-writer-layer', l.id, `layer ${l.state}, owner pid ${l.owner?.pid} is gone`);
      continue;
    }
    if (!(await ctx.driver.exists(l.id)))
      add('missing-layer-files', l.id, 'complete layer has no files in the driver');
    if (l.parent !== null) {
      const p = s.layers.get(l.parent);
      if (p?.state !== 'complete') add('missing-layer-files', l.id, `parent ${l.parent} is missing`);
      else if (!s.refs.includes(K.ref(l.parent, holder.layer(l.id))))
        add('missing-ref', l.id, `parent ${l.parent} does not record its child`);
    }
  }
  for (const lease of s.leases) {
    if (!ownerAlive(lease.owner)) add('stale-lease', lease.id, `lease of dead pid ${lease.owner.pid}`);
  }
  for (const g of s.gc) add('pending-gc', g, 'interrupted removal left layers to collect');
  for (const img of s.images.values()) {
    for (const b of img.blobs) {
      if (!(await exists(join(imageDir(ctx.layout, img.id), b))))
        add('missing-image-blob', img.id, `${b} file is missing`);
    }
    for (const l of img.layers) {
      const rec = s.layers.get(l);
      if (rec?.state !== 'complete') add('image-missing-layer', img.id, `layer ${l} is missing`);
    }
    if (img.topLayer && !s.refs.includes(K.ref(img.topLayer, holder.image(img.id)))) {
      add('missing-ref', img.id, `top layer ${img.topLayer} does not record the image`);
    }
  }
  for (const c of s.containers.values()) {
    const l = s.layers.get(c.layerId);
    if (l?.state !== 'complete') add('container-missing-layer', c.id, `layer ${c.layerId} is missing`);
  }
  for (const key of s.refs) {
    const [, layerId, h] = key.split('/') as [string, string, string];
    const [kind, hid] = h.split(':') as [string, string];
    const holderExists =
      kind === 'layer'
        ? s.layers.has(hid)
        : kind === 'image'
          ? s.images.has(hid)
          : kind === 'lease'
            ? s.leases.some((l) => l.id === hid)
            : false;
    if (!s.layers.has(layerId) || !holderExists)
      add('dangling-ref', key, 'reference to or from a missing record');
  }
  for (const [key, value] of s.indexes) {
    const parts = key.split('/');
    const target = value ?? parts[parts.length - 1]!;
    const ok =
      key.startsWith('In/') || key.startsWith('Id/')
        ? s.images.has(target)
        : key.startsWith('Cn/') || key.startsWith('Ci/')
          ? s.containers.has(target)
          : // Layers being written or deleted are judged by dead-writer-layer, not here.
            s.layers.has(target);
    if (!ok) add('dangling-index', key, `index entry names missing ${target}`);
  }
  for (const [layerId, m] of s.mounts) {
    if (m.boot !== bootId()) add('stale-mount', layerId, 'mount count from a previous boot');
    else if (
      m.count > 0 &&
      s.layers.has(layerId) &&
      !(await ctx.driver.isMounted(layerId).catch(() => false))
    ) {
      if (ctx.driver.name === 'overlay')
        add('stale-mount', layerId, `counted ${m.count} mounts but not mounted`);
    }
  }
  for (const name of await listDir(ctx.layout.images)) {
    if (!s.images.has(name)) add('orphan-image-dir', name, 'image blob directory without a record');
  }
  // Where the driver keeps one entry per layer: the directory holding the ID in layerDir().
  const probeId = '0'.repeat(64);
  const sample = ctx.driver.layerDir(probeId);
  const layersHome = sample.slice(0, Math.max(0, sample.indexOf(probeId) - 1));
  for (const name of await listDir(layersHome)) {
    if (/^[a-f0-9]{64}$/.test(name) && !s.layers.has(name) && (await ctx.driver.exists(name))) {
      add('orphan-layer-files', name, 'driver files without a layer record');
    }
  }
  for (const name of await listDir(ctx.layout.tarsplit)) {
    if (/^[a-f0-9]{64}$/.test(name) && !s.layers.has(name)) {
      add('orphan-layer-files', name, 'tar-split file without a layer record');
    }
  }
  return {
    ok: problems.length === 0,
    problems,
    counts: { layers: s.layers.size, images: s.images.size, containers: s.containers.size },
  };
}

/** Remove what dead processes left behind (run by openStore): cheap, no file checks. */
export async function recoverCrashes(ctx: Ctx, signal?: AbortSignal): Promise<Problem[]> {
  const found = await ctx.db.transaction(async (tx) => {
    const out: Problem[] = [];
    for (const [, l] of await tolerantRange(tx, K.layerPrefix, LayerRecordSchema, [])) {
      if (l.state !== 'complete' && (!l.owner || !ownerAlive(l.owner))) {
        out.push({ kind: 'dead-writer-layer', id: l.id, detail: `layer ${l.state}` });
      }
    }
    for (const [, lease] of await tolerantRange(tx, K.leasePrefix, LeaseRecordSchema, [])) {
      if (!ownerAlive(lease.owner)) out.push({ kind: 'stale-lease', id: lease.id, detail: 'dead owner' });
    }
    for (const k of await tx.keys(K.gcPrefix)) out.push({ kind: 'pending-gc', id: k.slice(2), detail: '' });
    return out;
  }, signal);
  for (const p of found) await fix(ctx, p);
  return found;
}

export async function repair(ctx: Ctx, signal?: AbortSignal): Promise<RepairReport> {
  const before = await check(ctx, signal);
  const fixed: Problem[] = [];
  // Dead writers and damaged layers first: the other fixes then see a settled layer set.
  const order: ProblemKind[] = [
    'corrupt-record',
    'dead-writer-layer',
    'stale-lease',
    'missing-layer-files',
    'image-missing-layer',
    'missing-image-blob',
    'container-missing-layer',
    'stale-mount',
    'dangling-ref',
    'dangling-index',
    'missing-ref',
    'orphan-image-dir',
    'orphan-layer-files',
    'pending-gc',
  ];
  // A fix can reveal the next problem (a deleted corrupt record leaves orphan files): a few passes.
  let report = before;
  for (let pass = 0; pass < 3 && !report.ok; pass++) {
    for (const kind of order) {
      for (const p of report.problems.filter((q) => q.kind === kind)) {
        signal?.throwIfAborted();
        if (await fix(ctx, p)) fixed.push(p);
      }
    }
    report = await check(ctx, signal);
  }
  return { found: before.problems, fixed, remaining: report.problems };
}

async function fix(ctx: Ctx, p: Problem): Promise<boolean> {
  switch (p.kind) {
    case 'corrupt-record':
      return ctx.db.transaction(async (tx) => {
        tx.del(p.id);
        return true;
      });
    case 'dead-writer-layer': {
      const l = await ctx.db.transaction((tx) => getLayerTx(tx, p.id));
      if (!l || l.state === 'complete' || (l.owner && ownerAlive(l.owner))) return false;
      await removeLayerFiles(ctx, p.id);
      return ctx.db.transaction(async (tx) => {
        const cur = await getLayerTx(tx, p.id);
        if (!cur || cur.state === 'complete' || (cur.owner && ownerAlive(cur.owner))) return false;
        dropLayerRecord(tx, cur);
        await dropChainIndex(tx, cur);
        // A deleting layer came from a collection cascade: let it continue with the parent.
        if (cur.state === 'deleting' && cur.parent !== null && cur.kind === 'image')
          tx.put(K.gc(cur.parent), '');
        return true;
      });
    }
    case 'stale-lease':
      await releaseLease(ctx, p.id);
      return true;
    case 'pending-gc':
      await collectLayerChain(ctx, p.id);
      return true;
    case 'missing-layer-files':
      await removeDamagedLayer(ctx, p.id);
      return true;
    case 'image-missing-layer':
    case 'missing-image-blob':
      return ctx.db.transaction(async (tx) => {
        const img = await tx.get(K.image(p.id), ImageRecordSchema);
        if (!img) return false;
        for (const c of await tx.keys(K.containerByImagePrefix(img.id))) {
          await dropContainerRecord(tx, c.slice(K.containerByImagePrefix(img.id).length));
        }
        dropImageRecord(tx, img);
        if (img.topLayer) tx.put(K.gc(img.topLayer), '');
        await rm(imageDir(ctx.layout, img.id), { recursive: true, force: true });
        return true;
      });
    case 'container-missing-layer':
      return ctx.db.transaction(async (tx) => {
        const c = await tx.get(K.container(p.id), ContainerRecordSchema);
        if (!c) return false;
        const l = await getLayerTx(tx, c.layerId);
        if (l && l.state === 'complete') return false;
        await dropContainerRecord(tx, c.id);
        return true;
      });
    case 'stale-mount':
      return ctx.db.transaction(async (tx) => {
        const m = await tx.get(K.mount(p.id), MountRecordSchema);
        if (!m) return false;
        if (m.boot === bootId() && (await ctx.driver.isMounted(p.id).catch(() => false))) return false;
        tx.del(K.mount(p.id));
        return true;
      });
    case 'dangling-ref':
    case 'dangling-index':
      return ctx.db.transaction(async (tx) => {
        tx.del(p.id);
        return true;
      });
    case 'missing-ref':
      return ctx.db.transaction(async (tx) => {
        const l = await getLayerTx(tx, p.id);
        if (l?.parent) tx.put(K.ref(l.parent, holder.layer(l.id)), '');
        const img = await tx.get(K.image(p.id), ImageRecordSchema);
        if (img?.topLayer) tx.put(K.ref(img.topLayer, holder.image(img.id)), '');
        return true;
      });
    case 'orphan-image-dir':
      return ctx.db.transaction(async (tx) => {
        if (await tx.has(K.image(p.id))) return false;
        await rm(imageDir(ctx.layout, p.id), { recursive: true, force: true });
        return true;
      });
    case 'orphan-layer-files':
      return ctx.db.transaction(async (tx) => {
        if (await tx.has(K.layer(p.id))) return false;
        await removeLayerFiles(ctx, p.id);
        return true;
      });
  }
}

async function dropChainIndex(tx: Tx, l: LayerRecord): Promise<void> {
  if (l.chainID === undefined) return;
  if ((await tx.get(K.layerByChain(l.chainID), Hex64)) === l.id) tx.del(K.layerByChain(l.chainID));
}

async function dropContainerRecord(tx: Tx, id: string): Promise<void> {
  const c = await tx.get(K.container(id), ContainerRecordSchema);
  if (!c) return;
  tx.del(K.container(id));
  for (const n of c.names) tx.del(K.containerName(n));
  if (c.imageId !== null) tx.del(K.containerByImage(c.imageId, id));
}

/**
 * A complete layer lost its files: remove it and everything built on it (child layers, images,
 * containers), top-down, so no record points at missing files.
 */
async function removeDamagedLayer(ctx: Ctx, id: string): Promise<void> {
  const doomed = await ctx.db.transaction(async (tx) => {
    const all = (await tx.range(K.layerPrefix, LayerRecordSchema)).map(([, l]) => l);
    const set = new Set([id]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const l of all) {
        if (l.parent !== null && set.has(l.parent) && !set.has(l.id)) {
          set.add(l.id);
          grew = true;
        }
      }
    }
    for (const [, c] of await tx.range(K.containerPrefix, ContainerRecordSchema)) {
      if (set.has(c.layerId)) await dropContainerRecord(tx, c.id);
    }
    for (const [, img] of await tx.range(K.imagePrefix, ImageRecordSchema)) {
      if (img.layers.some((l) => set.has(l))) {
        dropImageRecord(tx, img);
        await rm(imageDir(ctx.layout, img.id), { recursive: true, force: true });
      }
    }
    const layers = all.filter((l) => set.has(l.id));
    for (const l of layers) {
      dropLayerRecord(tx, l);
      await dropChainIndex(tx, l);
      for (const r of await tx.keys(K.refPrefix(l.id))) tx.del(r);
    }
    return layers;
  });
  for (const l of doomed) {
    await ctx.driver.unmount(l.id).catch(() => undefined);
    await removeLayerFiles(ctx, l.id);
  }
}
