/**
 * `containers-storage:` references, bound to one open Store (the transport is created with it:
 * `containersStorageTransport(store)`; nothing global).
 *
 * Grammar (containers/image's, minus options we do not support):
 *
 *   reference  = [ "[" store-spec "]" ] [ image ]
 *   store-spec = driver "@" root [ "+" run-root ]      must name the bound store, if given
 *   image      = named | id | named "@" id
 *   named      = a distribution reference, normalised (`busybox` -> `docker.io/library/busybox:latest`)
 *   id         = 64 lowercase hex characters, optionally "sha256:"-prefixed
 *
 * An empty image names a new, unnamed image (destinations only).
 */
import type { Store } from '@libpod-ts/storage';
import { InvalidReferenceError } from '../../errors.js';
import { type ImageName, parseNormalizedNamed } from '../../reference/parse.js';
import type {
  ImageDestination,
  ImageReference,
  ImageSource,
  NamedReferenceLike,
  OperationOptions,
  SystemContext,
  Transport,
} from '../../types.js';
import { StorageDestination } from './destination.js';
import { StorageSource } from './source.js';

export const CONTAINERS_STORAGE = 'containers-storage';

const ID_RE = /^(?:sha256:)?([a-f0-9]{64})$/;

export class StorageReference implements ImageReference {
  constructor(
    readonly transport: Transport,
    readonly store: Store,
    /** Normalised name (with tag or digest), if any. */
    readonly named: ImageName | undefined,
    /** Image ID, if any. */
    readonly id: string | undefined,
  ) {}

  stringWithinTransport(): string {
    const spec = `[${this.store.driver.name}@${this.store.root}+${this.store.runRoot}]`;
    if (this.named && this.id) return `${spec}${this.named.toString()}@${this.id}`;
    return spec + (this.named?.toString() ?? this.id ?? '');
  }

  toString(): string {
    return `${CONTAINERS_STORAGE}:${this.stringWithinTransport()}`;
  }

  dockerReference(): NamedReferenceLike | undefined {
    return this.named;
  }

  /** What the store's lookupImage() is asked for. */
  lookupKey(): string {
    if (this.id) return this.id;
    if (!this.named) throw new InvalidReferenceError(this.toString(), 'names no image');
    return this.named.toString();
  }

  async newSource(_ctx?: SystemContext, options?: OperationOptions): Promise<ImageSource> {
    return StorageSource.open(this, options);
  }

  async newDestination(_ctx?: SystemContext, _options?: OperationOptions): Promise<ImageDestination> {
    if (this.named?.digest !== undefined) {
      throw new InvalidReferenceError(this.toString(), 'a destination cannot be named by digest');
    }
    return new StorageDestination(this);
  }
}

/** The `containers-storage` transport for `store`. */
export function containersStorageTransport(store: Store): Transport {
  const transport: Transport = {
    name: CONTAINERS_STORAGE,
    parseReference(reference: string): StorageReference {
      let rest = reference;
      if (rest.startsWith('[')) {
        const end = rest.indexOf(']');
        if (end < 0) throw new InvalidReferenceError(reference, 'unterminated store specification');
        const spec = rest.slice(1, end);
        rest = rest.slice(end + 1);
        const at = spec.indexOf('@');
        const driver = at >= 0 ? spec.slice(0, at) : '';
        const [root, runRoot] = (at >= 0 ? spec.slice(at + 1) : spec).split('+');
        if (
          (driver !== '' && driver !== store.driver.name) ||
          (root && root !== store.root) ||
          (runRoot && runRoot !== store.runRoot)
        ) {
          throw new InvalidReferenceError(
            reference,
            `names another store than ${store.driver.name}@${store.root}`,
          );
        }
      }
      if (rest === '') return new StorageReference(transport, store, undefined, undefined);
      const idOnly = ID_RE.exec(rest);
      if (idOnly) return new StorageReference(transport, store, undefined, idOnly[1]);
      // `name@<64 hex>` (no algorithm) is name plus image ID, as containers/image writes it.
      const m = /^(.*)@([a-f0-9]{64})$/.exec(rest);
      if (m) return new StorageReference(transport, store, normalise(m[1]!, reference), m[2]);
      return new StorageReference(transport, store, normalise(rest, reference), undefined);
    },
  };
  return transport;
}

function normalise(s: string, whole: string): ImageName {
  try {
    return parseNormalizedNamed(s).withDefaultTag();
  } catch (err) {
    throw new InvalidReferenceError(whole, (err as Error).message);
  }
}
