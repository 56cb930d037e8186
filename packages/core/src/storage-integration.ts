import { openStore, type Store } from '@libpod-ts/storage';
import type { Integrations } from './containers/engine.js';
import type { ImageProvider } from './containers/manager.js';
import type { ContainerRecord } from './containers/record.js';
import { ImageNotFoundError } from './errors.js';

export interface StorageSettings {
  root: string;
  runRoot: string;
  driver: 'overlay' | 'vfs';
}

const IMAGE_CONFIGS_KEPT = 32;

/**
 * Containers from images: a writable layer per container in `@libpod-ts/storage`, mounted at
 * init and unmounted at exit (mount counts live in the store, shared by all processes), deleted
 * with the container. The store opens lazily: rootfs-directory containers never touch it.
 */
export class StorageIntegration {
  private store: Promise<Store> | undefined;

  constructor(readonly settings: StorageSettings) {}

  open(): Promise<Store> {
    this.store ??= openStore({ ...this.settings });
    this.store.catch(() => {
      this.store = undefined;
    });
    return this.store;
  }

  /**
   * An image's config blob: its id is the config's digest, so the text never changes and is kept
   * (a few KiB each, at most IMAGE_CONFIGS_KEPT, the oldest dropped first) instead of read from disk
   * at every create.
   */
  private readonly configs = new Map<string, string>();

  private async imageConfigText(store: Store, imageId: string): Promise<string> {
    const kept = this.configs.get(imageId);
    if (kept !== undefined) return kept;
    const text = (await store.imageBlob(imageId, 'config')).toString('utf8');
    this.configs.set(imageId, text);
    if (this.configs.size > IMAGE_CONFIGS_KEPT) this.configs.delete(this.configs.keys().next().value!);
    return text;
  }

  get opened(): boolean {
    return this.store !== undefined;
  }

  async close(): Promise<void> {
    const s = this.store;
    this.store = undefined;
    if (s) await (await s.catch(() => undefined))?.close();
  }

  readonly images: ImageProvider = {
    createRootfs: async (image, containerId, opts = {}) => {
      const store = await this.open();
      let c: Awaited<ReturnType<Store['createContainer']>>;
      try {
        // The image is resolved in the transaction that claims the container: one lookup.
        c = await store.createContainer({ id: containerId, image, volatile: opts.volatile === true });
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'ERR_IMAGE_NOT_FOUND' || code === 'ERR_AMBIGUOUS_IMAGE')
          throw new ImageNotFoundError(image, err);
        throw err;
      }
      const imageId = c.imageId!;
      try {
        const configDoc = JSON.parse(await this.imageConfigText(store, imageId)) as {
          config?: Record<string, unknown>;
        };
        const rootfs = await store.mount(c.id);
        return { storageId: c.id, imageId, imageConfig: configDoc, rootfs };
      } catch (err) {
        await store.deleteContainer(c.id).catch(() => {});
        throw err;
      }
    },
  };

  readonly integrations: Integrations = {
    mountRootfs: async (r: ContainerRecord) => (await this.open()).mount(r.storageId!),
    unmountRootfs: async (r: ContainerRecord) => {
      await (await this.open()).unmount(r.storageId!);
    },
    removeRootfs: async (r: ContainerRecord) => {
      // force: unmounts (whatever the count) under the same lock as the delete.
      await (await this.open()).deleteContainer(r.storageId!, { force: true });
    },
  };
}
