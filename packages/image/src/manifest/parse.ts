/**
 * Parsing manifests with the semantic checks the schemas cannot express: size caps, schema 1
 * refusal, and media type confusion (CVE-2021-41190: a document must not be both a manifest and
 * an index, and its `mediaType` field must agree with the type it was served as).
 */
import type { z } from 'zod';
import { parseJson } from '../digest/digest.js';
import {
  ImageError,
  InvalidManifestError,
  MediaTypeError,
  Schema1UnsupportedError,
  TooLargeError,
  UnsupportedError,
} from '../errors.js';
import { isIndexMediaType, isSchema1MediaType, MediaTypes } from './media-types.js';
import {
  type Descriptor,
  DockerManifestListSchema,
  DockerManifestSchema,
  type ImageConfig,
  ImageConfigSchema,
  OciIndexSchema,
  OciManifestSchema,
  type Platform,
} from './schemas.js';

/** Manifests and configs larger than this are refused (containers/image uses the same limit). */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;
export const MAX_CONFIG_SIZE = 4 * 1024 * 1024;

export interface ParsedImageManifest {
  kind: 'manifest';
  format: 'oci' | 'docker';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string> | undefined;
  subject?: Descriptor | undefined;
  artifactType?: string | undefined;
}

export interface ParsedIndex {
  kind: 'index';
  format: 'oci' | 'docker';
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string> | undefined;
}

export type ParsedManifest = ParsedImageManifest | ParsedIndex;

/** Media types a server may use for "unknown"; the content decides then. */
const GENERIC_TYPES = new Set(['', 'application/json', 'text/plain', 'application/octet-stream']);

function stripParams(mt: string): string {
  return (mt.split(';')[0] ?? '').trim().toLowerCase();
}

/**
 * Determines the media type of manifest bytes served as `declared` (a Content-Type, or '' when
 * unknown). Throws Schema1UnsupportedError, MediaTypeError on confusion, InvalidManifestError.
 */
export function detectManifestMediaType(bytes: Uint8Array, declared: string, object: string): string {
  if (bytes.length > MAX_MANIFEST_SIZE) throw new TooLargeError(object, MAX_MANIFEST_SIZE);
  const doc = parseJson(bytes, object);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new InvalidManifestError(object, 'manifest is not a JSON object');
  }
  const o = doc as Record<string, unknown>;
  const hdr = stripParams(declared);
  if (o.schemaVersion === 1 || isSchema1MediaType(hdr)) throw new Schema1UnsupportedError(object);
  const field = typeof o.mediaType === 'string' ? o.mediaType : undefined;
  const hasManifests = 'manifests' in o;
  const hasConfigOrLayers = 'config' in o || 'layers' in o;
  if (hasManifests && hasConfigOrLayers) {
    throw new MediaTypeError(
      object,
      'document has both "manifests" and "config"/"layers" (ambiguous manifest/index)',
    );
  }
  if (field !== undefined && !GENERIC_TYPES.has(hdr) && field !== hdr) {
    throw new MediaTypeError(object, `served as ${hdr} but its mediaType field says ${field}`);
  }
  const mt = field ?? (GENERIC_TYPES.has(hdr) ? '' : hdr);
  const resolved = mt || (hasManifests ? MediaTypes.ociIndex : MediaTypes.ociManifest);
  if (isIndexMediaType(resolved) && hasConfigOrLayers) {
    throw new MediaTypeError(object, `${resolved} must not contain "config" or "layers"`);
  }
  if (!isIndexMediaType(resolved) && hasManifests) {
    throw new MediaTypeError(object, `${resolved} must not contain "manifests"`);
  }
  return resolved;
}

function schemaError(object: string, err: z.ZodError): InvalidManifestError {
  const i = err.issues[0];
  return new InvalidManifestError(
    object,
    `invalid document at ${i?.path.join('.') || '(root)'}: ${i?.message ?? ''}`,
  );
}

/** Parses manifest bytes served with `declared` media type into a typed, validated form. */
export function parseManifest(bytes: Uint8Array, declared: string, object = 'manifest'): ParsedManifest {
  const mediaType = detectManifestMediaType(bytes, declared, object);
  const doc = parseJson(bytes, object);
  switch (mediaType) {
    case MediaTypes.ociManifest: {
      const r = OciManifestSchema.safeParse(doc);
      if (!r.success) throw schemaError(object, r.error);
      return {
        kind: 'manifest',
        format: 'oci',
        mediaType,
        config: r.data.config,
        layers: r.data.layers,
        annotations: r.data.annotations,
        subject: r.data.subject,
        artifactType: r.data.artifactType,
      };
    }
    case MediaTypes.dockerManifest: {
      const r = DockerManifestSchema.safeParse(doc);
      if (!r.success) throw schemaError(object, r.error);
      return { kind: 'manifest', format: 'docker', mediaType, config: r.data.config, layers: r.data.layers };
    }
    case MediaTypes.ociIndex: {
      const r = OciIndexSchema.safeParse(doc);
      if (!r.success) throw schemaError(object, r.error);
      return {
        kind: 'index',
        format: 'oci',
        mediaType,
        manifests: r.data.manifests,
        annotations: r.data.annotations,
      };
    }
    case MediaTypes.dockerManifestList: {
      const r = DockerManifestListSchema.safeParse(doc);
      if (!r.success) throw schemaError(object, r.error);
      return { kind: 'index', format: 'docker', mediaType, manifests: r.data.manifests };
    }
    default:
      throw new MediaTypeError(object, `unsupported manifest media type ${mediaType}`);
  }
}

/** Parses and validates an image config (size-capped). */
export function parseImageConfig(bytes: Uint8Array, object = 'image config'): ImageConfig {
  if (bytes.length > MAX_CONFIG_SIZE) throw new TooLargeError(object, MAX_CONFIG_SIZE);
  const r = ImageConfigSchema.safeParse(parseJson(bytes, object));
  if (!r.success) throw schemaError(object, r.error);
  return r.data;
}

// ---------- platforms ----------

const NODE_TO_GOARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm: 'arm',
  arm64: 'arm64',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/** The host platform in OCI terms (process.arch mapped to GOARCH). */
export function hostPlatform(): Platform {
  const architecture = NODE_TO_GOARCH[process.arch] ?? process.arch;
  const p: Platform = { os: process.platform === 'win32' ? 'windows' : process.platform, architecture };
  if (architecture === 'arm') {
    const v = (process.config.variables as Record<string, unknown>).arm_version;
    p.variant = `v${typeof v === 'string' || typeof v === 'number' ? v : '7'}`;
  }
  return p;
}

/** `os/arch[/variant]`. */
export function formatPlatform(p: Partial<Platform> | undefined): string {
  if (!p) return 'unknown';
  return [p.os ?? '?', p.architecture ?? '?', p.variant].filter(Boolean).join('/');
}

/** Parses `os/arch[/variant]`. */
export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture)
    throw new ImageError('ERR_INVALID_PLATFORM', `invalid platform ${JSON.stringify(s)}`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

function normVariant(arch: string, v: string | undefined): string | undefined {
  if (arch === 'arm64' && (v === undefined || v === '' || v === 'v8')) return 'v8';
  if (arch === 'arm' && (v === undefined || v === '')) return 'v7';
  return v || undefined;
}

/**
 * Picks the instance of an index for `wanted` (default the host). os and architecture must match;
 * when `wanted.variant` is set it must match (arm64 treats '' and 'v8' as equal); otherwise the
 * first instance for the os/arch wins. Attestation manifests (`unknown/unknown`) never match.
 */
export function selectPlatform(
  index: ParsedIndex,
  wanted: Partial<Platform> | undefined,
): Descriptor | undefined {
  const host = hostPlatform();
  const os = wanted?.os ?? host.os;
  const arch = wanted?.architecture ?? host.architecture;
  const variant = wanted?.variant ?? (wanted?.architecture === undefined ? host.variant : undefined);
  const candidates = index.manifests.filter((m) => m.platform?.os === os && m.platform.architecture === arch);
  if (variant !== undefined || arch === 'arm64' || arch === 'arm') {
    const wv = normVariant(arch, variant);
    const exact = candidates.find((m) => normVariant(arch, m.platform?.variant) === wv);
    if (exact) return exact;
    if (wanted?.variant) return undefined;
  }
  return candidates[0];
}

/** All platforms an index names, as `os/arch[/variant]`. */
export function listPlatforms(index: ParsedIndex): string[] {
  return index.manifests.filter((m) => m.platform).map((m) => formatPlatform(m.platform));
}

// ---------- conversion OCI <-> Docker schema 2 ----------

const OCI_TO_DOCKER_LAYER: Record<string, string> = {
  [MediaTypes.ociLayerGzip]: MediaTypes.dockerLayerGzip,
  [MediaTypes.ociLayout]: 'application/vnd.docker.image.rootfs.diff.tar',
  [MediaTypes.ociLayerNondistributableGzip]: MediaTypes.dockerLayerForeignGzip,
};
const DOCKER_TO_OCI_LAYER: Record<string, string> = Object.fromEntries(
  Object.entries(OCI_TO_DOCKER_LAYER).map(([a, b]) => [b, a]),
);

function encode(doc: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(doc));
}

/**
 * Converts a single-image manifest to `target` (OCI manifest or Docker schema 2), mapping config
 * and layer media types. Annotations do not exist in Docker schema 2 and are dropped. Throws
 * UnsupportedError for layers Docker schema 2 cannot express (zstd) or unknown layer types.
 */
export function convertManifest(m: ParsedImageManifest, target: string, object = 'manifest'): Uint8Array {
  if (target === MediaTypes.dockerManifest) {
    const layers = m.layers.map((l) => {
      const mediaType = l.mediaType.startsWith('application/vnd.docker.')
        ? l.mediaType
        : (OCI_TO_DOCKER_LAYER[l.mediaType] ?? unsupported(l.mediaType));
      const d: Descriptor = { mediaType, size: l.size, digest: l.digest };
      if (l.urls) d.urls = l.urls;
      return d;
    });
    return encode({
      schemaVersion: 2,
      mediaType: MediaTypes.dockerManifest,
      config: { mediaType: MediaTypes.dockerConfig, size: m.config.size, digest: m.config.digest },
      layers,
    });
  }
  if (target === MediaTypes.ociManifest) {
    const layers = m.layers.map((l) => {
      const mediaType = DOCKER_TO_OCI_LAYER[l.mediaType] ?? l.mediaType;
      return { ...l, mediaType };
    });
    const doc: Record<string, unknown> = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: {
        ...m.config,
        mediaType: m.config.mediaType === MediaTypes.dockerConfig ? MediaTypes.ociConfig : m.config.mediaType,
      },
      layers,
    };
    if (m.annotations) doc.annotations = m.annotations;
    if (m.subject) doc.subject = m.subject;
    return encode(doc);
  }
  throw new UnsupportedError(object, `cannot convert a manifest to ${target}`);

  function unsupported(mt: string): never {
    throw new UnsupportedError(object, `layer media type ${mt} has no Docker schema 2 equivalent`);
  }
}

/** Converts an index to `target` (OCI index or Docker manifest list); instance descriptors are given. */
export function convertIndex(
  idx: ParsedIndex,
  target: string,
  manifests: Descriptor[],
  object = 'index',
): Uint8Array {
  if (target === MediaTypes.dockerManifestList) {
    return encode({
      schemaVersion: 2,
      mediaType: MediaTypes.dockerManifestList,
      manifests: manifests.map((d) => {
        if (!d.platform) throw new UnsupportedError(object, `instance ${d.digest} has no platform`);
        return { mediaType: d.mediaType, size: d.size, digest: d.digest, platform: d.platform };
      }),
    });
  }
  if (target === MediaTypes.ociIndex) {
    const doc: Record<string, unknown> = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests };
    if (idx.annotations) doc.annotations = idx.annotations;
    return encode(doc);
  }
  throw new UnsupportedError(object, `cannot convert an index to ${target}`);
}

/** The matching single-manifest type for an index format. */
export function manifestTypeFor(format: 'oci' | 'docker'): string {
  return format === 'oci' ? MediaTypes.ociManifest : MediaTypes.dockerManifest;
}
