export { CoreError } from './errors.js';
// --- container lifecycle ---
export {
  AmbiguousContainerError,
  BinaryNotFoundError,
  CommandNotExecutableError,
  CommandNotFoundError,
  ContainerHasDependentsError,
  ContainerNameConflictError,
  ContainerNotFoundError,
  ContainerStateError,
  CoreTimeoutError,
  ImageNotFoundError,
  InvalidOptionsError,
  LibpodClosedError,
  OciRuntimeError,
} from './errors.js';
export { Events, Libpod, type LibpodExtensions, LibpodOptions } from './libpod.js';
// --- images (lp.images) ---
export { Images, type ImagesHooks } from './images/images.js';
export {
  type ImageRemoveReport,
  LoadOptions,
  PruneOptions,
  PullOptions,
  PushOptions,
  RemoveImageOptions,
  SaveFormat,
  SaveOptions,
} from './images/options.js';
export type { ImageHistoryEntry, ImageInspect, ImageInspectConfig } from './images/inspect.js';
export {
  AmbiguousImageError,
  ImageArchiveError,
  ImageHasNamesError,
  ImageInUseError,
  ImageTagNotFoundError,
  InvalidImageNameError,
} from './images/errors.js';
export { StorageIntegration, type StorageSettings } from './storage-integration.js';
export { NetworkIntegration, type NetworkSettings } from './network-integration.js';
export {
  Containers,
  DEFAULT_PATH,
  type ImageProvider,
  type RunResult,
  type SpecBuilder,
  type SpecBuildInput,
  type WaitCondition,
} from './containers/manager.js';
export { ContainerCreateOptions, ContainerName, RestartPolicyString } from './containers/options.js';
export { ContainerRecord, ContainerState, ContainerStatus, RestartPolicy } from './containers/record.js';
export type { Engine, Integrations } from './containers/engine.js';
export { ExecOptions, type ExecResult, type ExecStream } from './containers/exec.js';
export type { AttachOptions, AttachSession } from './containers/attach.js';
export { type LogLine, LogsOptions, K8sFileParser } from './containers/logs.js';
export type { ContainerInspect } from './containers/inspect.js';
export { type ContainerSummary, ListOptions } from './containers/list.js';
export type { ContainerStats } from './containers/stats.js';
export type { TopResult } from './containers/top.js';
export { EventAction, EventFilter, EventLog, EventType, type LibpodEvent } from './events/events.js';
export { findBinary } from './runtime/binaries.js';
export { Layout } from './runtime/layout.js';
export { OciRuntime, type RuntimeState, type RuntimeStatus } from './runtime/oci-runtime.js';
export { conmonCreateArgs, conmonExecArgs } from './runtime/conmon.js';
export { type EngineOptions, findExitHook } from './engine-factory.js';
// --- runtime spec generation (the full API is the subpath export @libpod-ts/core/spec) ---
export {
  type CreateOptions,
  type CreateOptionsInput,
  CreateOptionsSchema,
  type ImageRuntimeConfig,
  type MergedConfig,
  type Spec,
  type SpecOpt,
  cgroupsPathFor,
  defaultSpec,
  findInitBinary,
  generateSpec,
  imageVolumes,
  mergeImageConfig,
  parseCreateOptions,
  resolveUser,
  specFromImage,
} from './spec/index.js';
export {
  GroupNotFoundError,
  HookConfigError,
  ImageVolumeUnmountedError,
  InitNotFoundError,
  InvalidSpecOptionError,
  InvalidUserError,
  InvalidVolumePathError,
  InvalidWorkdirError,
  NoCommandError,
  RlimitExceedsHostError,
  RootfsFileError,
  SeccompProfileError,
  UserNotFoundError,
} from './errors.js';
