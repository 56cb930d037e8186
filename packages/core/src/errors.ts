/**
 * Errors of @libpod-ts/core: a closed set of classes, each with a stable `code` that callers
 * branch on (`err.code === 'ERR_...'`), which works even when two copies of the package are loaded.
 * Messages name the object and the cause; the underlying error is chained as `cause`.
 */
export class CoreError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

// --- container lifecycle (runtime, conmon, containers, events) ---

/** A system binary the lifecycle needs (runc, crun, conmon) is not installed or not executable. */
export class BinaryNotFoundError extends CoreError {
  readonly binary: string;
  readonly debianPackage: string;
  constructor(binary: string, debianPackage: string, searched: readonly string[]) {
    super(
      'ERR_BINARY_NOT_FOUND',
      `${binary} not found (searched PATH and ${searched.join(', ')}); install it: apt-get install ${debianPackage}`,
    );
    this.binary = binary;
    this.debianPackage = debianPackage;
  }
}

/**
 * The OCI runtime or conmon failed. `exitCode` follows Podman: 126 when the container's command
 * exists but cannot be executed, 127 when it does not exist, 125 for any other engine failure.
 */
export class OciRuntimeError extends CoreError {
  readonly exitCode: number;
  readonly containerId: string | undefined;
  constructor(
    message: string,
    options: { exitCode?: number; containerId?: string; cause?: unknown; code?: string } = {},
  ) {
    super(options.code ?? 'ERR_OCI_RUNTIME', message, { cause: options.cause });
    this.exitCode = options.exitCode ?? 125;
    this.containerId = options.containerId;
  }
}

/** The container's command does not exist in its rootfs (Podman exit code 127). */
export class CommandNotFoundError extends OciRuntimeError {
  constructor(message: string, options: { containerId?: string; cause?: unknown } = {}) {
    super(message, { ...options, exitCode: 127, code: 'ERR_COMMAND_NOT_FOUND' });
  }
}

/** The container's command exists but cannot be executed (Podman exit code 126). */
export class CommandNotExecutableError extends OciRuntimeError {
  constructor(message: string, options: { containerId?: string; cause?: unknown } = {}) {
    super(message, { ...options, exitCode: 126, code: 'ERR_COMMAND_NOT_EXECUTABLE' });
  }
}

/** No container with this id, id prefix or name. */
export class ContainerNotFoundError extends CoreError {
  readonly nameOrId: string;
  constructor(nameOrId: string) {
    super('ERR_CONTAINER_NOT_FOUND', `no container with name or id "${nameOrId}"`);
    this.nameOrId = nameOrId;
  }
}

/** An id prefix matches more than one container. */
export class AmbiguousContainerError extends CoreError {
  constructor(prefix: string, count: number) {
    super('ERR_CONTAINER_AMBIGUOUS', `id prefix "${prefix}" matches ${count} containers`);
  }
}

/** The name is already used by another container. */
export class ContainerNameConflictError extends CoreError {
  readonly containerName: string;
  readonly existingId: string;
  constructor(containerName: string, existingId: string) {
    super(
      'ERR_CONTAINER_NAME_CONFLICT',
      `the container name "${containerName}" is already in use by ${existingId.slice(0, 12)}`,
    );
    this.containerName = containerName;
    this.existingId = existingId;
  }
}

/** The operation is not valid in the container's current state (e.g. exec in a stopped container). */
export class ContainerStateError extends CoreError {
  readonly containerId: string;
  readonly status: string;
  constructor(containerId: string, status: string, operation: string) {
    super(
      status === 'running' || status === 'paused' ? 'ERR_CONTAINER_STATE' : 'ERR_CONTAINER_NOT_RUNNING',
      `cannot ${operation} container ${containerId.slice(0, 12)}: it is ${status}`,
    );
    this.containerId = containerId;
    this.status = status;
  }
}

/**
 * The container cannot be removed while other containers depend on it (they joined its network
 * namespace: `network: 'container:<id>'`), not even with `force`, as podman refuses it ("has
 * dependent containers which must be removed before it"). `dependents` are their full ids.
 */
export class ContainerHasDependentsError extends CoreError {
  readonly containerId: string;
  readonly dependents: readonly string[];
  constructor(containerId: string, dependents: readonly string[]) {
    super(
      'ERR_CONTAINER_HAS_DEPENDENTS',
      `container ${containerId.slice(0, 12)} has dependent containers which must be removed before it: ${dependents.map((d) => d.slice(0, 12)).join(', ')}`,
    );
    this.containerId = containerId;
    this.dependents = dependents;
  }
}

/** Options rejected by a schema; `issues` names each bad field. */
export class InvalidOptionsError extends CoreError {
  readonly issues: readonly { path: string; message: string }[];
  constructor(what: string, issues: readonly { path: string; message: string }[], cause?: unknown) {
    super(
      'ERR_INVALID_OPTIONS',
      `invalid ${what}: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
      { cause },
    );
    this.issues = issues;
  }
}

/** The operation timed out (e.g. waiting for a container condition). */
export class CoreTimeoutError extends CoreError {
  constructor(message: string) {
    super('ERR_TIMEOUT', message);
  }
}

/** The Libpod instance was closed. */
export class LibpodClosedError extends CoreError {
  constructor() {
    super('ERR_LIBPOD_CLOSED', 'this Libpod instance is closed');
  }
}

// --- runtime spec generation (src/spec) ---

/** A spec option is not valid (unknown capability or signal, a device that is not one, ...). */
export class InvalidSpecOptionError extends CoreError {
  readonly option: string;
  constructor(option: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_SPEC_OPTION', `invalid ${option}: ${reason}`, options);
    this.option = option;
  }
}

/** The working directory is refused (relative, under /proc or /sys — CVE-2024-21626 — or not a directory). */
export class InvalidWorkdirError extends CoreError {
  readonly workdir: string;
  constructor(workdir: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_WORKDIR', `working directory "${workdir}" refused: ${reason}`, options);
    this.workdir = workdir;
  }
}

/** A user spec is malformed or a numeric id is out of range (containerd CVE-2024-40635 class). */
export class InvalidUserError extends CoreError {
  readonly user: string;
  constructor(user: string, reason: string) {
    super('ERR_INVALID_USER', `user "${user}" refused: ${reason}`);
    this.user = user;
  }
}

/** A user name is not in the image's /etc/passwd. */
export class UserNotFoundError extends CoreError {
  readonly user: string;
  constructor(user: string, rootfs: string) {
    super('ERR_USER_NOT_FOUND', `user "${user}" not found in /etc/passwd of ${rootfs}`);
    this.user = user;
  }
}

/** A group name is not in the image's /etc/group. */
export class GroupNotFoundError extends CoreError {
  readonly group: string;
  constructor(group: string, rootfs: string) {
    super('ERR_GROUP_NOT_FOUND', `group "${group}" not found in /etc/group of ${rootfs}`);
    this.group = group;
  }
}

/** A file read from the rootfs (/etc/passwd, /etc/group) is not a regular file or is too large. */
export class RootfsFileError extends CoreError {
  readonly file: string;
  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_ROOTFS_FILE', `cannot use ${file} of the rootfs: ${reason}`, options);
    this.file = file;
  }
}

/** An image or caller volume path is refused (a `..` component — containerd CVE-2022-23648 — or relative). */
export class InvalidVolumePathError extends CoreError {
  readonly volumePath: string;
  constructor(volumePath: string, reason: string) {
    super('ERR_INVALID_VOLUME_PATH', `volume path "${volumePath}" refused: ${reason}`);
    this.volumePath = volumePath;
  }
}

/** An image volume has no mount and the image-volume mode is `anonymous`: the caller must provide one. */
export class ImageVolumeUnmountedError extends CoreError {
  readonly destinations: readonly string[];
  constructor(destinations: readonly string[]) {
    super(
      'ERR_IMAGE_VOLUME_UNMOUNTED',
      `image volumes without a mount: ${destinations.join(', ')} (pass a volume mount for each, or imageVolume "tmpfs" or "ignore")`,
    );
    this.destinations = destinations;
  }
}

/** Neither the image nor the options give a command to run. */
export class NoCommandError extends CoreError {
  constructor() {
    super('ERR_NO_COMMAND', 'no command specified: the image has no Entrypoint/Cmd and none was given');
  }
}

/** A seccomp profile cannot be read or is not valid. */
export class SeccompProfileError extends CoreError {
  readonly profile: string;
  constructor(profile: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_SECCOMP_PROFILE', `seccomp profile ${profile}: ${reason}`, options);
    this.profile = profile;
  }
}

/** An OCI hook definition (oci-hooks(5)) in a hooks directory is not valid. */
export class HookConfigError extends CoreError {
  readonly file: string;
  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_HOOK', `hook ${file}: ${reason}`, options);
    this.file = file;
  }
}

/** No init binary (catatonit, tini) was found for `init: true`. */
export class InitNotFoundError extends CoreError {
  constructor(searched: readonly string[]) {
    super(
      'ERR_INIT_NOT_FOUND',
      `no init binary found (searched ${searched.join(', ')}); install catatonit or tini, or pass initPath`,
    );
  }
}

/** An explicit rlimit asks for more than the host's hard limit (no CAP_SYS_RESOURCE to raise it). */
export class RlimitExceedsHostError extends CoreError {
  readonly rlimit: string;
  constructor(rlimit: string, requested: number, hostHard: number) {
    super(
      'ERR_RLIMIT_EXCEEDS_HOST',
      `${rlimit} ${requested} exceeds the host's hard limit ${hostHard}; the runtime could not set it`,
    );
    this.rlimit = rlimit;
  }
}

/** No image with this name or id in the store. */
export class ImageNotFoundError extends CoreError {
  readonly reference: string;
  constructor(reference: string, cause?: unknown) {
    super('ERR_IMAGE_NOT_FOUND', `image "${reference}" is not in the store`, { cause });
    this.reference = reference;
  }
}
