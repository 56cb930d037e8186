/** Real-component test rig shared by every package's tests (registry, offline images, leak check, probes). */
export type {
  BuildImageOptions,
  BuiltImage,
  BuiltIndex,
  BuiltLayer,
  Descriptor,
  ImageConfigOptions,
  MultiPlatformOptions,
  OciConfig,
  OciManifest,
  Platform,
  RawTarEntry,
  RigFile,
  RigGroup,
  RigLayer,
  RigUser,
} from './images.js';
export {
  BUSYBOX_PATH,
  buildBusyboxImage,
  buildMultiPlatformIndex,
  busyboxApplets,
  DEFAULT_GROUPS,
  DEFAULT_USERS,
  MEDIA_TYPES,
  MINIMAL_APPLETS,
  REF_NAME_ANNOTATION,
} from './images.js';
export type { RegistryAuth, RegistryOptions, RigRegistry } from './registry.js';
export { freePort, REGISTRY_BIN, startRegistry } from './registry.js';
export type { PushOptions, SkopeoSide } from './skopeo.js';
export { inspectWithSkopeo, pullWithSkopeo, pushWithSkopeo, skopeo, skopeoRegistryArgs } from './skopeo.js';
export { makeTempDir, removeTempDir, TEMP_PREFIX } from './tmp.js';
export type { AccessEntry, MintOptions, TokenRequestRecord } from './token-server.js';
export { parseScope } from './token-server.js';
export type { ImageSchemaName, ImageSpecValidator, RuntimeSpecValidate } from './schemas.js';
export { loadImageSpecValidator, loadRuntimeSpecValidator, specSchemasDir } from './schemas.js';
export type { HostLock } from './host-lock.js';
export { acquireHostLock, LOCK_PATH } from './host-lock.js';
export type { ExtraPathKind, HostSnapshot, Leak, LeakKind } from './leaks.js';
export {
  diffSnapshots,
  findLeaks,
  formatLeaks,
  LEAK_KINDS,
  registerLeakCheckPath,
  snapshotHost,
} from './leaks.js';
export type { ProbeResult, SkipUnless } from './probes.js';
export { probeCriu, probeCrun, probeOverlay, probeRoot, probeRunc, skipUnless } from './probes.js';
export { ensurePodmanReference, PODMAN_CONTAINERS_CONF, PODMAN_REFERENCE_CONF } from './podman.js';
