import { join } from 'node:path';
import type { NetworkManager } from '@libpod-ts/network';
import { z } from 'zod';
import type { Engine, Integrations } from './containers/engine.js';
import { Containers, type ImageProvider, type SpecBuilder } from './containers/manager.js';
import { InvalidOptionsError, LibpodClosedError } from './errors.js';
import { Images } from './images/images.js';
import type { NetworkIntegration } from './network-integration.js';
import type { StorageIntegration } from './storage-integration.js';
import type { EventFilter, LibpodEvent } from './events/events.js';
import { createEngine, pruneExitFiles } from './engine-factory.js';
import { parseOptions } from './containers/options.js';
import { specGeneratorBuilder } from './containers/spec-builder.js';

export const LibpodOptions = z
  .object({
    /** Persistent data: records, logs, events (Podman: /var/lib/containers/storage). */
    root: z.string().startsWith('/', 'must be absolute').default('/var/lib/libpod-ts'),
    /** Volatile data: runtime state, bundles, sockets, exit files (Podman: /run/containers/storage). */
    runRoot: z.string().startsWith('/', 'must be absolute').default('/run/libpod-ts'),
    /** OCI runtime by name (found on PATH and usual places) or path: `runc`, `crun`, `/usr/bin/runc`. */
    runtime: z.string().min(1).default('runc'),
    conmon: z.string().min(1).default('conmon'),
    /** See EngineOptions.exitHook. */
    exitHook: z.union([z.boolean(), z.array(z.string()).min(1)]).default(true),
    /**
     * The image store (`@libpod-ts/storage`) under `<root>/storage` and `<runRoot>/storage`,
     * opened on first use; `false`: containers from rootfs directories only.
     */
    storage: z
      .union([z.literal(false), z.object({ driver: z.enum(['overlay', 'vfs']).default('overlay') }).strict()])
      .default({ driver: 'overlay' }),
    /**
     * Bridge networking (`@libpod-ts/network`, CNI) for containers created with
     * `network: 'bridge'`; state under `<root>/networks` and `<runRoot>/network`. `false`: none.
     */
    network: z
      .union([
        z.literal(false),
        z
          .object({
            defaultNetwork: z
              .object({ name: z.string(), subnet: z.string(), bridge: z.string() })
              .strict()
              .optional(),
            /** Read-only conflist sources (default `/etc/cni/net.d`); `[]`: only the store's own networks. */
            extraConfigDirs: z.array(z.string()).optional(),
          })
          .strict(),
      ])
      .default({}),
  })
  .strict();
export type LibpodOptions = z.input<typeof LibpodOptions>;

/** Extension points for the packages that are wired in by the embedding program or later issues. */
export interface LibpodExtensions {
  integrations?: Integrations;
  specBuilder?: SpecBuilder;
  images?: ImageProvider;
}

/** `lp.events`: the persistent events log and live subscriptions. */
export class Events {
  constructor(
    private readonly engine: Engine,
    private readonly closing: AbortSignal,
  ) {}

  /** Events already logged, oldest first, filtered (since/until/action/container/label). */
  read(filter: EventFilter = {}): AsyncGenerator<LibpodEvent> {
    return this.engine.events.read(filter);
  }

  /** Live events (from any process using this store) until `signal` aborts or the Libpod closes. */
  subscribe(filter: EventFilter = {}, signal?: AbortSignal): AsyncGenerator<LibpodEvent> {
    const s = signal ? AbortSignal.any([signal, this.closing]) : this.closing;
    return this.engine.events.subscribe(filter, s);
  }
}

/** An async generator whose first next() rejects with LibpodClosedError. */
function closedGenerator(): AsyncGenerator<never> {
  const gen: AsyncGenerator<never> = {
    next: () => Promise.reject(new LibpodClosedError()),
    return: (v) => Promise.resolve({ done: true, value: v as never }),
    throw: (e) => Promise.reject(e),
    [Symbol.asyncIterator]: () => gen,
  };
  return gen;
}

/**
 * Wraps a facade object so that, once `isClosed()`, its methods throw LibpodClosedError: a
 * rejected promise for async methods, an async generator that throws for generator methods, a
 * synchronous throw otherwise. Calls made before close are not affected.
 */
function guardClosed<T extends object>(target: T, isClosed: () => boolean): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      const v = Reflect.get(t, prop, receiver);
      if (typeof v !== 'function' || prop === 'constructor') return v;
      const kind = (v as { constructor?: { name?: string } }).constructor?.name;
      return function (this: unknown, ...args: unknown[]) {
        if (isClosed()) {
          if (kind === 'AsyncFunction') return Promise.reject(new LibpodClosedError());
          if (kind === 'AsyncGeneratorFunction') return closedGenerator();
          throw new LibpodClosedError();
        }
        return (v as (...a: unknown[]) => unknown).apply(this === receiver ? t : this, args);
      };
    },
  });
}

/**
 * The entry point: `await using lp = await Libpod.open({ root, runRoot })`. Containers keep
 * running after `close()` and after the program exits (conmon parents them); another `open` of
 * the same root sees and controls them.
 */
export class Libpod implements AsyncDisposable {
  readonly containers: Containers;
  readonly events: Events;
  readonly images: Images;
  private readonly closer = new AbortController();
  private closed = false;

  private constructor(
    readonly engine: Engine & { storage?: StorageIntegration; network?: NetworkIntegration },
    readonly options: z.output<typeof LibpodOptions>,
    ext: LibpodExtensions,
  ) {
    this.containers = new Containers(
      engine,
      ext.specBuilder ?? specGeneratorBuilder((id) => engine.layout.containerDir(id)),
      ext.images ?? engine.storage?.images,
      this.closer.signal,
    );
    this.events = new Events(engine, this.closer.signal);
    this.images = new Images(engine.storage, {
      // rmi --force: our containers go through lp.containers (killed, network torn down, event).
      removeContainer: async (storageId) => {
        const rec = (await engine.store.list()).find((r) => r.storageId === storageId);
        if (!rec) return false;
        await this.containers.remove(rec.id, { force: true }).catch((err: unknown) => {
          if ((err as { code?: string }).code !== 'ERR_CONTAINER_NOT_FOUND') throw err;
        });
        return true;
      },
      events: engine.events,
    });
    // After close() every call throws LibpodClosedError (rejects, for async methods).
    this.containers = guardClosed(this.containers, () => this.closed);
    this.events = guardClosed(this.events, () => this.closed);
    this.images = guardClosed(this.images, () => this.closed);
  }

  static async open(options: LibpodOptions = {}, ext: LibpodExtensions = {}): Promise<Libpod> {
    const o = parseOptions(LibpodOptions, 'Libpod options', options);
    const engine = await createEngine({
      ...o,
      integrations: ext.integrations,
      storage:
        o.storage === false
          ? undefined
          : { root: join(o.root, 'storage'), runRoot: join(o.runRoot, 'storage'), driver: o.storage.driver },
      network:
        o.network === false
          ? undefined
          : {
              root: o.root,
              runRoot: o.runRoot,
              defaultNetwork: o.network.defaultNetwork,
              extraConfigDirs: o.network.extraConfigDirs,
            },
    });
    await pruneExitFiles(engine);
    // What a crashed process left (netns, veths, IPAM, iptables, CNI cache) for containers no one runs.
    await engine.network?.cleanupStale(engine);
    return new Libpod(engine, o, ext);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** `lp.networks`: the network package's manager (create/list/remove networks, connect...). */
  get networks(): NetworkManager {
    this.assertOpen();
    if (!this.engine.network)
      throw new InvalidOptionsError('Libpod options', [
        { path: 'network', message: 'opened without networking' },
      ]);
    return this.engine.network.manager();
  }

  /** Throws LibpodClosedError after close(). */
  assertOpen(): void {
    if (this.closed) throw new LibpodClosedError();
  }

  /** Ends subscriptions; containers are left running. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // The reason is what pending wait()/run() reject with; follows and subscriptions just end.
    this.closer.abort(new LibpodClosedError());
    try {
      await this.engine.storage?.close();
    } finally {
      this.engine.spawner?.close();
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
