/**
 * The storage driver contract: what the store (packages/storage/src/store) calls to put layer
 * contents on disk. Drivers are registered explicitly (see registry.ts); importing this module
 * has no side effects.
 *
 * Division of work (read before implementing or calling):
 * - The STORE owns all metadata: layer records, the parent chain, `incomplete` flags, mount
 *   refcounts (shared by all processes through its metadata and locks), and the decision to
 *   remove. It serialises operations on one layer id under its lock.
 * - The DRIVER owns only files under `home`. It keeps no metadata of its own: every call that
 *   needs ancestry receives `parentChain`, the layer ids from the BOTTOM (base layer) to the TOP
 *   (the direct parent), excluding the layer itself. A driver can therefore be re-created at any
 *   time from `{ home }` and the store's records alone.
 * - Drivers do NOT refcount. `mount()` mounts (or, when already mounted, returns the same path),
 *   `unmount()` unmounts; the store calls `unmount()` only when its refcount reaches zero.
 *
 * Call order for one layer:
 *   createLayer(id, parent) -> applyDiff(id, ...)? -> [mount(id) ... unmount(id)]* -> removeLayer(id)
 * `changes()`, `diff()` are valid any time after createLayer (mounted or not).
 *
 * Failure: every method either completes or throws a StorageError subclass (DriverOperationError,
 * DriverUnavailableError, archive errors from applyDiff). What a failure leaves behind is stated
 * per method; in every case `removeLayer(id)` cleans up completely, so the store's crash repair
 * (remove every layer marked incomplete) is always enough.
 */
import type { Readable } from 'node:stream';
import type { LayerLimits } from '../archive/limits.js';

export type DriverName = 'overlay' | 'vfs';

/** One path that differs between a layer and its parent. Paths are absolute inside the layer: `/etc/hosts`. */
export interface Change {
  path: string;
  kind: 'added' | 'modified' | 'deleted';
}

export interface ApplyDiffProgress {
  /** Uncompressed tar bytes consumed so far. */
  bytes: number;
  /** Entries applied so far. */
  entries: number;
}

export interface ApplyDiffOptions {
  signal?: AbortSignal;
  limits?: LayerLimits;
  /** Called at most every few hundred milliseconds and once at the end. */
  onProgress?: (p: ApplyDiffProgress) => void;
  /**
   * The layer's parent chain (bottom to top), as for mount(). overlay uses it to resolve the
   * entries' parent directories in the merged view (a lower `var/run -> /run` symlink is
   * followed, an implied parent dir is copied up with the lower's metadata); without it only the
   * upper dir is consulted, as containers/storage does. vfs ignores it.
   */
  parentChain?: readonly string[];
}

export interface MountOptions {
  /**
   * Mount read-only (image layers viewed directly). Default false. overlay mounts the layer and
   * its chain as lowers only; vfs cannot enforce it (its "mount" is the layer dir itself).
   */
  readonly?: boolean;
  /** Extra mount options (e.g. SELinux `context=`), appended verbatim. */
  mountOptions?: string[];
  /**
   * The writable layer need not survive a crash (overlay `volatile`: no syncfs at unmount, no
   * fsync passed down). Podman sets it for `--rm` containers. Ignored where unsupported.
   */
  volatile?: boolean;
}

export interface ProbeResult {
  ok: boolean;
  /** Why the driver cannot run here, e.g. `overlay: kernel refused mount: ...`. */
  reason?: string;
}

export interface Driver {
  readonly name: DriverName;
  /** The directory the driver owns (all its files live below it). */
  readonly home: string;

  /**
   * Whether this driver can run on this host, and if not, why. Cheap enough to call on every
   * store open; never throws for "cannot run", only returns `{ ok: false, reason }`.
   */
  probe(): Promise<ProbeResult>;

  /**
   * Create the empty layer `id` on top of `parentId` (undefined for a base layer).
   * vfs copies the parent here; overlay creates an empty upper dir.
   * `id` must be a safe name ([A-Za-z0-9][A-Za-z0-9_.-]*, the store uses hex ids); a layer that
   * already exists is an error. On failure, partial files may remain: call removeLayer(id).
   */
  createLayer(id: string, parentId: string | undefined): Promise<void>;

  /**
   * Apply an UNCOMPRESSED OCI layer tar (the store decompresses and hashes the stream for the
   * diffID while it flows in) to layer `id`, created by createLayer(id, parentId) and not yet
   * mounted. Whiteouts are honoured per the image-spec (overlay: stored as 0/0 char devices and
   * opaque xattrs; vfs: the lower files are deleted from the layer's copy).
   * Consumes `tar` to its end-of-archive; on success resolves with the bytes of file content
   * written. On failure (malformed or hostile archive: typed archive error; abort: AbortError)
   * the layer is left partially written: the caller MUST removeLayer(id).
   */
  applyDiff(
    id: string,
    parentId: string | undefined,
    tar: Readable,
    opts?: ApplyDiffOptions,
  ): Promise<{ size: number }>;

  /**
   * Mount layer `id` (lowers: `parentChain`, bottom to top) and return the path of the merged
   * tree. Idempotent: if it is already mounted, returns the same path without mounting again.
   * On failure nothing is left mounted.
   */
  mount(id: string, parentChain: readonly string[], opts?: MountOptions): Promise<string>;

  /** Unmount layer `id` (lazy detach is not used: a busy mount is an error). Not mounted: no-op. */
  unmount(id: string): Promise<void>;

  /** Whether layer `id` is currently mounted (from /proc/self/mountinfo, not from memory). */
  isMounted(id: string): Promise<boolean>;

  /**
   * Remove every file of layer `id` (unmounting first if still mounted). Missing layer: no-op,
   * so it is safe for crash repair. The store ensures no other layer has it as a parent.
   * When it resolves the layer is gone from its path; a driver may delete the moved-aside tree in
   * the background (see settle, recover).
   */
  removeLayer(id: string): Promise<void>;

  /** Resolves when the background deletions that removeLayer started have finished (store close). */
  settle?(): Promise<void>;

  /** Deletes trees that a process which died mid-deletion left moved aside (store open). */
  recover?(): Promise<void>;

  /** Ends the driver's helper processes, if any (store close); a later call starts them again. */
  close?(): void;

  /** Whether the driver has files for layer `id`. */
  exists(id: string): Promise<boolean>;

  /**
   * What differs in layer `id` relative to its parent chain (sorted by path). A directory that
   * was replaced by an opaque one is `modified`, and the lower entries that vanished below it are
   * listed as `deleted`.
   */
  changes(id: string, parentChain: readonly string[]): Promise<Change[]>;

  /**
   * The changes of layer `id` as an uncompressed OCI layer tar: added/modified entries with
   * their metadata and xattrs, deletions as `.wh.<name>`, opaque directories as `.wh..wh..opq`.
   * The stream reads the layer lazily; destroying it stops the walk.
   */
  diff(id: string, parentChain: readonly string[]): Readable;

  /**
   * The directory holding layer `id`'s own files (overlay: its upper dir; vfs: its full tree).
   * For inspection and size accounting; writing into it bypasses the driver.
   */
  layerDir(id: string): string;
}

export interface DriverOptions {
  /** Directory the driver owns, e.g. `<store root>/overlay`. Created if missing. */
  home: string;
}
