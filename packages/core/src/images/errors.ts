/**
 * Errors of `lp.images` beyond the shared ImageNotFoundError (../errors.ts): each with a stable
 * `code`, the store's or the image package's error chained as `cause`.
 */
import { CoreError, ImageNotFoundError } from '../errors.js';

/** An image name given to tag/untag/push/save is not a valid reference (or names a digest where a tag is needed). */
export class InvalidImageNameError extends CoreError {
  readonly imageName: string;
  constructor(imageName: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_IMAGE_NAME', `invalid image name "${imageName}": ${reason}`, options);
    this.imageName = imageName;
  }
}

/** A short name or ID prefix matches more than one image. */
export class AmbiguousImageError extends CoreError {
  readonly reference: string;
  readonly candidates: readonly string[];
  constructor(reference: string, candidates: readonly string[], cause?: unknown) {
    super(
      'ERR_IMAGE_AMBIGUOUS',
      `image "${reference}" matches ${candidates.length} images (${candidates.map((c) => c.slice(0, 12)).join(', ')}); use a full name or ID`,
      { cause },
    );
    this.reference = reference;
    this.candidates = candidates;
  }
}

/** The image has no such name (untag of a name it does not carry). */
export class ImageTagNotFoundError extends CoreError {
  readonly imageId: string;
  readonly imageName: string;
  constructor(imageId: string, imageName: string) {
    super('ERR_IMAGE_TAG_NOT_FOUND', `image ${imageId.slice(0, 12)} is not tagged "${imageName}"`);
    this.imageId = imageId;
    this.imageName = imageName;
  }
}

/** Removal refused while containers use the image (`containers`: their IDs); `force` removes them first. */
export class ImageInUseError extends CoreError {
  readonly imageId: string;
  readonly containers: readonly string[];
  constructor(imageId: string, containers: readonly string[], cause?: unknown) {
    super(
      'ERR_IMAGE_IN_USE',
      `image ${imageId.slice(0, 12)} is in use by container(s) ${containers
        .slice(0, 5)
        .map((c) => c.slice(0, 12))
        .join(', ')}${containers.length > 5 ? ', ...' : ''}: remove them first, or pass force`,
      { cause },
    );
    this.imageId = imageId;
    this.containers = containers;
  }
}

/** Removal by ID or digest of an image with several names, without `force` (Podman refuses the same way). */
export class ImageHasNamesError extends CoreError {
  readonly imageId: string;
  readonly names: readonly string[];
  constructor(imageId: string, names: readonly string[]) {
    super(
      'ERR_IMAGE_HAS_NAMES',
      `image ${imageId.slice(0, 12)} has ${names.length} names (${names.join(', ')}): remove it by name, or pass force`,
    );
    this.imageId = imageId;
    this.names = names;
  }
}

/** An archive given to load() holds no image this library can read (no manifest.json / index.json, bad JSON). */
export class ImageArchiveError extends CoreError {
  readonly path: string;
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_IMAGE_ARCHIVE', `cannot load ${path}: ${reason}`, options);
    this.path = path;
  }
}

/**
 * The store's lookup errors as core errors (ImageNotFoundError, AmbiguousImageError); anything
 * else is returned unchanged.
 */
export function fromStoreError(err: unknown, ref: string): unknown {
  const e = err as { code?: string; candidates?: unknown };
  if (e?.code === 'ERR_IMAGE_NOT_FOUND') return new ImageNotFoundError(ref, err);
  if (e?.code === 'ERR_AMBIGUOUS_IMAGE') {
    return new AmbiguousImageError(ref, Array.isArray(e.candidates) ? (e.candidates as string[]) : [], err);
  }
  return err;
}
