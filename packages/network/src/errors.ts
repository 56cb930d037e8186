/**
 * Errors of @libpod-ts/network: a closed set of classes, each with a stable `code` that callers
 * branch on (`err.code === 'ERR_...'`), which works even when two copies of the package are loaded.
 * Messages name the object and the cause; the underlying error is chained as `cause`.
 */
export class NetworkError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A network name, subnet, port mapping or other argument is malformed. `field` names the argument. */
export class InvalidNetworkInputError extends NetworkError {
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('ERR_NETWORK_INVALID_INPUT', `${field}: ${message}`, options);
    this.field = field;
  }
}

/** No network definition with that name in the config dir or the extra read-only dirs. */
export class NetworkNotFoundError extends NetworkError {
  readonly network: string;
  constructor(network: string) {
    super('ERR_NETWORK_NOT_FOUND', `network ${JSON.stringify(network)} not found`);
    this.network = network;
  }
}

/** A network with that name (or that bridge interface) already exists. */
export class NetworkExistsError extends NetworkError {
  readonly network: string;
  constructor(network: string, what = 'network') {
    super('ERR_NETWORK_EXISTS', `${what} ${JSON.stringify(network)} already exists`);
    this.network = network;
  }
}

/** A requested subnet overlaps another network's subnet or a host route. */
export class SubnetOverlapError extends NetworkError {
  readonly subnet: string;
  readonly conflictsWith: string;
  constructor(subnet: string, conflictsWith: string) {
    super('ERR_NETWORK_SUBNET_OVERLAP', `subnet ${subnet} overlaps ${conflictsWith}`);
    this.subnet = subnet;
    this.conflictsWith = conflictsWith;
  }
}

/** The network still has attached containers and `force` was not given. */
export class NetworkInUseError extends NetworkError {
  readonly network: string;
  readonly containers: string[];
  constructor(network: string, containers: string[]) {
    super(
      'ERR_NETWORK_IN_USE',
      `network ${JSON.stringify(network)} is in use by ${containers.length} container(s): ${containers.slice(0, 5).join(', ')}`,
    );
    this.network = network;
    this.containers = containers;
  }
}

/** A definition from a read-only source (e.g. /etc/cni/net.d) cannot be modified or removed here. */
export class NetworkReadOnlyError extends NetworkError {
  readonly network: string;
  constructor(network: string, source: string) {
    super('ERR_NETWORK_READ_ONLY', `network ${JSON.stringify(network)} comes from read-only ${source}`);
    this.network = network;
  }
}

/** A conflist on disk is not valid JSON or not a CNI network configuration list. */
export class InvalidConfigListError extends NetworkError {
  readonly file: string;
  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_NETWORK_INVALID_CONFLIST', `invalid CNI conflist ${file}: ${reason}`, options);
    this.file = file;
  }
}

/** A CNI plugin binary is not in any plugin dir. */
export class PluginNotFoundError extends NetworkError {
  readonly plugin: string;
  readonly searched: string[];
  constructor(plugin: string, searched: string[]) {
    super(
      'ERR_CNI_PLUGIN_NOT_FOUND',
      `CNI plugin ${JSON.stringify(plugin)} not found in ${searched.join(', ')}; ` +
        `install the Debian package containernetworking-plugins (apt-get install containernetworking-plugins)`,
    );
    this.plugin = plugin;
    this.searched = searched;
  }
}

/**
 * A CNI plugin failed. `cniCode` is the spec's error code (1 incompatible version, 2 unsupported
 * field, 3 unknown container, 4 invalid env, 5 I/O, 6 decode, 7 invalid config, 11 try later,
 * 50 not available, 51 limited connectivity, 100+ plugin specific), or undefined when the plugin
 * printed no error object.
 */
export class CniPluginError extends NetworkError {
  readonly plugin: string;
  readonly command: string;
  readonly cniCode: number | undefined;
  readonly details: string | undefined;
  readonly stderr: string;
  constructor(a: {
    plugin: string;
    command: string;
    network: string;
    cniCode?: number | undefined;
    msg: string;
    details?: string | undefined;
    stderr?: string;
    cause?: unknown;
  }) {
    super(
      'ERR_CNI_PLUGIN_FAILED',
      `CNI ${a.command} of plugin ${a.plugin} on network ${JSON.stringify(a.network)} failed` +
        `${a.cniCode === undefined ? '' : ` (code ${a.cniCode})`}: ${a.msg}${a.details ? ` (${a.details})` : ''}`,
      { cause: a.cause },
    );
    this.plugin = a.plugin;
    this.command = a.command;
    this.cniCode = a.cniCode;
    this.details = a.details;
    this.stderr = a.stderr ?? '';
  }
}

/** A plugin answered with output that is not a valid CNI result for the requested version. */
export class CniResultError extends NetworkError {
  readonly plugin: string;
  constructor(plugin: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_CNI_BAD_RESULT', `CNI plugin ${plugin} returned an invalid result: ${reason}`, options);
    this.plugin = plugin;
  }
}

/** A host port is already bound by another process or mapped by another container. */
export class PortInUseError extends NetworkError {
  readonly hostIp: string;
  readonly hostPort: number;
  readonly protocol: string;
  constructor(hostIp: string, hostPort: number, protocol: string, by: string, options?: { cause?: unknown }) {
    super(
      'ERR_NETWORK_PORT_IN_USE',
      `host port ${hostIp || '0.0.0.0'}:${hostPort}/${protocol} is already in use (${by})`,
      options,
    );
    this.hostIp = hostIp;
    this.hostPort = hostPort;
    this.protocol = protocol;
  }
}

/** A requested static IP is outside the network's subnets or already allocated. */
export class AddressUnavailableError extends NetworkError {
  readonly address: string;
  constructor(address: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_NETWORK_ADDRESS_UNAVAILABLE', `address ${address} is unavailable: ${reason}`, options);
    this.address = address;
  }
}

/** Creating, entering or removing a network namespace failed. */
export class NetnsError extends NetworkError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('ERR_NETNS', `network namespace ${path}: ${message}`, options);
    this.path = path;
  }
}

/** The container is not attached (no record and no cached result) — e.g. a second detach. */
export class NotAttachedError extends NetworkError {
  readonly containerId: string;
  constructor(containerId: string, network?: string) {
    super(
      'ERR_NETWORK_NOT_ATTACHED',
      `container ${containerId} is not attached${network ? ` to network ${JSON.stringify(network)}` : ''}`,
    );
    this.containerId = containerId;
  }
}

/** A host tool (ip, unshare, umount, iptables) is missing or failed. */
export class HostCommandError extends NetworkError {
  readonly command: string;
  readonly stderr: string;
  constructor(command: string, stderr: string, options?: { cause?: unknown }) {
    super('ERR_NETWORK_HOST_COMMAND', `${command} failed: ${stderr.trim() || 'no output'}`, options);
    this.command = command;
    this.stderr = stderr;
  }
}
