/**
 * Copies between the store and other transports with `@libpod-ts/image` copy(): pull (anything
 * -> `containers-storage:`) and push (`containers-storage:` -> anything). The store side is
 * always addressed by image ID, so a short name or ID prefix resolved once names one image
 * for the whole copy even if names move meanwhile.
 */
import {
  type CopyOptions,
  type CopyResult,
  containersStorageTransport,
  copy,
  createTransportRegistry,
  defaultTransports,
  type ImageReference,
  type TransportRegistry,
} from '@libpod-ts/image';
import type { ImageRecord, Store } from '@libpod-ts/storage';
import { InvalidOptionsError } from '../errors.js';
import { InvalidImageNameError } from './errors.js';
import { resolvedName } from './names.js';

export function transportsFor(store: Store): TransportRegistry {
  return createTransportRegistry([...defaultTransports(), containersStorageTransport(store)]);
}

/** Parses `transport:ref`, or a bare name as `docker://name`; bad names as InvalidImageNameError. */
export function parseTransportName(transports: TransportRegistry, name: string): ImageReference {
  const hasTransport = transports.names().some((t) => name.startsWith(`${t}:`));
  try {
    return transports.parseImageName(hasTransport ? name : `docker://${name}`);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_INVALID_REFERENCE' || code === 'ERR_UNKNOWN_TRANSPORT') {
      throw new InvalidImageNameError(name, (err as Error).message, { cause: err });
    }
    throw err;
  }
}

/** The store's image as a copy source (by ID). */
export function storageSource(transports: TransportRegistry, img: ImageRecord): ImageReference {
  return transports.parseImageName(`containers-storage:${img.id}`);
}

export type TransferOptions = Pick<CopyOptions, 'ctx' | 'signal' | 'onProgress'>;

/** Only the keys that are set (exactOptionalPropertyTypes-friendly). */
export function copyOptions(
  o: TransferOptions & Omit<CopyOptions, 'ctx' | 'signal' | 'onProgress'>,
): CopyOptions {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as CopyOptions;
}

/** Copies `source` into the store as `name` (default: its registry name); returns the image ID. */
export async function pullInto(
  store: Store,
  source: string,
  name: string | undefined,
  opts: TransferOptions,
): Promise<string> {
  const transports = transportsFor(store);
  const src = parseTransportName(transports, source);
  const target = name ?? src.dockerReference()?.toString();
  if (!target) {
    throw new InvalidOptionsError('pull options', [
      { path: 'name', message: `${source} has no registry name: give one` },
    ]);
  }
  let dest: ImageReference;
  try {
    dest = transports.parseImageName(`containers-storage:${target}`);
  } catch (err) {
    throw new InvalidImageNameError(target, (err as Error).message, { cause: err });
  }
  const res = await copy(src, dest, copyOptions(opts));
  return imageIdOf(res);
}

/** The image ID (config digest hex) of what copy() wrote. */
export function imageIdOf(res: CopyResult): string {
  const m = JSON.parse(Buffer.from(res.manifest).toString('utf8')) as { config?: { digest?: string } };
  const d = m.config?.digest ?? '';
  return d.slice(d.indexOf(':') + 1);
}

/**
 * Copies the store's image to `destination` (`docker://` when it names no transport; default:
 * the name `ref` resolved to). Returns the written manifest's digest and the destination.
 */
export async function pushFrom(
  store: Store,
  img: ImageRecord,
  ref: string,
  destination: string | undefined,
  opts: TransferOptions & Pick<CopyOptions, 'compression' | 'manifestFormat'>,
): Promise<{ manifestDigest: string; destination: string }> {
  const transports = transportsFor(store);
  const target = destination ?? resolvedName(img, ref);
  if (!target) {
    throw new InvalidOptionsError('push options', [
      { path: 'destination', message: `${ref} names no image name to push to: give a destination` },
    ]);
  }
  const dest = parseTransportName(transports, target);
  const res = await copy(storageSource(transports, img), dest, copyOptions(opts));
  return { manifestDigest: res.manifestDigest, destination: dest.toString() };
}
