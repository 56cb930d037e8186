/**
 * Reading and writing an OCI image layout directory (image-spec image-layout.md): `oci-layout`,
 * `index.json`, `blobs/<alg>/<hex>`. Several images share one layout; each tag is an index.json
 * entry annotated `org.opencontainers.image.ref.name`.
 *
 * Write protocol: blobs are written to temp names in their final directory and renamed after
 * verification; `index.json` is replaced atomically and last, so a layout is never observed
 * with an index naming blobs that are not all present. Concurrent writers to one layout are
 * serialised per process only (an in-process lock on the index update).
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDigest } from '../../digest/digest.js';
import { InvalidLayoutError, NotFoundError, TooLargeError } from '../../errors.js';
import { MAX_MANIFEST_SIZE } from '../../manifest/parse.js';
import { MediaTypes } from '../../manifest/media-types.js';
import {
  ANNOTATION_REF_NAME,
  type Descriptor,
  type OciIndex,
  OciIndexSchema,
} from '../../manifest/schemas.js';
import { exists, writeFileAtomic } from '../common/files.js';

export const OCI_LAYOUT_VERSION = '1.0.0';

export function blobPath(root: string, digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return join(root, 'blobs', algorithm, hex);
}

export async function readLayoutIndex(root: string): Promise<OciIndex> {
  const object = `OCI layout ${root}`;
  let layoutText: string;
  try {
    layoutText = await readFile(join(root, 'oci-layout'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NotFoundError(`${object} (no oci-layout file)`, { cause: err });
    throw err;
  }
  try {
    const v = JSON.parse(layoutText) as { imageLayoutVersion?: unknown };
    if (typeof v.imageLayoutVersion !== 'string') throw new Error('no imageLayoutVersion');
  } catch (err) {
    throw new InvalidLayoutError(object, 'oci-layout is not valid', { cause: err });
  }
  let buf: Buffer;
  try {
    const st = await stat(join(root, 'index.json'));
    if (st.size > MAX_MANIFEST_SIZE) throw new TooLargeError(`${object} index.json`, MAX_MANIFEST_SIZE);
    buf = await readFile(join(root, 'index.json'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NotFoundError(`${object} (no index.json)`, { cause: err });
    throw err;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new InvalidLayoutError(object, 'index.json is not JSON', { cause: err });
  }
  const r = OciIndexSchema.safeParse(doc);
  if (!r.success)
    throw new InvalidLayoutError(object, `index.json: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return r.data;
}

/** Finds the index.json entry for `refName` (or the only entry when `refName` is empty). */
export function findInIndex(index: OciIndex, refName: string, object: string): Descriptor {
  if (refName) {
    const d = index.manifests.find((m) => m.annotations?.[ANNOTATION_REF_NAME] === refName);
    if (!d) throw new NotFoundError(`${object}: no image tagged ${JSON.stringify(refName)}`);
    return d;
  }
  if (index.manifests.length === 1) return index.manifests[0]!;
  if (index.manifests.length === 0) throw new NotFoundError(`${object}: layout holds no image`);
  throw new InvalidLayoutError(
    object,
    `layout holds ${index.manifests.length} images; name one (oci:<path>:<ref>)`,
  );
}

/** Creates the directory skeleton (idempotent). `oci-layout` is written only when missing. */
export async function initLayout(root: string): Promise<void> {
  await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
  if (!(await exists(join(root, 'oci-layout')))) {
    await writeFileAtomic(
      join(root, 'oci-layout'),
      JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }),
    );
  }
}

const indexLocks = new Map<string, Promise<void>>();

/**
 * Adds `desc` to index.json under `refName` (replacing an entry with the same name; without a
 * name, replacing nothing) and writes the index atomically.
 */
export async function updateLayoutIndex(root: string, desc: Descriptor, refName: string): Promise<void> {
  const prev = indexLocks.get(root) ?? Promise.resolve();
  const run = prev.then(async () => {
    let index: OciIndex = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
    if (await exists(join(root, 'index.json'))) index = await readLayoutIndex(root);
    const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
    if (desc.platform) entry.platform = desc.platform;
    if (refName) entry.annotations = { [ANNOTATION_REF_NAME]: refName };
    const manifests = index.manifests.filter((m) =>
      refName
        ? m.annotations?.[ANNOTATION_REF_NAME] !== refName
        : !(m.digest === desc.digest && !m.annotations?.[ANNOTATION_REF_NAME]),
    );
    manifests.push(entry);
    const out = { ...index, schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests };
    await writeFileAtomic(join(root, 'index.json'), JSON.stringify(out));
  });
  const settled = run.catch(() => {});
  indexLocks.set(root, settled);
  try {
    await run;
  } finally {
    if (indexLocks.get(root) === settled) indexLocks.delete(root);
  }
}
