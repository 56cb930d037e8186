/**
 * save() and load(): images between the store and archives, as `podman save` / `podman load`.
 *
 * save formats (Podman's): `docker-archive` (several images in one file, `docker load` reads it),
 * `oci-archive` (a tar of an OCI layout; one image, its index entry named by the image's full
 * name), `oci-dir` / `docker-dir` (skopeo's `dir:` format with an OCI or a Docker schema 2
 * manifest; one image). Outputs replace what was there atomically: a failed or aborted save leaves
 * the previous file or directory, and no temp file.
 *
 * load reads `manifest.json` (docker-archive) or `index.json` (oci-archive) from the tar to list
 * its images, then copies each into the store. Names: a docker-archive's RepoTags are Docker's
 * familiar names (`busybox:1` = `docker.io/library/busybox:1`); an oci-archive's ref.name
 * annotation is taken as a name normalised like tag() (short -> `localhost/`), and an annotation
 * that is no valid name (or none) leaves the image unnamed, reported as `sha256:<id>`.
 */
import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import {
  ANNOTATION_REF_NAME,
  copy,
  DirReference,
  DockerArchiveReference,
  DockerArchiveWriter,
  dirTransport,
  dockerArchiveTransport,
  type ImageReference,
  OciArchiveReference,
  ociArchiveTransport,
  parseNormalizedNamed,
} from '@libpod-ts/image';
import type { ImageRecord, Store } from '@libpod-ts/storage';
import { z } from 'zod';
import { InvalidOptionsError } from '../errors.js';
import { ImageArchiveError } from './errors.js';
import { normalizeTagName, resolvedName } from './names.js';
import type { SaveFormat } from './options.js';
import { readTarMembers } from './tar-members.js';
import { copyOptions, imageIdOf, storageSource, type TransferOptions, transportsFor } from './transfer.js';

/** manifest.json / index.json larger than this is refused (they list images, not content). */
const MAX_INDEX_SIZE = 4 << 20;

export interface SaveItem {
  img: ImageRecord;
  /** The stored name the reference resolved to (undefined: saved by ID, without a name). */
  name: string | undefined;
}

function siblingTemp(output: string): string {
  return join(dirname(output), `.${basename(output)}.tmp-${randomBytes(6).toString('hex')}`);
}

export async function saveImages(
  store: Store,
  items: SaveItem[],
  format: SaveFormat,
  output: string,
  opts: TransferOptions,
): Promise<void> {
  const out = resolve(output);
  const transports = transportsFor(store);
  // One entry per distinct (image, name): saving `a` and `a:latest` writes one image.
  const seen = new Set<string>();
  const unique = items.filter((i) => {
    const k = `${i.img.id}\0${i.name ?? ''}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  if (format !== 'docker-archive' && unique.length > 1) {
    throw new InvalidOptionsError('save options', [
      { path: 'format', message: `${format} holds one image; use docker-archive for ${unique.length}` },
    ]);
  }
  if (format === 'docker-archive') {
    const writer = await DockerArchiveWriter.create(out, opts.ctx ?? {});
    try {
      for (const it of unique) {
        await copy(
          storageSource(transports, it.img),
          writer.reference(it.name),
          copyOptions({ ...opts, manifestFormat: 'docker' }),
        );
      }
      await writer.commit(opts.signal);
    } finally {
      await writer.close();
    }
    return;
  }
  const it = unique[0]!;
  const src = storageSource(transports, it.img);
  if (format === 'oci-archive') {
    // Written beside the output and renamed over it: the archive transport adds to an existing
    // archive, `podman save` replaces it.
    const tmp = siblingTemp(out);
    try {
      await copy(src, new OciArchiveReference(ociArchiveTransport(), tmp, it.name ?? ''), copyOptions(opts));
      await rename(tmp, out);
    } finally {
      await rm(tmp, { force: true });
    }
    return;
  }
  await copy(
    src,
    new DirReference(dirTransport(), out),
    copyOptions({ ...opts, manifestFormat: format === 'oci-dir' ? 'oci' : 'docker' }),
  );
}

const DockerManifestJson = z.array(
  z
    .object({ Config: z.string(), RepoTags: z.array(z.string()).nullish(), Layers: z.array(z.string()) })
    .loose(),
);
const OciIndexJson = z
  .object({
    manifests: z.array(z.object({ annotations: z.record(z.string(), z.string()).nullish() }).loose()),
  })
  .loose();

interface LoadPlan {
  source: ImageReference;
  /** Normalised names to give the image (first one with the copy, the rest as tags). */
  names: string[];
}

function parseJson(path: string, member: string, bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new ImageArchiveError(path, `${member} is not JSON`, { cause: err });
  }
}

async function planLoad(
  path: string,
  format: 'docker-archive' | 'oci-archive' | undefined,
  signal?: AbortSignal,
): Promise<LoadPlan[]> {
  const members = await readTarMembers(path, ['manifest.json', 'index.json'], MAX_INDEX_SIZE, signal);
  const manifestJson = members.get('manifest.json');
  const indexJson = members.get('index.json');
  // Docker 25+ archives carry both; manifest.json has the names Docker gave.
  const kind = format ?? (manifestJson ? 'docker-archive' : indexJson ? 'oci-archive' : undefined);
  if (kind === 'docker-archive') {
    if (!manifestJson) throw new ImageArchiveError(path, 'no manifest.json (not a docker-archive)');
    const parsed = DockerManifestJson.safeParse(parseJson(path, 'manifest.json', manifestJson));
    if (!parsed.success) throw new ImageArchiveError(path, 'manifest.json has an unexpected structure');
    const t = dockerArchiveTransport();
    return parsed.data.map((item, index) => ({
      source: new DockerArchiveReference(t, path, { kind: 'index', index }),
      names: (item.RepoTags ?? []).map((tag) => {
        try {
          return parseNormalizedNamed(tag).withDefaultTag().toString();
        } catch (err) {
          throw new ImageArchiveError(path, `invalid RepoTags entry ${JSON.stringify(tag)}`, { cause: err });
        }
      }),
    }));
  }
  if (kind === 'oci-archive') {
    if (!indexJson) throw new ImageArchiveError(path, 'no index.json (not an oci-archive)');
    const parsed = OciIndexJson.safeParse(parseJson(path, 'index.json', indexJson));
    if (!parsed.success) throw new ImageArchiveError(path, 'index.json has an unexpected structure');
    const t = ociArchiveTransport();
    const entries = parsed.data.manifests;
    const unnamed = entries.filter((m) => !m.annotations?.[ANNOTATION_REF_NAME]).length;
    if (unnamed > 0 && entries.length > 1) {
      throw new ImageArchiveError(
        path,
        `${unnamed} of its ${entries.length} images have no ${ANNOTATION_REF_NAME}; only named images can be selected`,
      );
    }
    return entries.map((m) => {
      const ref = m.annotations?.[ANNOTATION_REF_NAME] ?? '';
      let names: string[] = [];
      try {
        if (ref) names = [normalizeTagName(ref).toString()];
      } catch {
        // not a name (e.g. a bare digest): the image stays unnamed
      }
      return { source: new OciArchiveReference(t, path, ref), names };
    });
  }
  throw new ImageArchiveError(
    path,
    'neither manifest.json nor index.json found (not a docker- or oci-archive)',
  );
}

/** Copies every image of the archive into the store; returns their names (`sha256:<id>` for unnamed ones). */
export async function loadImages(
  store: Store,
  path: string,
  format: 'docker-archive' | 'oci-archive' | undefined,
  opts: TransferOptions,
): Promise<string[]> {
  const abs = resolve(path);
  const plans = await planLoad(abs, format, opts.signal);
  if (plans.length === 0) throw new ImageArchiveError(abs, 'the archive holds no image');
  const transports = transportsFor(store);
  const loaded: string[] = [];
  for (const p of plans) {
    const [first, ...rest] = p.names;
    const dest = transports.parseImageName(`containers-storage:${first ?? ''}`);
    const id = imageIdOf(await copy(p.source, dest, copyOptions(opts)));
    for (const n of rest) await store.tagImage(id, n);
    loaded.push(...(p.names.length > 0 ? p.names : [`sha256:${id}`]));
  }
  return loaded;
}

/** What save() needs for one reference. */
export function saveItem(img: ImageRecord, ref: string): SaveItem {
  return { img, name: resolvedName(img, ref) };
}
