/**
 * `docker://<reference>` — an image in a registry. The reference is normalised like podman does
 * (`docker://busybox` = `docker.io/library/busybox:latest`); registries.conf decides mirrors,
 * `insecure` and `blocked` for the registry (prefix rewriting included).
 */
import type { Readable } from 'node:stream';
import { verifyBytes } from '../../digest/digest.js';
import { ImageError, InvalidReferenceError, NotFoundError } from '../../errors.js';
import { detectManifestMediaType } from '../../manifest/parse.js';
import type { Descriptor } from '../../manifest/schemas.js';
import { type ImageName, parseNormalizedNamed } from '../../reference/parse.js';
import {
  DEFAULT_REGISTRIES_CONF,
  isInsecureRegistry,
  loadRegistriesConf,
  pullSources,
} from '../../reference/registries-conf.js';
import { RegistryClient } from '../../registry/client.js';
import type {
  BlobInfo,
  BlobStream,
  DesiredCompression,
  ImageDestination,
  ImageReference,
  ImageSource,
  ManifestBlob,
  NamedReferenceLike,
  OperationOptions,
  PutBlobOptions,
  ReuseResult,
  SystemContext,
  Transport,
  TryReuseOptions,
} from '../../types.js';
import { Closable } from '../common/source-base.js';

export class DockerReference implements ImageReference {
  readonly transport: Transport;
  readonly name: ImageName;

  constructor(transport: Transport, name: ImageName) {
    this.transport = transport;
    this.name = name;
  }

  get registry(): string {
    return this.name.domain;
  }

  get repository(): string {
    return this.name.path;
  }

  /** Tag or digest to address the manifest by (digest wins, as in containers/image). */
  get manifestRef(): string {
    return this.name.digest ?? this.name.tag ?? 'latest';
  }

  stringWithinTransport(): string {
    return `//${this.name.toString()}`;
  }

  toString(): string {
    return `docker:${this.stringWithinTransport()}`;
  }

  dockerReference(): NamedReferenceLike {
    return this.name;
  }

  async newSource(ctx: SystemContext = {}, options: OperationOptions = {}): Promise<ImageSource> {
    const conf = await loadRegistriesConf(ctx.registriesConfPath ?? DEFAULT_REGISTRIES_CONF);
    const candidates = pullSources(conf, this.name);
    let lastErr: unknown;
    for (const c of candidates) {
      const insecure = c.insecure || (ctx.insecureRegistries ?? []).includes(c.reference.domain);
      const client = new RegistryClient({ registry: c.reference.domain, ctx, insecure });
      const ref = c.reference.digest ?? c.reference.tag ?? 'latest';
      try {
        const m = await client.getManifest(c.reference.path, ref, { signal: options.signal });
        return new DockerSource(this, client, c.reference.path, m);
      } catch (err) {
        await client.close();
        lastErr = err;
        // A failing mirror lets the next candidate try; the primary location's error is final.
        if (!c.mirror) throw err;
      }
    }
    throw lastErr ?? new NotFoundError(this.toString());
  }

  async newDestination(ctx: SystemContext = {}, _options: OperationOptions = {}): Promise<ImageDestination> {
    const conf = await loadRegistriesConf(ctx.registriesConfPath ?? DEFAULT_REGISTRIES_CONF);
    // Pushes go to the primary location, never to mirrors; a blocked registry is refused.
    const primary = pullSources(conf, this.name).at(-1)!;
    const insecure =
      primary.insecure ||
      isInsecureRegistry(conf, primary.reference.domain) ||
      (ctx.insecureRegistries ?? []).includes(primary.reference.domain);
    const client = new RegistryClient({ registry: primary.reference.domain, ctx, insecure });
    return new DockerDestination(this, client, primary.reference);
  }
}

class DockerSource extends Closable implements ImageSource {
  readonly reference: DockerReference;
  private readonly client: RegistryClient;
  private readonly repo: string;
  private readonly top: { bytes: Buffer; mediaType: string };

  constructor(
    reference: DockerReference,
    client: RegistryClient,
    repo: string,
    top: { bytes: Buffer; mediaType: string },
  ) {
    super();
    this.reference = reference;
    this.client = client;
    this.repo = repo;
    this.top = top;
  }

  async getManifest(instanceDigest?: string, options: OperationOptions = {}): Promise<ManifestBlob> {
    const object = `manifest ${instanceDigest ?? this.reference.manifestRef} of ${this.reference.toString()}`;
    if (!instanceDigest) {
      return {
        bytes: this.top.bytes,
        mediaType: detectManifestMediaType(this.top.bytes, this.top.mediaType, object),
      };
    }
    const m = await this.client.getManifest(this.repo, instanceDigest, { signal: options.signal });
    verifyBytes(m.bytes, instanceDigest, object);
    return { bytes: m.bytes, mediaType: detectManifestMediaType(m.bytes, m.mediaType, object) };
  }

  async getBlob(
    descriptor: Descriptor,
    options: OperationOptions & { offset?: number } = {},
  ): Promise<BlobStream> {
    return this.client.getBlob(this.repo, descriptor.digest, {
      signal: options.signal,
      offset: options.offset,
      size: descriptor.size,
    });
  }

  async hasBlob(descriptor: Descriptor, options: OperationOptions = {}): Promise<boolean> {
    return (
      (await this.client.headBlob(this.repo, descriptor.digest, { signal: options.signal })) !== undefined
    );
  }

  /** The client, for inspect/listTags helpers. */
  get registryClient(): RegistryClient {
    return this.client;
  }

  protected async doClose(): Promise<void> {
    await this.client.close();
  }
}

class DockerDestination extends Closable implements ImageDestination {
  readonly reference: DockerReference;
  readonly supportsIndex = true;
  // Uncompressed layers are gzipped on push (containers/image does the same); others are kept.
  readonly desiredLayerCompression: DesiredCompression = 'compress';
  readonly needsDiffIDs = false;
  private readonly client: RegistryClient;
  private readonly target: ImageName;
  private top: { bytes: Uint8Array; mediaType: string } | undefined;

  constructor(reference: DockerReference, client: RegistryClient, target: ImageName) {
    super();
    this.reference = reference;
    this.client = client;
    this.target = target;
  }

  supportedManifestMediaTypes(): readonly string[] {
    return [];
  }

  async tryReusingBlob(descriptor: Descriptor, options: TryReuseOptions = {}): Promise<ReuseResult> {
    const size = await this.client.headBlob(this.target.path, descriptor.digest, { signal: options.signal });
    if (size !== undefined) {
      return {
        reused: true,
        descriptor: { mediaType: descriptor.mediaType, digest: descriptor.digest, size },
        how: 'exists',
      };
    }
    const src = options.source;
    if (
      src instanceof DockerReference &&
      src.registry === this.target.domain &&
      src.repository !== this.target.path
    ) {
      if (
        await this.client.mountBlob(this.target.path, descriptor.digest, src.repository, {
          signal: options.signal,
        })
      ) {
        return {
          reused: true,
          descriptor: { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size },
          how: 'mounted',
        };
      }
    }
    return { reused: false };
  }

  async putBlob(stream: Readable, blob: BlobInfo, options: PutBlobOptions = {}): Promise<Descriptor> {
    const r = await this.client.putBlob(this.target.path, stream, {
      digest: blob.digest,
      size: blob.size,
      signal: options.signal,
      onProgress: options.onProgress,
    });
    const d: Descriptor = { mediaType: blob.mediaType, digest: r.digest, size: r.size };
    if (blob.annotations) d.annotations = blob.annotations;
    return d;
  }

  async putManifest(
    bytes: Uint8Array,
    mediaType: string,
    instanceDigest?: string,
    options: OperationOptions = {},
  ): Promise<void> {
    if (instanceDigest) {
      verifyBytes(bytes, instanceDigest, `manifest ${instanceDigest} for ${this.reference.toString()}`);
      await this.client.putManifest(this.target.path, instanceDigest, bytes, mediaType, {
        signal: options.signal,
      });
      return;
    }
    if (this.target.digest)
      verifyBytes(bytes, this.target.digest, `manifest for ${this.reference.toString()}`);
    this.top = { bytes, mediaType };
  }

  async commit(options: OperationOptions = {}): Promise<void> {
    if (!this.top)
      throw new ImageError('ERR_INTERNAL', `${this.reference.toString()}: commit() before putManifest()`);
    const ref = this.target.tag ?? this.target.digest ?? 'latest';
    await this.client.putManifest(this.target.path, ref, this.top.bytes, this.top.mediaType, {
      signal: options.signal,
    });
  }

  protected async doClose(): Promise<void> {
    await this.client.close();
  }
}

export function dockerTransport(): Transport {
  const t: Transport = {
    name: 'docker',
    parseReference(s: string): ImageReference {
      if (!s.startsWith('//'))
        throw new InvalidReferenceError(`docker:${s}`, 'docker references start with docker://');
      return new DockerReference(t, parseNormalizedNamed(s.slice(2)).withDefaultTag());
    },
  };
  return t;
}

/**
 * Opens a registry client for a docker reference, honouring registries.conf (prefix rewriting,
 * insecure, blocked); also returns the repository path at that location (for inspect/listTags).
 */
export async function clientFor(
  ref: DockerReference,
  ctx: SystemContext = {},
): Promise<{ client: RegistryClient; repository: string }> {
  const conf = await loadRegistriesConf(ctx.registriesConfPath ?? DEFAULT_REGISTRIES_CONF);
  const primary = pullSources(conf, ref.name).at(-1)!;
  const insecure = primary.insecure || (ctx.insecureRegistries ?? []).includes(primary.reference.domain);
  return {
    client: new RegistryClient({ registry: primary.reference.domain, ctx, insecure }),
    repository: primary.reference.path,
  };
}
