/**
 * Looking at an image without copying it: manifest, config, digest and platforms (`inspectImage`),
 * and the tags of a registry repository (`listTags`). Only the manifest(s) and the config blob
 * are read.
 */
import { digestBytes, readCapped, VerifyingStream } from '../digest/digest.js';
import { NoMatchingPlatformError, UnsupportedError } from '../errors.js';
import {
  formatPlatform,
  listPlatforms,
  MAX_CONFIG_SIZE,
  type ParsedImageManifest,
  type ParsedManifest,
  parseImageConfig,
  parseManifest,
  selectPlatform,
} from '../manifest/parse.js';
import type { ImageConfig, Platform } from '../manifest/schemas.js';
import { DockerReference, clientFor } from '../transports/docker/transport.js';
import type { ImageReference, OperationOptions, SystemContext } from '../types.js';

export interface ImageInspection {
  /** Digest of the manifest the reference names (the index digest for multi-platform images). */
  digest: string;
  mediaType: string;
  /** Raw top-level manifest bytes. */
  rawManifest: Uint8Array;
  /** The single-image manifest chosen (for an index: the instance for the platform). */
  manifest: ParsedImageManifest;
  manifestDigest: string;
  /** Parsed config, or undefined for non-image artifacts. */
  config: ImageConfig | undefined;
  rawConfig: Uint8Array;
  /** `os/arch[/variant]` of every instance of an index; empty for a single image. */
  platforms: string[];
  index: ParsedManifest | undefined;
}

export async function inspectImage(
  ref: ImageReference,
  options: OperationOptions & { ctx?: SystemContext; platform?: Partial<Platform> } = {},
): Promise<ImageInspection> {
  const src = await ref.newSource(options.ctx, options);
  try {
    const top = await src.getManifest(undefined, options);
    const parsed = parseManifest(top.bytes, top.mediaType, `manifest of ${ref.toString()}`);
    let manifest: ParsedImageManifest;
    let manifestDigest = digestBytes(top.bytes);
    let platforms: string[] = [];
    if (parsed.kind === 'index') {
      platforms = listPlatforms(parsed);
      const chosen = selectPlatform(parsed, options.platform ?? options.ctx?.platform);
      if (!chosen)
        throw new NoMatchingPlatformError(ref.toString(), formatPlatform(options.platform), platforms);
      const inst = await src.getManifest(chosen.digest, options);
      const p = parseManifest(inst.bytes, inst.mediaType, `manifest ${chosen.digest}`);
      if (p.kind !== 'manifest') throw new UnsupportedError(ref.toString(), 'nested index');
      manifest = p;
      manifestDigest = chosen.digest;
    } else {
      manifest = parsed;
    }
    const object = `config ${manifest.config.digest}`;
    const { stream } = await src.getBlob(manifest.config, options);
    const v = new VerifyingStream({ digest: manifest.config.digest, size: manifest.config.size, object });
    stream.on('error', (e) => v.destroy(e));
    const rawConfig = await readCapped(stream.pipe(v), MAX_CONFIG_SIZE, object);
    const isImage = /container\.image\.v1\+json|image\.config\.v1\+json/.test(manifest.config.mediaType);
    return {
      digest: digestBytes(top.bytes),
      mediaType: parsed.mediaType,
      rawManifest: top.bytes,
      manifest,
      manifestDigest,
      config: isImage ? parseImageConfig(rawConfig, object) : undefined,
      rawConfig,
      platforms,
      index: parsed.kind === 'index' ? parsed : undefined,
    };
  } finally {
    await src.close();
  }
}

/** Tags of the repository a `docker://` reference names. */
export async function listTags(
  ref: ImageReference,
  options: OperationOptions & { ctx?: SystemContext } = {},
): Promise<string[]> {
  if (!(ref instanceof DockerReference)) {
    throw new UnsupportedError(ref.toString(), 'listing tags needs a docker:// reference');
  }
  const { client, repository } = await clientFor(ref, options.ctx);
  try {
    return await client.listTags(repository, options);
  } finally {
    await client.close();
  }
}
