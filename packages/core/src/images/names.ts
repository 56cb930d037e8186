/**
 * Image names as `lp.images` stores them, following Podman (libimage's NormalizeName), parsed by
 * `@libpod-ts/image`'s reference grammar:
 *
 *   tag name   = reference without digest
 *   normalised = short name (no domain: `busybox`, `rig/busybox`)  -> `localhost/<name>`
 *                `docker.io/busybox`                               -> `docker.io/library/busybox`
 *                no tag                                            -> `:latest`
 *
 * Short names become `localhost/` names (not `docker.io/`): a name given locally must not claim
 * to be an image of Docker Hub. Names read from a docker-archive's RepoTags are Docker's own
 * familiar names and normalise to docker.io instead (see archive.ts).
 */
import { type ImageName, isShortName, parseNormalizedNamed } from '@libpod-ts/image';
import type { ImageRecord } from '@libpod-ts/storage';
import { InvalidImageNameError } from './errors.js';

const ID_RE = /^(?:sha256:)?[a-f0-9]{64}$/;

/** Normalises a name to tag an image with; InvalidImageNameError when it cannot be one. */
export function normalizeTagName(name: string): ImageName {
  if (typeof name !== 'string' || name.length === 0)
    throw new InvalidImageNameError(String(name), 'empty name');
  if (ID_RE.test(name)) throw new InvalidImageNameError(name, 'looks like an image ID');
  let parsed: ImageName;
  try {
    parsed = parseNormalizedNamed(isShortName(name) ? `localhost/${name}` : name);
  } catch (err) {
    throw new InvalidImageNameError(name, (err as Error).message, { cause: err });
  }
  if (parsed.digest !== undefined) throw new InvalidImageNameError(name, 'a tag cannot contain a digest');
  return parsed.withDefaultTag();
}

/** Whether `ref` names the image by (a prefix of) its ID or by a digest rather than by a name. */
export function isIdOrDigestRef(ref: string, img: ImageRecord): boolean {
  if (ref.startsWith('sha256:')) return true;
  return (
    /^[a-f0-9]{3,64}$/.test(ref) && img.id.startsWith(ref) && !img.names.some((n) => matchesName(n, ref))
  );
}

/** Whether the stored name `name` is what `ref` (full, short, without tag) resolves to. */
function matchesName(name: string, ref: string): boolean {
  if (name === ref) return true;
  const last = ref.slice(ref.lastIndexOf('/') + 1);
  const withTag = last.includes(':') ? ref : `${ref}:latest`;
  return name === withTag || name.endsWith(`/${withTag}`);
}

/**
 * The stored name a user's reference resolved to (`busybox` -> `localhost/busybox:latest`), or
 * undefined when the reference is an ID, a digest, or matches no name of the image.
 */
export function resolvedName(img: ImageRecord, ref: string): string | undefined {
  if (ref.includes('@') || isIdOrDigestRef(ref, img)) return undefined;
  return img.names.find((n) => n === ref) ?? img.names.find((n) => matchesName(n, ref));
}

/** `domain/path` of a stored `domain/path:tag` name. */
export function repoOf(name: string): string {
  const at = name.indexOf('@');
  const base = at >= 0 ? name.slice(0, at) : name;
  return base.replace(/:[^/:]+$/, '');
}
