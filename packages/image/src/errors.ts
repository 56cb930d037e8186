/**
 * Errors of @libpod-ts/image: a closed set of classes, each with a stable `code` that callers
 * branch on (`err.code === 'ERR_...'`), which works even when two copies of the package are loaded.
 * Messages name the object and the cause; the underlying error is chained as `cause`.
 * Messages never contain credentials: URLs are printed without userinfo or query strings.
 */
export class ImageError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A string is not a valid image reference (distribution grammar or a transport's syntax). */
export class InvalidReferenceError extends ImageError {
  readonly reference: string;
  constructor(reference: string, reason: string, options?: { cause?: unknown }) {
    super(
      'ERR_INVALID_REFERENCE',
      `invalid image reference ${JSON.stringify(reference.slice(0, 300))}: ${reason}`,
      options,
    );
    this.reference = reference;
  }
}

/** `name:` prefix names no registered transport. */
export class UnknownTransportError extends ImageError {
  readonly transport: string;
  constructor(transport: string, known: readonly string[]) {
    super(
      'ERR_UNKNOWN_TRANSPORT',
      `unknown transport ${JSON.stringify(transport.slice(0, 100))} (registered: ${known.join(', ') || 'none'})`,
    );
    this.transport = transport;
  }
}

/** A short name could not be resolved through registries.conf (no search registries, or blocked). */
export class ShortNameError extends ImageError {
  constructor(name: string, reason: string) {
    super('ERR_SHORT_NAME', `cannot resolve short name ${JSON.stringify(name)}: ${reason}`);
  }
}

/** registries.conf, auth.json or another configuration file is malformed. */
export class ConfigError extends ImageError {
  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_CONFIG', `${file}: ${reason}`, options);
  }
}

/** A registry is marked `blocked = true` in registries.conf. */
export class BlockedRegistryError extends ImageError {
  constructor(location: string) {
    super('ERR_REGISTRY_BLOCKED', `registry ${location} is blocked in registries.conf`);
  }
}

/** Content did not hash to the digest it was requested or announced by. */
export class DigestMismatchError extends ImageError {
  readonly expected: string;
  readonly actual: string;
  constructor(args: { object: string; expected: string; actual: string; cause?: unknown }) {
    super(
      'ERR_DIGEST_MISMATCH',
      `${args.object}: digest mismatch: expected ${args.expected}, got ${args.actual}`,
      {
        cause: args.cause,
      },
    );
    this.expected = args.expected;
    this.actual = args.actual;
  }
}

/** Content was shorter or longer than its descriptor's size (truncated or endless blob). */
export class SizeMismatchError extends ImageError {
  readonly expected: number;
  readonly actual: number;
  constructor(args: { object: string; expected: number; actual: number }) {
    super(
      'ERR_SIZE_MISMATCH',
      `${args.object}: size mismatch: expected ${args.expected} bytes, got ${args.actual}${args.actual > args.expected ? ' or more' : ''}`,
    );
    this.expected = args.expected;
    this.actual = args.actual;
  }
}

/** A manifest, config, token or header exceeded its size cap. */
export class TooLargeError extends ImageError {
  readonly limit: number;
  constructor(object: string, limit: number) {
    super('ERR_TOO_LARGE', `${object} exceeds the size limit of ${limit} bytes`);
    this.limit = limit;
  }
}

/** A manifest/index/config is not valid JSON or does not match its schema. */
export class InvalidManifestError extends ImageError {
  constructor(object: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_MANIFEST', `${object}: ${reason}`, options);
  }
}

/** Docker schema 1 manifests are deprecated and refused. */
export class Schema1UnsupportedError extends ImageError {
  constructor(object: string) {
    super(
      'ERR_SCHEMA1_UNSUPPORTED',
      `${object}: Docker schema 1 manifests are not supported; re-push the image with a current client`,
    );
  }
}

/** Media type unknown, or the document's content contradicts its media type (CVE-2021-41190). */
export class MediaTypeError extends ImageError {
  constructor(object: string, reason: string) {
    super('ERR_MEDIA_TYPE', `${object}: ${reason}`);
  }
}

/** An index has no instance for the requested platform. */
export class NoMatchingPlatformError extends ImageError {
  constructor(object: string, wanted: string, available: readonly string[]) {
    super(
      'ERR_NO_MATCHING_PLATFORM',
      `${object}: no image for platform ${wanted} (available: ${available.join(', ') || 'none'})`,
    );
  }
}

/** The image, manifest or blob does not exist at the source. */
export class NotFoundError extends ImageError {
  constructor(object: string, options?: { cause?: unknown }) {
    super('ERR_NOT_FOUND', `${object}: not found`, options);
  }
}

/** A registry answered with an unexpected HTTP status; `status` and the registry error codes are kept. */
export class RegistryError extends ImageError {
  readonly status: number;
  readonly registryCodes: readonly string[];
  constructor(args: { object: string; status: number; registryCodes?: readonly string[]; detail?: string }) {
    const codes = args.registryCodes?.length ? ` (${args.registryCodes.join(', ')})` : '';
    super(
      'ERR_REGISTRY',
      `${args.object}: registry answered HTTP ${args.status}${codes}${args.detail ? `: ${args.detail}` : ''}`,
    );
    this.status = args.status;
    this.registryCodes = args.registryCodes ?? [];
  }
}

/** Authentication failed or was refused (401/403 after the auth flow). */
export class UnauthorizedError extends ImageError {
  readonly status: number;
  constructor(object: string, status: number, reason?: string) {
    super('ERR_UNAUTHORIZED', `${object}: access denied (HTTP ${status})${reason ? `: ${reason}` : ''}`);
    this.status = status;
  }
}

/** A `WWW-Authenticate` header or a token answer could not be understood. */
export class AuthChallengeError extends ImageError {
  constructor(object: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_AUTH_CHALLENGE', `${object}: ${reason}`, options);
  }
}

/** A credential helper (`docker-credential-<name>`) failed. */
export class CredentialHelperError extends ImageError {
  constructor(helper: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_CREDENTIAL_HELPER', `credential helper docker-credential-${helper}: ${reason}`, options);
  }
}

/** No data arrived for longer than the idle timeout. */
export class IdleTimeoutError extends ImageError {
  constructor(object: string, ms: number) {
    super('ERR_IDLE_TIMEOUT', `${object}: no data for ${ms} ms`);
  }
}

/** A redirect was refused (too many, bad scheme, or a scheme downgrade). */
export class RedirectError extends ImageError {
  constructor(object: string, reason: string) {
    super('ERR_REDIRECT', `${object}: ${reason}`);
  }
}

/** A network-level failure talking to a registry (after retries). */
export class NetworkError extends ImageError {
  constructor(object: string, options?: { cause?: unknown }) {
    const c = options?.cause as { code?: string; message?: string } | undefined;
    super('ERR_NETWORK', `${object}: ${c?.code ?? c?.message ?? 'network error'}`, options);
  }
}

/** An OCI layout, archive or dir: image on disk is malformed. */
export class InvalidLayoutError extends ImageError {
  constructor(object: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_LAYOUT', `${object}: ${reason}`, options);
  }
}

/** The destination cannot store what the source has (e.g. an index into docker-archive:). */
export class UnsupportedError extends ImageError {
  constructor(object: string, reason: string) {
    super('ERR_UNSUPPORTED', `${object}: ${reason}`);
  }
}

/** A (de)compression helper process failed. */
export class CompressionError extends ImageError {
  constructor(object: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_COMPRESSION', `${object}: ${reason}`, options);
  }
}

/** The operation was cancelled through its AbortSignal. */
export class AbortedError extends ImageError {
  constructor(object: string, options?: { cause?: unknown }) {
    super('ERR_ABORTED', `${object}: aborted`, options);
  }
}
