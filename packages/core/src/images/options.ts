/**
 * Options of `lp.images`, as exported zod schemas (types inferred from them). Callbacks,
 * signals and the image package's SystemContext are checked for their kind only.
 */
import type { CopyProgressEvent, SystemContext } from '@libpod-ts/image';
import { z } from 'zod';

const signal = z.instanceof(AbortSignal).optional();
const onProgress = z
  .custom<(e: CopyProgressEvent) => void>((v) => typeof v === 'function', 'expected a function')
  .optional();
/** Auth, TLS, registries.conf, temp dir: passed to `@libpod-ts/image` as is. */
const ctx = z
  .custom<SystemContext>(
    (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
    'expected an object',
  )
  .optional();
const nonEmpty = z.string().min(1, 'must not be empty').max(4096, 'too long');

/** Where copies report progress and are cancelled. */
const transfer = { ctx, signal, onProgress };

export const PullOptions = z
  .object({
    /** Name in the store; default the source's registry name (required for sources without one, like `oci:`). */
    name: nonEmpty.optional(),
    ...transfer,
  })
  .strict();
export type PullOptions = z.input<typeof PullOptions>;

export const PushOptions = z
  .object({
    ...transfer,
    /** Layer compression written (default: what the destination wants: gzip for registries). */
    compression: z.enum(['gzip', 'zstd', 'none', 'preserve']).optional(),
    /** Manifest format (`podman push --format oci|v2s2`); default: OCI, as the store presents images. */
    format: z.enum(['oci', 'docker']).optional(),
  })
  .strict();
export type PushOptions = z.input<typeof PushOptions>;

export const SaveFormat = z.enum(['docker-archive', 'oci-archive', 'oci-dir', 'docker-dir']);
export type SaveFormat = z.infer<typeof SaveFormat>;

export const SaveOptions = z
  .object({
    /** `podman save --format`; default docker-archive. Only docker-archive holds several images. */
    format: SaveFormat.default('docker-archive'),
    /** Archive file (or directory for the `-dir` formats); replaced atomically. */
    output: nonEmpty.startsWith('/', 'must be absolute'),
    ...transfer,
  })
  .strict();
export type SaveOptions = z.input<typeof SaveOptions>;

export const LoadOptions = z
  .object({
    /** Archive format; default: detected (manifest.json: docker-archive, index.json: oci-archive). */
    format: z.enum(['docker-archive', 'oci-archive']).optional(),
    ...transfer,
  })
  .strict();
export type LoadOptions = z.input<typeof LoadOptions>;

export const RemoveImageOptions = z
  .object({
    /**
     * Podman's `rmi --force`: remove the containers using the image (running ones are killed),
     * and remove an image named by ID even when it carries several names.
     */
    force: z.boolean().default(false),
    signal,
  })
  .strict();
export type RemoveImageOptions = z.input<typeof RemoveImageOptions>;

export const PruneOptions = z.object({ signal }).strict();
export type PruneOptions = z.input<typeof PruneOptions>;

/** What remove() did, as Podman's `rmi` report. */
export interface ImageRemoveReport {
  /** Names taken off (all of them when the image was deleted). */
  untagged: string[];
  /** IDs of the images deleted (empty when only a name was removed). */
  deleted: string[];
  /** IDs of containers removed first (`force`). */
  removedContainers: string[];
}
