/**
 * `lp.images`: the images in the store, with Podman's operations (pull, push, tag, untag,
 * save, load, inspect, remove, prune). A thin facade: records and layers are
 * `@libpod-ts/storage`'s, every copy is `@libpod-ts/image`'s copy() (with its AbortSignal and
 * progress events), the rules Podman adds on top live in the modules beside this one.
 *
 * Every reference argument resolves like the store's lookupImage (ID, ID prefix, digest, full
 * or short name); an unknown one is ImageNotFoundError, one matching several images
 * AmbiguousImageError. Options are validated by the exported zod schemas (InvalidOptionsError).
 */
import type { ImageRecord, Store } from '@libpod-ts/storage';
import { ImageNotFoundError, InvalidOptionsError } from '../errors.js';
import type { EventAction, EventLog } from '../events/events.js';
import { parseOptions } from '../containers/options.js';
import type { StorageIntegration } from '../storage-integration.js';
import { loadImages, saveImages, saveItem } from './archive.js';
import { fromStoreError, ImageTagNotFoundError } from './errors.js';
import { type ImageInspect, inspectImage } from './inspect.js';
import { normalizeTagName } from './names.js';
import {
  type ImageRemoveReport,
  LoadOptions,
  PruneOptions,
  PullOptions,
  PushOptions,
  RemoveImageOptions,
  SaveOptions,
} from './options.js';
import { pruneImages, type RemoveStorageContainer, removeImage } from './remove.js';
import { pullInto, pushFrom } from './transfer.js';

export interface ImagesHooks {
  /** Removes the Libpod container using this storage container (force remove); false if none. */
  removeContainer?: RemoveStorageContainer;
  /** Where image events go (podman writes pull, push, tag, untag, save, loadfromarchive, remove). */
  events?: EventLog;
}

export class Images {
  constructor(
    private readonly storage: StorageIntegration | undefined,
    private readonly hooks: ImagesHooks = {},
  ) {}

  /** The underlying store (opened on first use). */
  async store(): Promise<Store> {
    if (!this.storage)
      throw new InvalidOptionsError('Libpod options', [
        { path: 'storage', message: 'opened without storage' },
      ]);
    return this.storage.open();
  }

  async list(): Promise<ImageRecord[]> {
    return (await this.store()).listImages();
  }

  /** The image record for a name, ID, ID prefix or digest; ImageNotFoundError when absent. */
  async get(ref: string): Promise<ImageRecord> {
    const store = await this.store();
    return lookup(store, ref);
  }

  async exists(ref: string): Promise<boolean> {
    return this.get(ref).then(
      () => true,
      (err) => {
        if (err instanceof ImageNotFoundError) return false;
        throw err;
      },
    );
  }

  /**
   * Copies an image into the store with `@libpod-ts/image` (`docker://` when `source` names no
   * transport; `oci:`, `oci-archive:`, `docker-archive:`, `dir:` too) and returns its record.
   * `name` is the name in the store; default: the source's registry name (required for sources
   * that have none, like `oci:` layouts).
   */
  async pull(source: string, opts: PullOptions = {}): Promise<ImageRecord> {
    const o = parseOptions(PullOptions, 'pull options', opts);
    const store = await this.store();
    const id = await pullInto(store, source, o.name, o);
    await this.emit('pull', id, o.name ?? source);
    return lookup(store, id);
  }

  /** An image event; the operation has happened, so a failing events log does not undo it. */
  private async emit(action: EventAction, id: string, name: string): Promise<void> {
    await this.hooks.events?.write({ type: 'image', action, id, name, attributes: {} }).catch(() => {});
  }

  /**
   * Copies an image of the store to `destination`: `docker://host/repo:tag` or any transport
   * (`oci:`, `oci-archive:`, `docker-archive:`, `dir:`); a destination without a transport is a
   * registry name. Default destination: the name `ref` resolved to (`podman push <name>`).
   * Layers are compressed as the destination wants (gzip for registries).
   */
  async push(
    ref: string,
    destination?: string,
    opts: PushOptions = {},
  ): Promise<{ manifestDigest: string; destination: string }> {
    const o = parseOptions(PushOptions, 'push options', opts);
    const store = await this.store();
    const img = await lookup(store, ref);
    const pushed = await pushFrom(store, img, ref, destination, {
      ctx: o.ctx,
      signal: o.signal,
      onProgress: o.onProgress,
      compression: o.compression,
      manifestFormat: o.format,
    });
    await this.emit('push', img.id, pushed.destination);
    return pushed;
  }

  /**
   * Adds a name to an image (`podman tag`): short names become `localhost/<name>`, `:latest` is
   * added; a name held by another image moves here. Returns the updated record.
   */
  async tag(ref: string, newName: string): Promise<ImageRecord> {
    const name = normalizeTagName(newName).toString();
    const store = await this.store();
    let rec: ImageRecord;
    try {
      rec = await store.tagImage(ref, name);
    } catch (err) {
      throw fromStoreError(err, ref);
    }
    await this.emit('tag', rec.id, name);
    return rec;
  }

  /**
   * Removes a name from an image (`podman untag`), normalised as by tag(); without `name`, every
   * name. ImageTagNotFoundError when the image does not carry it. The image stays (unnamed
   * images are what prune() removes).
   */
  async untag(ref: string, name?: string): Promise<ImageRecord> {
    const store = await this.store();
    const img = await lookup(store, ref);
    const names = name === undefined ? img.names : [normalizeTagName(name).toString()];
    let rec = img;
    for (const n of names) {
      if (!rec.names.includes(n)) throw new ImageTagNotFoundError(img.id, n);
      try {
        rec = await store.untagImage(img.id, n);
      } catch (err) {
        if ((err as { code?: string }).code === 'ERR_IMAGE_NOT_FOUND')
          throw new ImageTagNotFoundError(img.id, n);
        throw err;
      }
      await this.emit('untag', img.id, n);
    }
    return rec;
  }

  /** Podman's `image inspect` document for one image. */
  async inspect(ref: string): Promise<ImageInspect> {
    const store = await this.store();
    return inspectImage(store, await lookup(store, ref));
  }

  /**
   * Writes images to an archive or directory (`podman save`): `docker-archive` (default; several
   * images), `oci-archive`, `oci-dir`, `docker-dir` (one image each). Images named by a name
   * keep it in the archive; images named by ID are saved without one.
   */
  async save(refs: string | readonly string[], opts: SaveOptions): Promise<void> {
    const o = parseOptions(SaveOptions, 'save options', opts);
    const list = typeof refs === 'string' ? [refs] : [...refs];
    if (list.length === 0) {
      throw new InvalidOptionsError('save options', [{ path: 'refs', message: 'name at least one image' }]);
    }
    const store = await this.store();
    const items = [];
    const images = [];
    for (const ref of list) images.push(await lookup(store, ref));
    for (const [i, img] of images.entries()) items.push(saveItem(img, list[i]!));
    await saveImages(store, items, o.format, o.output, o);
    for (const [i, img] of images.entries()) await this.emit('save', img.id, list[i]!);
  }

  /**
   * Copies every image of a docker-archive or oci-archive into the store (`podman load`) and
   * returns their names (`sha256:<id>` for images the archive does not name).
   */
  async load(path: string, opts: LoadOptions = {}): Promise<string[]> {
    const o = parseOptions(LoadOptions, 'load options', opts);
    if (typeof path !== 'string' || path.length === 0) {
      throw new InvalidOptionsError('load options', [
        { path: 'path', message: 'an archive path is required' },
      ]);
    }
    const store = await this.store();
    const names = await loadImages(store, path, o.format, o);
    for (const n of names) {
      const img = await lookup(store, n).catch(() => undefined);
      if (img) await this.emit('loadfromarchive', img.id, path);
    }
    return names;
  }

  /**
   * Removes an image (`podman rmi`): only the name when `ref` is one of several names; refused
   * while containers use it (ImageInUseError) or when an image with several names is named by ID
   * (ImageHasNamesError), unless `force`, which removes those containers first.
   */
  async remove(ref: string, opts: RemoveImageOptions = {}): Promise<ImageRemoveReport> {
    const o = parseOptions(RemoveImageOptions, 'remove options', opts);
    const store = await this.store();
    const img = await lookup(store, ref);
    const report = await removeImage(store, img, ref, o, this.hooks.removeContainer);
    // Only a name removed: podman writes `untag`; the image deleted: `remove`.
    if (report.deleted.length === 0) for (const n of report.untagged) await this.emit('untag', img.id, n);
    for (const id of report.deleted) await this.emit('remove', id, ref);
    return report;
  }

  /** Removes images without names that no container uses (`podman image prune`); returns their IDs. */
  async prune(opts: PruneOptions = {}): Promise<string[]> {
    const o = parseOptions(PruneOptions, 'prune options', opts);
    const ids = await pruneImages(await this.store(), o.signal);
    for (const id of ids) await this.emit('remove', id, id);
    return ids;
  }
}

async function lookup(store: Store, ref: string): Promise<ImageRecord> {
  if (typeof ref !== 'string' || ref.length === 0) throw new ImageNotFoundError(String(ref));
  try {
    return await store.lookupImage(ref);
  } catch (err) {
    throw fromStoreError(err, ref);
  }
}
