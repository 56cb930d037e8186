/**
 * remove() and prune() with Podman's `rmi` semantics (libimage's Image.remove):
 *
 * - an image with several names, referenced by one of them: only that name is removed;
 * - referenced by ID or digest while it has several names: refused unless `force`;
 * - used by containers: refused (ImageInUseError) unless `force`, which removes those
 *   containers first (running ones killed), through `lp.containers` when they are ours and
 *   through the store when another program made them;
 * - then the record, its names and every layer nothing else uses go (the store's deleteImage).
 */
import type { ImageRecord, Store } from '@libpod-ts/storage';
import { ImageHasNamesError, ImageInUseError } from './errors.js';
import { resolvedName } from './names.js';
import type { ImageRemoveReport } from './options.js';

/** Removes a container of the store that uses an image; resolves false when no Libpod container has that storage ID. */
export type RemoveStorageContainer = (storageId: string) => Promise<boolean>;

const inUse = (err: unknown): err is { code: string; containers: string[] } =>
  (err as { code?: string })?.code === 'ERR_IMAGE_IN_USE';

export async function removeImage(
  store: Store,
  img: ImageRecord,
  ref: string,
  opts: { force: boolean; signal?: AbortSignal | undefined },
  removeContainer: RemoveStorageContainer | undefined,
): Promise<ImageRemoveReport> {
  const report: ImageRemoveReport = { untagged: [], deleted: [], removedContainers: [] };
  if (img.names.length > 1) {
    const name = resolvedName(img, ref);
    if (name !== undefined) {
      await store.untagImage(img.id, name);
      report.untagged.push(name);
      return report;
    }
    if (!opts.force) throw new ImageHasNamesError(img.id, img.names);
  }
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await store.deleteImage(img.id, opts.signal ? { signal: opts.signal } : {});
      report.untagged.push(...r.untagged);
      report.deleted.push(r.id);
      return report;
    } catch (err) {
      if (!inUse(err)) throw err;
      // Containers keep appearing (another process creating them): give up after a few rounds.
      if (!opts.force || attempt >= 3) throw new ImageInUseError(img.id, err.containers, err);
      for (const id of err.containers) {
        opts.signal?.throwIfAborted();
        const ours = removeContainer ? await removeContainer(id) : false;
        if (!ours) {
          await store.deleteContainer(id, { force: true }).catch((e: unknown) => {
            if ((e as { code?: string })?.code !== 'ERR_CONTAINER_NOT_FOUND') throw e;
          });
        }
        report.removedContainers.push(id);
      }
    }
  }
}

/** Deletes images without names that no container uses; returns their IDs. */
export function pruneImages(store: Store, signal?: AbortSignal): Promise<string[]> {
  return store.pruneDanglingImages(signal ? { signal } : {});
}
