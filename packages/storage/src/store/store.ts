/**
 * `openStore()` and the Store facade. Layout on disk: see layout.ts; records and invariants:
 * records.ts; locking: db.ts; layer lifecycle: layers.ts; containers and mounts: containers.ts;
 * check/repair: check.ts. Decisions: docs/decisions/storage-store.md.
 *
 * A Store object holds no lock and no open database between calls: any number of processes
 * (and Store objects) may use one root at once. Each call is one or more short transactions.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createDriver } from '../drivers/registry.js';
import type { Change, Driver, DriverName } from '../drivers/types.js';
import { DriverUnavailableError, LayerNotFoundError, StoreClosedError, StoreConfigError } from '../errors.js';
import { type CheckReport, type Problem, type RepairReport, check, recoverCrashes, repair } from './check.js';
import {
  type CreateContainerOptions,
  type DeleteContainerOptions,
  type MountLayerOptions,
  containerChanges,
  containerDiff,
  createContainer,
  deleteContainer,
  getContainerTx,
  layerDiff,
  listContainers,
  mountCount,
  mountLayer,
  unmountLayer,
} from './containers.js';
import { type Ctx, getLayerTx } from './context.js';
import { MetaDb, type TxStats } from './db.js';
import {
  type CreateImageOptions,
  type DeleteImageResult,
  type HistoryEntry,
  createImage,
  deleteImage,
  imageHistory,
  lookupImageTx,
  pruneDanglingImages,
  readImageBlob,
  tagImage,
  untagImage,
} from './images.js';
import { type Layout, layoutFor } from './layout.js';
import {
  type CreateLayerOptions,
  type CreateLayerResult,
  createLayer,
  createLease,
  deleteLayer,
  layerTar,
  layersByBlobDigest,
  leaseLayer,
  recordBlobDigest,
  releaseLease,
} from './layers.js';
import { bootId } from './owner.js';
import {
  type ContainerRecord,
  Hex64,
  type ImageRecord,
  ImageRecordSchema,
  K,
  type LayerRecord,
  LayerRecordSchema,
  MountRecordSchema,
  STORE_VERSION,
  type StoreMeta,
  StoreMetaSchema,
} from './records.js';

export interface StoreOptions {
  /** Persistent root (layers, records, image blobs). Created if missing. */
  root: string;
  /** Runtime root (state that must not survive a reboot). Created if missing. */
  runRoot: string;
  /** Storage driver; a store keeps the driver it was created with. A Driver object is used as is. */
  driver: DriverName | Driver;
  /** How long an operation waits for the database lock held by other processes (default 120 s). */
  lockTimeoutMs?: number;
  /**
   * How long the database (the store's lock) stays open after a call when no other process
   * waits for it (default 10 ms; 0 closes after every transaction).
   */
  lingerMs?: number;
  signal?: AbortSignal;
}

/** Open (creating if needed) the store at `root`; removes what dead writers left behind. */
export async function openStore(opts: StoreOptions): Promise<Store> {
  const driverName = typeof opts.driver === 'string' ? opts.driver : opts.driver.name;
  const layout = layoutFor(opts.root, opts.runRoot, driverName);
  await mkdir(layout.root, { recursive: true, mode: 0o700 });
  await mkdir(layout.runRoot, { recursive: true, mode: 0o700 });
  await mkdir(layout.images, { recursive: true });
  await mkdir(layout.tmp, { recursive: true });
  await mkdir(layout.tarsplit, { recursive: true });
  const driver =
    typeof opts.driver === 'string' ? createDriver(opts.driver, { home: layout.driverHome }) : opts.driver;
  // A successful probe (overlay mounts a test overlay: 50-600 ms) is remembered for this boot.
  const probeMarker = join(layout.runRoot, `storage-probe-${driver.name}`);
  const boot = bootId();
  if (boot === '' || (await readFile(probeMarker, 'utf8').catch(() => '')) !== boot) {
    const probe = await driver.probe();
    if (!probe.ok) throw new DriverUnavailableError(driver.name, probe.reason ?? 'probe failed');
    if (boot !== '') await writeFile(probeMarker, boot);
  }
  const db = new MetaDb(layout.db, { lockTimeoutMs: opts.lockTimeoutMs, lingerMs: opts.lingerMs });
  await db.transaction(async (tx) => {
    const meta = await tx.get(K.meta, StoreMetaSchema);
    if (!meta) {
      const m: StoreMeta = { version: STORE_VERSION, driver: driver.name, created: new Date().toISOString() };
      tx.put(K.meta, m);
      return;
    }
    if (meta.version > STORE_VERSION) {
      throw new StoreConfigError(
        layout.root,
        `layout version ${meta.version} is newer than ${STORE_VERSION}`,
      );
    }
    if (meta.driver !== driver.name) {
      throw new StoreConfigError(
        layout.root,
        `created with driver ${meta.driver}, opened with ${driver.name}`,
      );
    }
  }, opts.signal);
  const store = new Store({ layout, db, driver });
  await store.recoverAtOpen(opts.signal);
  return store;
}

export class Store implements AsyncDisposable {
  readonly root: string;
  readonly runRoot: string;
  readonly driver: Driver;
  private readonly ctx: Ctx;
  private closed = false;
  private readonly inflight = new Set<Promise<unknown>>();
  /** Problems recovered at open (dead writers, stale leases, interrupted removals). */
  recovered: Problem[] = [];

  /** @internal use openStore() */
  constructor(ctx: Ctx) {
    this.ctx = ctx;
    this.root = ctx.layout.root;
    this.runRoot = ctx.layout.runRoot;
    this.driver = ctx.driver;
  }

  /** @internal */
  get layout(): Layout {
    return this.ctx.layout;
  }

  /** Database transaction statistics of this process (for benchmarks). */
  get stats(): TxStats {
    return { ...this.ctx.db.stats };
  }

  /** @internal */
  async recoverAtOpen(signal?: AbortSignal): Promise<void> {
    this.recovered = await recoverCrashes(this.ctx, signal);
    await this.ctx.driver.recover?.();
    // First open after a reboot: mount counts are stale (their boot id differs); drop them now.
    const boot = bootId();
    const prev = await readFile(this.ctx.layout.bootMarker, 'utf8').catch(() => '');
    if (prev !== boot) {
      await this.ctx.db.transaction(async (tx) => {
        for (const [k, m] of await tx.range(K.mountPrefix, MountRecordSchema)) {
          if (m.boot !== boot) tx.del(k);
        }
      }, signal);
      await writeFile(this.ctx.layout.bootMarker, boot);
    }
  }

  private run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StoreClosedError(this.root));
    const p = fn();
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Waits for calls in flight, then refuses new ones. Idempotent. Holds no lock, so cheap. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.inflight]);
    await this.ctx.driver.settle?.();
    this.ctx.driver.close?.();
    await this.ctx.db.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // --- layers ---

  /** Create a layer from a tar stream (or find it by content ID); see CreateLayerOptions. */
  createLayer(opts: CreateLayerOptions = {}): Promise<CreateLayerResult> {
    return this.run(() => createLayer(this.ctx, opts));
  }

  /** The layer record; LayerNotFoundError when absent or not complete. */
  getLayer(id: string): Promise<LayerRecord> {
    return this.run(() =>
      this.ctx.db.transaction(async (tx) => {
        const l = await getLayerTx(tx, id);
        if (l?.state !== 'complete') throw new LayerNotFoundError(id);
        return l;
      }),
    );
  }

  /** All complete layers. */
  listLayers(): Promise<LayerRecord[]> {
    return this.run(() =>
      this.ctx.db.transaction(async (tx) =>
        (await tx.range(K.layerPrefix, LayerRecordSchema))
          .map(([, l]) => l)
          .filter((l) => l.state === 'complete'),
      ),
    );
  }

  /** Complete layers whose uncompressed content has this diffID (several parents possible). */
  layersByDiffID(diffID: string): Promise<LayerRecord[]> {
    return this.run(() =>
      this.ctx.db.transaction(async (tx) => {
        const out: LayerRecord[] = [];
        for (const k of await tx.keys(K.layerByDiffPrefix(diffID))) {
          const l = await getLayerTx(tx, k.slice(K.layerByDiffPrefix(diffID).length));
          if (l?.state === 'complete') out.push(l);
        }
        return out;
      }),
    );
  }

  /** Complete layers whose content came from the compressed blob `digest` (for pull skipping). */
  layersByBlobDigest(digest: string): Promise<LayerRecord[]> {
    return this.run(() => layersByBlobDigest(this.ctx, digest));
  }

  /** Record a verified compressed blob digest of a layer's content (see layersByBlobDigest). */
  recordBlobDigest(id: string, digest: string, size: number): Promise<void> {
    return this.run(() => recordBlobDigest(this.ctx, id, digest, size));
  }

  /** The complete layer with this chainID, if any. */
  layerByChainID(chainID: string): Promise<LayerRecord | undefined> {
    return this.run(() =>
      this.ctx.db.transaction(async (tx) => {
        const id = await tx.get(K.layerByChain(chainID), Hex64);
        const l = id ? await getLayerTx(tx, id) : undefined;
        return l?.state === 'complete' ? l : undefined;
      }),
    );
  }

  /** Delete an unused layer (LayerInUseError / LayerMountedError otherwise). */
  async deleteLayer(id: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.run(() => deleteLayer(this.ctx, id, opts));
  }

  /** Mount a layer read-only or read-write (refcounted across processes); returns the path. */
  mountLayer(id: string, opts: MountLayerOptions = {}): Promise<string> {
    return this.run(() => mountLayer(this.ctx, id, opts));
  }

  unmountLayer(id: string, opts: { force?: boolean } = {}): Promise<number> {
    return this.run(() => unmountLayer(this.ctx, id, opts));
  }

  /**
   * The layer's uncompressed tar exactly as it was applied (its sha256 is the diffID), rebuilt
   * from the layer's files; for layers created without a tar, the driver's diff.
   */
  layerTar(id: string): Promise<Readable> {
    return this.run(() => layerTar(this.ctx, id));
  }

  /** The uncompressed tar of a layer's changes (whiteouts for deletions). */
  layerDiff(id: string): Promise<Readable> {
    return this.run(() => layerDiff(this.ctx, id));
  }

  // --- leases ---

  /** A lease keeps layers alive during an operation; released (or dead-owner) leases let them go. */
  createLease(): Promise<string> {
    return this.run(() => createLease(this.ctx));
  }

  leaseLayer(lease: string, layerId: string): Promise<LayerRecord> {
    return this.run(() => leaseLayer(this.ctx, lease, layerId));
  }

  /** Returns the layers deleted because nothing else held them. */
  releaseLease(lease: string): Promise<string[]> {
    return this.run(() => releaseLease(this.ctx, lease));
  }

  // --- images ---

  createImage(opts: CreateImageOptions): Promise<ImageRecord> {
    return this.run(() => createImage(this.ctx, opts));
  }

  /** Find an image by ID, ID prefix, digest, full or short name (see images.ts for the order). */
  lookupImage(ref: string): Promise<ImageRecord> {
    return this.run(() => this.ctx.db.transaction((tx) => lookupImageTx(tx, ref)));
  }

  listImages(): Promise<ImageRecord[]> {
    return this.run(() =>
      this.ctx.db.transaction(async (tx) =>
        (await tx.range(K.imagePrefix, ImageRecordSchema)).map(([, i]) => i),
      ),
    );
  }

  tagImage(ref: string, name: string): Promise<ImageRecord> {
    return this.run(() => tagImage(this.ctx, ref, name));
  }

  untagImage(ref: string, name: string): Promise<ImageRecord> {
    return this.run(() => untagImage(this.ctx, ref, name));
  }

  deleteImage(ref: string, opts: { signal?: AbortSignal } = {}): Promise<DeleteImageResult> {
    return this.run(() => deleteImage(this.ctx, ref, opts.signal));
  }

  pruneDanglingImages(opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    return this.run(() => pruneDanglingImages(this.ctx, opts.signal));
  }

  imageHistory(ref: string): Promise<HistoryEntry[]> {
    return this.run(() => imageHistory(this.ctx, ref));
  }

  /** The config or manifest bytes stored with an image (by image ID). */
  imageBlob(id: string, blob: 'config' | 'manifest'): Promise<Buffer> {
    return this.run(() => readImageBlob(this.ctx, id, blob));
  }

  // --- containers ---

  createContainer(opts: CreateContainerOptions = {}): Promise<ContainerRecord> {
    return this.run(() => createContainer(this.ctx, opts));
  }

  getContainer(ref: string): Promise<ContainerRecord> {
    return this.run(() => this.ctx.db.transaction((tx) => getContainerTx(tx, ref)));
  }

  listContainers(): Promise<ContainerRecord[]> {
    return this.run(() => listContainers(this.ctx));
  }

  deleteContainer(ref: string, opts: DeleteContainerOptions = {}): Promise<void> {
    return this.run(() => deleteContainer(this.ctx, ref, opts));
  }

  /** Mount the container's rootfs read-write (refcounted across processes); returns the path. */
  mount(ref: string, opts: MountLayerOptions = {}): Promise<string> {
    return this.run(async () => {
      const c = await this.ctx.db.transaction((tx) => getContainerTx(tx, ref));
      return mountLayer(this.ctx, c.layerId, { ...(c.volatile ? { volatile: true } : {}), ...opts });
    });
  }

  /** Drop one mount reference (all with `force`); returns the remaining count. */
  unmount(ref: string, opts: { force?: boolean } = {}): Promise<number> {
    return this.run(async () => {
      const c = await this.ctx.db.transaction((tx) => getContainerTx(tx, ref));
      return unmountLayer(this.ctx, c.layerId, opts);
    });
  }

  /** Current mount count of a container (0 after a reboot). */
  mountCount(ref: string): Promise<number> {
    return this.run(async () => {
      const c = await this.ctx.db.transaction((tx) => getContainerTx(tx, ref));
      return mountCount(this.ctx, c.layerId);
    });
  }

  /** Paths added / modified / deleted in the container's layer relative to its image. */
  changes(ref: string): Promise<Change[]> {
    return this.run(() => containerChanges(this.ctx, ref));
  }

  /** The container's changes as an uncompressed OCI layer tar (whiteouts for deletions). */
  diff(ref: string): Promise<Readable> {
    return this.run(() => containerDiff(this.ctx, ref));
  }

  // --- consistency ---

  check(opts: { signal?: AbortSignal } = {}): Promise<CheckReport> {
    return this.run(() => check(this.ctx, opts.signal));
  }

  repair(opts: { signal?: AbortSignal } = {}): Promise<RepairReport> {
    return this.run(() => repair(this.ctx, opts.signal));
  }
}
