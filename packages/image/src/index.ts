export {
  AbortedError,
  AuthChallengeError,
  BlockedRegistryError,
  CompressionError,
  ConfigError,
  CredentialHelperError,
  DigestMismatchError,
  IdleTimeoutError,
  ImageError,
  InvalidLayoutError,
  InvalidManifestError,
  InvalidReferenceError,
  MediaTypeError,
  NetworkError,
  NoMatchingPlatformError,
  NotFoundError,
  RedirectError,
  RegistryError,
  Schema1UnsupportedError,
  ShortNameError,
  SizeMismatchError,
  TooLargeError,
  UnauthorizedError,
  UnknownTransportError,
  UnsupportedError,
} from './errors.js';
export {
  compressionOfLayerMediaType,
  isIndexMediaType,
  isSchema1MediaType,
  isSingleManifestMediaType,
  type LayerCompression,
  layerMediaType,
  type ManifestMediaType,
  MediaTypes,
  SUPPORTED_MANIFEST_MEDIA_TYPES,
} from './manifest/media-types.js';
export {
  ANNOTATION_REF_NAME,
  type Descriptor,
  DescriptorSchema,
  type Digest,
  DigestSchema,
  type DockerManifest,
  type DockerManifestList,
  DockerManifestListSchema,
  DockerManifestSchema,
  type ImageConfig,
  ImageConfigSchema,
  type OciIndex,
  OciIndexSchema,
  OciLayoutFileSchema,
  type OciManifest,
  OciManifestSchema,
  type Platform,
  PlatformSchema,
} from './manifest/schemas.js';
export { createTransportRegistry } from './transports/registry.js';
export type {
  BlobInfo,
  BlobKind,
  BlobStream,
  CopyProgressEvent,
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
  TransportRegistry,
  TryReuseOptions,
} from './types.js';
export { copy, copyWithProgress, type CopyOptions, type CopyResult } from './copy/copy.js';
export { type ImageInspection, inspectImage, listTags } from './copy/inspect.js';
export { digestBytes, VerifyingStream, verifyBytes } from './digest/digest.js';
export {
  convertIndex,
  convertManifest,
  detectManifestMediaType,
  formatPlatform,
  hostPlatform,
  MAX_CONFIG_SIZE,
  MAX_MANIFEST_SIZE,
  type ParsedImageManifest,
  type ParsedIndex,
  type ParsedManifest,
  parseImageConfig,
  parseManifest,
  parsePlatform,
  selectPlatform,
} from './manifest/parse.js';
export {
  DEFAULT_DOMAIN,
  ImageName,
  isShortName,
  parseDockerRef,
  parseNormalizedNamed,
  parseReference,
} from './reference/parse.js';
export {
  findRegistry,
  loadRegistriesConf,
  parseRegistriesConf,
  type PullSource,
  pullSources,
  type RegistriesConf,
  RegistriesConfSchema,
  type RegistryEntry,
  type RegistryMirror,
  resolveShortName,
} from './reference/registries-conf.js';
export { RegistryClient, type RegistryClientOptions } from './registry/client.js';
export { type Credentials, getCredentials } from './registry/credentials.js';
export { type Challenge, parseWwwAuthenticate } from './registry/www-authenticate.js';
export { defaultTransports, parseImageName } from './transports/defaults.js';
export { DirReference, dirTransport } from './transports/dir/transport.js';
export { DockerReference, dockerTransport } from './transports/docker/transport.js';
export {
  DockerArchiveReference,
  DockerArchiveWriter,
  dockerArchiveTransport,
} from './transports/docker-archive/transport.js';
export { OciArchiveReference, ociArchiveTransport } from './transports/oci-archive/transport.js';
export { OciLayoutReference, ociLayoutTransport } from './transports/oci-layout/transport.js';
// --- containers-storage: (images in a @libpod-ts/storage store) ---
export {
  CONTAINERS_STORAGE,
  containersStorageTransport,
  StorageDestination,
  StorageReference,
  StorageSource,
} from './transports/containers-storage/transport.js';
