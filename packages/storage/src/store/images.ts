/**
 * Image records. An image is its config (ID = hex of the config digest), the manifest it was
 * stored with, its top layer, names (`domain/path:tag`) and repo digests (`domain/path@digest`).
 * Names are normalised by the caller (the image package); the store only matches strings.
 *
 * Lookup order for `lookupImage(ref)` (first hit wins):
 *   1. full image ID, `sha256:<id>`, or a manifest digest (`sha256:...` of a stored manifest);
 *   2. exact name; `name@digest` against repo digests;
 *   3. the name with `:latest` when it has no tag;
 *   4. short names: `localhost/<ref>`, `docker.io/library/<ref>`, `docker.io/<ref>` (tag defaulted),
 *      then any stored name ending in `/<ref>` (more than one image: AmbiguousImageError);
 *   5. a unique ID prefix (>= 3 hex characters).
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import {
  AmbiguousImageError,
  DuplicateIdError,
  ImageInUseError,
  ImageNotFoundError,
  InvalidStoreArgumentError,
} from '../errors.js';
import type { Tx } from './db.js';
import {
  type Ctx,
  assertId,
  getLayerTx,
  hexOf,
  newId,
  nowIso,
  requireCompleteLayer,
  sha256,
} from './context.js';
import { imageDir } from './layout.js';
import { collectLayerChain } from './layers.js';
import { Hex64, type ImageRecord, ImageRecordSchema, K, holder } from './records.js';

export interface CreateImageOptions {
  /** The config JSON bytes; the image ID is the hex of their sha256. */
  config: Uint8Array;
  /** The manifest bytes, stored exactly. */
  manifest?: Uint8Array;
  manifestMediaType?: string;
  /** Top layer ID (null/absent: an image without layers). */
  topLayer?: string | null;
  /** Normalised names (`docker.io/library/busybox:latest`); a name held by another image moves here. */
  names?: string[];
  /** Repo digests (`docker.io/library/busybox@sha256:...`). */
  digests?: string[];
  metadata?: string;
  signal?: AbortSignal;
}

const NAME = /^[^\s@]+(?::[^\s:/@]+)?$/;
const REPO_DIGEST = /^[^\s@]+@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

function checkName(name: string): void {
  if (name.length === 0 || name.length > 4096 || !NAME.test(name)) {
    throw new InvalidStoreArgumentError('image name', JSON.stringify(name));
  }
}

const ConfigCreatedSchema = z.object({ created: z.string().optional() }).loose();

/** Store an image (or add names/digests to an existing one with the same config). */
export async function createImage(ctx: Ctx, opts: CreateImageOptions): Promise<ImageRecord> {
  const names = opts.names ?? [];
  const digests = opts.digests ?? [];
  names.forEach(checkName);
  for (const d of digests) {
    if (!REPO_DIGEST.test(d)) throw new InvalidStoreArgumentError('repo digest', JSON.stringify(d));
  }
  if (opts.topLayer) assertId('top layer ID', opts.topLayer);
  const configDigest = sha256(opts.config);
  const id = hexOf(configDigest);
  const manifestDigest = opts.manifest ? sha256(opts.manifest) : undefined;
  let created = nowIso();
  try {
    const c = ConfigCreatedSchema.safeParse(JSON.parse(Buffer.from(opts.config).toString('utf8')));
    if (c.success && c.data.created && !Number.isNaN(Date.parse(c.data.created))) created = c.data.created;
  } catch {
    throw new InvalidStoreArgumentError('image config', 'not JSON');
  }
  const dir = imageDir(ctx.layout, id);
  for (let attempt = 0; ; attempt++) {
    await writeImageBlobs(ctx, dir, opts);
    try {
      return await commitImage(ctx, opts, id, manifestDigest, created, dir);
    } catch (err) {
      // repair() removed our blob directory (no record yet) between the write and the commit.
      if (err === BLOBS_GONE && attempt < 3) continue;
      throw err;
    }
  }
}

const BLOBS_GONE = new Error('image blobs vanished before commit');

/** Blobs first (staged then renamed), the record after: a record never points at missing files. */
async function writeImageBlobs(ctx: Ctx, dir: string, opts: CreateImageOptions): Promise<void> {
  const stage = join(ctx.layout.tmp, `img-${newId()}`);
  await mkdir(stage, { recursive: true });
  try {
    await writeFile(join(stage, 'config'), opts.config);
    if (opts.manifest) await writeFile(join(stage, 'manifest'), opts.manifest);
    await mkdir(dir, { recursive: true });
    await rename(join(stage, 'config'), join(dir, 'config'));
    if (opts.manifest) await rename(join(stage, 'manifest'), join(dir, 'manifest'));
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

async function commitImage(
  ctx: Ctx,
  opts: CreateImageOptions,
  id: string,
  manifestDigest: string | undefined,
  created: string,
  dir: string,
): Promise<ImageRecord> {
  const names = opts.names ?? [];
  const digests = opts.digests ?? [];
  return ctx.db.transaction(async (tx) => {
    try {
      await stat(join(dir, 'config'));
      if (opts.manifest) await stat(join(dir, 'manifest'));
    } catch {
      throw BLOBS_GONE;
    }
    const layers: string[] = [];
    let size = 0;
    if (opts.topLayer) {
      let cur: string | null = opts.topLayer;
      while (cur !== null) {
        const l = await requireCompleteLayer(tx, cur);
        layers.push(l.id);
        size += l.uncompressedSize ?? l.size ?? 0;
        cur = l.parent;
      }
      layers.reverse();
    }
    const existing = await tx.get(K.image(id), ImageRecordSchema);
    if (existing && (existing.topLayer ?? null) !== (opts.topLayer ?? null)) {
      throw new DuplicateIdError('image', id);
    }
    const rec: ImageRecord = existing
      ? {
          ...existing,
          names: union(existing.names, names),
          digests: union(existing.digests, digests),
          blobs: union(
            existing.blobs,
            opts.manifest ? ['config', 'manifest'] : ['config'],
          ) as ImageRecord['blobs'],
        }
      : {
          id,
          names,
          digests,
          topLayer: opts.topLayer ?? null,
          layers,
          size,
          created,
          blobs: opts.manifest ? ['config', 'manifest'] : ['config'],
        };
    if (manifestDigest) {
      rec.manifestDigest = manifestDigest;
      if (opts.manifestMediaType) rec.manifestMediaType = opts.manifestMediaType;
      tx.put(K.imageDigest(manifestDigest, id), '');
    }
    if (opts.metadata !== undefined) rec.metadata = opts.metadata;
    for (const name of names) await moveName(tx, name, id);
    tx.put(K.image(id), rec);
    if (rec.topLayer) tx.put(K.ref(rec.topLayer, holder.image(id)), '');
    return rec;
  }, opts.signal);
}

function union<T>(a: T[], b: T[]): T[] {
  return [...new Set([...a, ...b])];
}

/** Give `name` to image `id`, taking it from whichever image had it. */
async function moveName(tx: Tx, name: string, id: string): Promise<void> {
  const prev = await tx.get(K.imageName(name), Hex64);
  if (prev && prev !== id) {
    const other = await tx.get(K.image(prev), ImageRecordSchema);
    if (other) tx.put(K.image(prev), { ...other, names: other.names.filter((n) => n !== name) });
  }
  tx.put(K.imageName(name), id);
}

export async function lookupImageTx(tx: Tx, ref: string): Promise<ImageRecord> {
  const get = (id: string) => tx.get(K.image(id), ImageRecordSchema);
  const byName = async (name: string) => {
    const id = await tx.get(K.imageName(name), Hex64);
    return id ? get(id) : undefined;
  };
  if (ref.length === 0 || ref.length > 4096) throw new ImageNotFoundError(ref);
  const bare = ref.startsWith('sha256:') ? ref.slice(7) : ref;
  if (/^[a-f0-9]{64}$/.test(bare)) {
    const img = await get(bare);
    if (img) return img;
    const byDigest = await tx.keys(K.imageDigestPrefix(`sha256:${bare}`), { limit: 1 });
    if (byDigest[0]) {
      const img2 = await get(byDigest[0].slice(K.imageDigestPrefix(`sha256:${bare}`).length));
      if (img2) return img2;
    }
  }
  const exact = await byName(ref);
  if (exact) return exact;
  const at = ref.indexOf('@');
  if (at > 0) {
    const digest = ref.slice(at + 1);
    const repo = ref.slice(0, at).replace(/:[^/:]+$/, '');
    for (const key of await tx.keys(K.imageDigestPrefix(digest))) {
      const img = await get(key.slice(K.imageDigestPrefix(digest).length));
      if (img) return img;
    }
    // Repo digests from other manifests (same config, e.g. another compression).
    for (const [, img] of await tx.range(K.imagePrefix, ImageRecordSchema)) {
      if (img.digests.some((d) => d === `${repo}@${digest}` || d.endsWith(`/${repo}@${digest}`))) return img;
    }
    throw new ImageNotFoundError(ref);
  }
  const lastPart = ref.slice(ref.lastIndexOf('/') + 1);
  const withTag = lastPart.includes(':') ? ref : `${ref}:latest`;
  if (withTag !== ref) {
    const img = await byName(withTag);
    if (img) return img;
  }
  const first = ref.split('/')[0]!;
  const hasDomain =
    ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasDomain) {
    for (const prefix of ['localhost/', 'docker.io/library/', 'docker.io/']) {
      const img = await byName(prefix + withTag);
      if (img) return img;
    }
    const matches = new Set<string>();
    for (const key of await tx.keys(K.imageNamePrefix)) {
      const name = key.slice(K.imageNamePrefix.length);
      if (name.endsWith(`/${withTag}`)) {
        const id = await tx.get(key, Hex64);
        if (id) matches.add(id);
      }
    }
    if (matches.size > 1) throw new AmbiguousImageError(ref, [...matches]);
    const [only] = matches;
    if (only) {
      const img = await get(only);
      if (img) return img;
    }
  }
  if (/^[a-f0-9]{3,63}$/.test(bare)) {
    const hits = await tx.range(`${K.imagePrefix}${bare}`, ImageRecordSchema, { limit: 2 });
    if (hits.length > 1)
      throw new AmbiguousImageError(
        ref,
        hits.map(([, i]) => i.id),
      );
    if (hits[0]) return hits[0][1];
  }
  throw new ImageNotFoundError(ref);
}

export async function tagImage(ctx: Ctx, ref: string, name: string): Promise<ImageRecord> {
  checkName(name);
  return ctx.db.transaction(async (tx) => {
    const img = await lookupImageTx(tx, ref);
    await moveName(tx, name, img.id);
    const rec = { ...img, names: union(img.names, [name]) };
    tx.put(K.image(img.id), rec);
    return rec;
  });
}

export async function untagImage(ctx: Ctx, ref: string, name: string): Promise<ImageRecord> {
  return ctx.db.transaction(async (tx) => {
    const img = await lookupImageTx(tx, ref);
    if (!img.names.includes(name)) throw new ImageNotFoundError(name);
    const rec = { ...img, names: img.names.filter((n) => n !== name) };
    tx.put(K.image(img.id), rec);
    tx.del(K.imageName(name));
    return rec;
  });
}

export interface DeleteImageResult {
  id: string;
  untagged: string[];
  deletedLayers: string[];
}

/**
 * Delete an image: record and names first (one transaction), then its blob files, then every
 * layer of its chain that nothing else uses. Refused while containers use the image.
 */
export async function deleteImage(ctx: Ctx, ref: string, signal?: AbortSignal): Promise<DeleteImageResult> {
  const img = await ctx.db.transaction(async (tx) => {
    const img = await lookupImageTx(tx, ref);
    const users = await tx.keys(K.containerByImagePrefix(img.id));
    if (users.length > 0) {
      throw new ImageInUseError(
        img.id,
        users.map((k) => k.slice(K.containerByImagePrefix(img.id).length)),
      );
    }
    dropImageRecord(tx, img);
    if (img.topLayer) tx.put(K.gc(img.topLayer), '');
    return img;
  }, signal);
  await rm(imageDir(ctx.layout, img.id), { recursive: true, force: true });
  const deletedLayers = await collectLayerChain(ctx, img.topLayer, signal);
  return { id: img.id, untagged: img.names, deletedLayers };
}

export function dropImageRecord(tx: Tx, img: ImageRecord): void {
  tx.del(K.image(img.id));
  for (const n of img.names) tx.del(K.imageName(n));
  if (img.manifestDigest) tx.del(K.imageDigest(img.manifestDigest, img.id));
  if (img.topLayer) tx.del(K.ref(img.topLayer, holder.image(img.id)));
}

/** Delete images without names that no container uses. Returns their IDs. */
export async function pruneDanglingImages(ctx: Ctx, signal?: AbortSignal): Promise<string[]> {
  const candidates = await ctx.db.transaction(async (tx) => {
    const out: string[] = [];
    for (const [, img] of await tx.range(K.imagePrefix, ImageRecordSchema)) {
      if (
        img.names.length === 0 &&
        (await tx.keys(K.containerByImagePrefix(img.id), { limit: 1 })).length === 0
      ) {
        out.push(img.id);
      }
    }
    return out;
  }, signal);
  const deleted: string[] = [];
  for (const id of candidates) {
    try {
      // Re-checked under the lock: someone may have tagged it or created a container since.
      const still = await ctx.db.transaction(async (tx) => {
        const img = await tx.get(K.image(id), ImageRecordSchema);
        return img !== undefined && img.names.length === 0;
      });
      if (!still) continue;
      await deleteImage(ctx, id, signal);
      deleted.push(id);
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_IMAGE_IN_USE') continue;
      if ((err as { code?: string }).code === 'ERR_IMAGE_NOT_FOUND') continue;
      throw err;
    }
  }
  return deleted;
}

export async function readImageBlob(ctx: Ctx, id: string, blob: 'config' | 'manifest'): Promise<Buffer> {
  assertId('image ID', id);
  return readFile(join(imageDir(ctx.layout, id), blob));
}

const HistorySchema = z
  .object({
    history: z
      .array(
        z
          .object({
            created: z.string().optional(),
            created_by: z.string().optional(),
            comment: z.string().optional(),
            author: z.string().optional(),
            empty_layer: z.boolean().optional(),
          })
          .loose(),
      )
      .optional(),
  })
  .loose();

export interface HistoryEntry {
  created?: string;
  createdBy?: string;
  comment?: string;
  author?: string;
  emptyLayer: boolean;
  /** The layer this step produced (undefined for empty steps). */
  layerId?: string;
  /** Uncompressed size of that layer. */
  size: number;
}

/** The image's history from its config, oldest first, each non-empty step paired with its layer. */
export async function imageHistory(ctx: Ctx, ref: string): Promise<HistoryEntry[]> {
  const img = await ctx.db.transaction((tx) => lookupImageTx(tx, ref));
  const config = HistorySchema.parse(
    JSON.parse((await readImageBlob(ctx, img.id, 'config')).toString('utf8')),
  );
  const sizes = await ctx.db.transaction(async (tx) => {
    const out: number[] = [];
    for (const l of img.layers) {
      const rec = await getLayerTx(tx, l);
      out.push(rec?.uncompressedSize ?? rec?.size ?? 0);
    }
    return out;
  });
  let li = 0;
  return (config.history ?? []).map((h) => {
    const empty = h.empty_layer === true;
    const layerId = empty ? undefined : img.layers[li];
    const size = empty ? 0 : (sizes[li] ?? 0);
    if (!empty) li++;
    return {
      created: h.created,
      createdBy: h.created_by,
      comment: h.comment,
      author: h.author,
      emptyLayer: empty,
      layerId,
      size,
    };
  });
}
