import { access, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { type AttachmentRecord, RecordStore } from './attach/records.js';
import {
  type AttachRequest,
  AttachRequestSchema,
  type AttachResult,
  type AttachedInterface,
  type NetworkRequest,
  NetworkRequestSchema,
  type SetupRequest,
  SetupRequestSchema,
  type SetupResult,
} from './attach/schema.js';
import { mainPlugin } from './config/conflist.js';
import type { ConfList, CreateNetworkOptions, NetworkInfo } from './config/schema.js';
import { ConfigStore, type DefaultNetworkSpec, inputError, type LoadedNetwork } from './config/store.js';
import { ResultCache, type CacheEntry } from './cni/cache.js';
import {
  addNetworkList,
  checkNetworkList,
  decodeCachedConfig,
  delNetworkList,
  type PluginStatus,
  statusNetworkList,
} from './cni/chain.js';
import { DEFAULT_PLUGIN_DIRS } from './cni/plugins.js';
import type { CniResult, RuntimeConf } from './cni/types.js';
import { HostsRegistry } from './dns/hosts.js';
import { parseResolvConf, renderResolvConf } from './dns/resolv.js';
import {
  AddressUnavailableError,
  InvalidNetworkInputError,
  NetworkInUseError,
  NotAttachedError,
} from './errors.js';
import { deleteLink } from './host/links.js';
import { pruneSharedChains, removeContainerRulesBatched, removeMasqChain } from './host/iptables.js';
import { cidrAddress, contains, formatIp, parseCidr, parseIp } from './ip/cidr.js';
import { mountPoints, NetnsDir } from './netns/netns.js';
import { type HeldPorts, holdPorts } from './ports/hold.js';
import { type ResolvedPort, resolvePorts, toCniPortMappings } from './ports/ports.js';
import { isEnoent, readIfExists } from './util/fs.js';
import { KeyedMutex, withFileLock } from './util/lock.js';

export const NetworkManagerOptionsSchema = z.object({
  /** Store root; network definitions default to `<root>/networks`. */
  root: z.string().default('/var/lib/libpod-ts'),
  /** Volatile state root; netns, CNI result cache, IPAM and records default under it. */
  runRoot: z.string().default('/run/libpod-ts'),
  configDir: z.string().optional(),
  /** Read-only conflist sources. */
  extraConfigDirs: z.array(z.string()).default(['/etc/cni/net.d']),
  /** CNI result cache, host-local IPAM, attachment records, hosts registry. Default `<runRoot>/network`. */
  stateDir: z.string().optional(),
  /** Where netns bind mounts live. Default `<runRoot>/netns`. */
  netnsDir: z.string().optional(),
  pluginDirs: z.array(z.string()).default(DEFAULT_PLUGIN_DIRS),
  defaultNetwork: z
    .object({ name: z.string(), subnet: z.string(), bridge: z.string() })
    .default({ name: 'podman', subnet: '10.88.0.0/16', bridge: 'cni-podman0' }),
  /** The host resolv.conf that container resolv.conf files derive from. */
  hostResolvConf: z.string().default('/etc/resolv.conf'),
});
export type NetworkManagerOptions = z.input<typeof NetworkManagerOptionsSchema>;

export interface TeardownReport {
  /** Plugin DEL failures that teardown worked around (state removed by hand). */
  errors: unknown[];
}

export interface CleanupReport {
  containers: string[];
  netns: string[];
  cacheEntries: number;
  ipamFiles: number;
}

const nextIf = (used: Set<string>) => {
  for (let i = 0; ; i++) if (!used.has(`eth${i}`)) return `eth${i}`;
};

/**
 * The network side of a container's life. Typical use by core:
 *
 *   const net = new NetworkManager({ root, runRoot });
 *   const s = await net.setup({ containerId, name, netns: { mode: 'bridge' }, networks, portMappings,
 *                               hosts: { path: bundle + '/hosts' }, resolvConfPath: bundle + '/resolv.conf' });
 *   // put s.netnsPath into the OCI spec's network namespace; bind-mount the two files
 *   ...
 *   await net.teardown(containerId);   // on stop/rm/exit hook, from any process
 *   await net.cleanupStale({ isAlive }); // when opening a store after a crash
 *
 * Every operation is safe to call from several processes on one store: state lives in files
 * written atomically, network definitions and the hosts registry are updated under file locks.
 */
export class NetworkManager {
  readonly options: z.output<typeof NetworkManagerOptionsSchema> & {
    configDir: string;
    stateDir: string;
    netnsDir: string;
  };
  readonly #config: ConfigStore;
  readonly #cache: ResultCache;
  readonly #records: RecordStore;
  readonly #hosts: HostsRegistry;
  readonly #netns: NetnsDir;
  readonly #mutex = new KeyedMutex();

  constructor(opts: NetworkManagerOptions = {}) {
    const r = NetworkManagerOptionsSchema.safeParse(opts);
    if (!r.success) throw inputError(r.error, 'options');
    const o = r.data;
    this.options = {
      ...o,
      configDir: o.configDir ?? join(o.root, 'networks'),
      stateDir: o.stateDir ?? join(o.runRoot, 'network'),
      netnsDir: o.netnsDir ?? join(o.runRoot, 'netns'),
    };
    this.#config = new ConfigStore({
      configDir: this.options.configDir,
      extraConfigDirs: o.extraConfigDirs,
      defaultNetwork: o.defaultNetwork as DefaultNetworkSpec,
    });
    this.#cache = new ResultCache(join(this.options.stateDir, 'results'));
    this.#records = new RecordStore(join(this.options.stateDir, 'containers'));
    this.#hosts = new HostsRegistry(this.options.stateDir);
    this.#netns = new NetnsDir(this.options.netnsDir);
  }

  /** host-local allocations of networks defined in configDir live here. */
  get ipamDir(): string {
    return join(this.options.stateDir, 'ipam');
  }

  // ---- network definitions -------------------------------------------------------------------

  async createNetwork(opts: CreateNetworkOptions): Promise<NetworkInfo> {
    return (await this.#config.create(opts)).info;
  }

  async listNetworks(filter?: { label?: Record<string, string>; driver?: string }): Promise<NetworkInfo[]> {
    await this.#config.ensureDefault();
    return (await this.#config.loadAll())
      .map((n) => structuredClone(n.info))
      .filter(
        (i) =>
          (!filter?.driver || i.driver === filter.driver) &&
          Object.entries(filter?.label ?? {}).every(([k, v]) => i.labels[k] === v),
      );
  }

  async inspectNetwork(name: string): Promise<NetworkInfo> {
    // A copy: the parsed definitions are cached (see ConfigStore).
    return structuredClone((await this.#config.get(name)).info);
  }

  /** Containers attached to a network (from the records). */
  async networkUsers(name: string): Promise<string[]> {
    return (await this.#records.all())
      .filter((r) => r.networks.some((n) => n.name === name))
      .map((r) => r.containerId);
  }

  /**
   * Removes a network: refuses while containers are attached unless `force` (which disconnects
   * them first); deletes the conflist, the bridge interface and the network's IPAM directory.
   */
  async removeNetwork(name: string, o: { force?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    const n = await this.#config.get(name);
    const users = await this.networkUsers(name);
    if (users.length && !o.force) throw new NetworkInUseError(name, users);
    for (const id of users) await this.disconnect(id, name, { signal: o.signal });
    await this.#config.remove(name);
    const bridge = n.info.driver === 'bridge' ? n.info.networkInterface : undefined;
    if (bridge) await deleteLink(bridge, o.signal);
    await rm(join(this.ipamDir, name), { recursive: true, force: true });
    await this.#maybePruneChains();
  }

  /** Removes every writable network without containers, except the default one. */
  async pruneNetworks(o: { signal?: AbortSignal } = {}): Promise<string[]> {
    const removed: string[] = [];
    for (const n of await this.#config.loadAll()) {
      if (n.info.readOnly || n.conf.name === this.options.defaultNetwork.name) continue;
      if ((await this.networkUsers(n.conf.name)).length) continue;
      await this.removeNetwork(n.conf.name, o);
      removed.push(n.conf.name);
    }
    return removed;
  }

  /** VERSION (and STATUS where supported) of every plugin of a network. */
  async networkStatus(name: string, signal?: AbortSignal): Promise<PluginStatus[]> {
    const n = await this.#config.get(name);
    return statusNetworkList(n.conf, { pluginDirs: this.options.pluginDirs, signal });
  }

  // ---- namespaces ----------------------------------------------------------------------------

  /** Creates the container's netns (lo up) in netnsDir and returns its path. */
  createNetns(containerId: string, signal?: AbortSignal): Promise<string> {
    return this.#netns.create(containerId, signal);
  }

  removeNetns(path: string): Promise<void> {
    return this.#netns.remove(path);
  }

  // ---- attach / detach -----------------------------------------------------------------------

  /** The conflist the plugins run with: host-local of our own networks allocates under ipamDir. */
  #effective(n: LoadedNetwork): ConfList {
    const conf = structuredClone(n.conf) as ConfList;
    if (n.info.readOnly) return conf;
    for (const p of conf.plugins as Record<string, unknown>[]) {
      const ipam = p.ipam as Record<string, unknown> | undefined;
      if (ipam?.type === 'host-local' && ipam.dataDir === undefined) ipam.dataDir = this.ipamDir;
    }
    return conf;
  }

  #ipamDataDir(n: LoadedNetwork): string | undefined {
    const ipam = mainPlugin(this.#effective(n)).ipam as Record<string, unknown> | undefined;
    if (ipam?.type !== 'host-local') return undefined;
    return typeof ipam.dataDir === 'string' ? ipam.dataDir : '/var/lib/cni/networks';
  }

  async #checkStaticIp(n: LoadedNetwork, ip: string): Promise<void> {
    const a = parseIp(ip);
    if (!a) throw new InvalidNetworkInputError('networks.ip', `${JSON.stringify(ip)} is not an IP address`);
    const subnets = n.info.subnets.map((s) => parseCidr(s.subnet)).filter((c) => !!c);
    if (!subnets.some((c) => contains(c, a))) {
      throw new AddressUnavailableError(ip, `not in a subnet of network ${JSON.stringify(n.conf.name)}`);
    }
    if (n.info.subnets.some((s) => s.gateway && parseIp(s.gateway)?.value === a.value)) {
      throw new AddressUnavailableError(ip, 'it is the gateway');
    }
    const dir = this.#ipamDataDir(n);
    if (
      dir &&
      (await access(join(dir, n.conf.name, formatIp(a))).then(
        () => true,
        () => false,
      ))
    ) {
      throw new AddressUnavailableError(ip, `already allocated on network ${JSON.stringify(n.conf.name)}`);
    }
  }

  #rt(
    containerId: string,
    netns: string,
    ifName: string,
    req: z.output<typeof NetworkRequestSchema>,
    ports: ResolvedPort[],
  ): RuntimeConf {
    const args: [string, string][] = [['IgnoreUnknown', '1']];
    if (req.mac) args.push(['MAC', req.mac]);
    const capabilityArgs: Record<string, unknown> = {};
    if (ports.length) capabilityArgs.portMappings = toCniPortMappings(ports);
    if (req.ip) capabilityArgs.ips = [formatIp(parseIp(req.ip)!)];
    if (req.aliases.length) capabilityArgs.aliases = { [req.name]: req.aliases };
    return { containerId, netns, ifName, args, capabilityArgs };
  }

  async #addOne(
    containerId: string,
    netns: string,
    ifName: string,
    req: z.output<typeof NetworkRequestSchema>,
    n: LoadedNetwork,
    ports: ResolvedPort[],
    signal?: AbortSignal,
  ): Promise<AttachmentRecord['networks'][number]> {
    if (req.ip) await this.#checkStaticIp(n, req.ip);
    const rt = this.#rt(containerId, netns, ifName, req, ports);
    const result = await addNetworkList(this.#effective(n), rt, {
      pluginDirs: this.options.pluginDirs,
      cache: this.#cache,
      signal,
    });
    return { name: req.name, ifName, aliases: req.aliases, ...describeResult(result, netns, ifName) };
  }

  /**
   * DEL of one cached attachment. Strict mode throws and keeps the cache entry for a retry;
   * `force` mode (teardown, cleanup) returns the error after removing by hand what the failing
   * plugin may have left (masquerade chain, host-local allocation) and the cache entry.
   */
  async #delEntry(e: CacheEntry, signal?: AbortSignal, force = false, netnsGoing = false): Promise<unknown> {
    const list = decodeCachedConfig(e.config);
    // A file in our netnsDir is a netns only while mounted; a foreign path only while it exists.
    // `netnsGoing`: teardown is unmounting it right now (nothing of the container is left in it).
    const ours = e.netns.startsWith(`${this.options.netnsDir}/`);
    const usable =
      !netnsGoing && e.netns !== '' && (ours ? (await mountPoints()).has(e.netns) : await exists(e.netns));
    const netns = usable ? e.netns : '';
    const rt: RuntimeConf = {
      containerId: e.containerId,
      netns,
      ifName: e.ifName,
      args: e.cniArgs,
      capabilityArgs: e.capabilityArgs,
    };
    // The bridge plugin tears down its masquerade rules only inside an existing netns; without
    // one we do (the chain is named after the container, not its address, so this cannot touch
    // a successor that gets the address once host-local released it). The firewall plugin's
    // rules go in the same transaction, before its DEL (which then has nothing to commit); the
    // DELs before it run meanwhile.
    const main = mainPlugin(list);
    const wantMasq = !netns && main.type === 'bridge' && main.ipMasq === true;
    const firewall = list.plugins.some((p) => p.type === 'firewall');
    const rules =
      wantMasq || firewall
        ? removeContainerRulesBatched({
            network: list.name,
            containerId: e.containerId,
            ips: (e.result?.ips ?? []).map((i) => i.address),
            masq: wantMasq,
            firewall,
          }).catch(() => (wantMasq ? removeMasqChain(list.name, e.containerId).catch(() => {}) : undefined))
        : undefined;
    try {
      await delNetworkList(list, rt, e.result, {
        pluginDirs: this.options.pluginDirs,
        cache: this.#cache,
        signal,
        beforeDel: async (p) => {
          if (p.type === 'firewall') await rules;
        },
      });
    } catch (err) {
      await rules;
      if (!force) throw err;
      await removeMasqChain(list.name, e.containerId);
      await freeHostLocal(list, e.containerId);
      await this.#cache.remove(e.networkName, e.containerId, e.ifName);
      return err;
    }
    await rules;
    await this.#cache.remove(e.networkName, e.containerId, e.ifName);
    return undefined;
  }

  async #takenPorts(except: string): Promise<ResolvedPort[]> {
    return (await this.#records.all()).filter((r) => r.containerId !== except).flatMap((r) => r.ports);
  }

  /**
   * Attaches a container's existing netns to networks: CNI ADD per network (first network gets
   * the port mappings), hosts registry entries, a record for detach. On failure everything done
   * so far is undone (DEL in reverse) and the error is thrown.
   */
  async attach(input: AttachRequest, signal?: AbortSignal): Promise<AttachResult> {
    const p = AttachRequestSchema.safeParse(input);
    if (!p.success) throw inputError(p.error);
    const req = p.data;
    return this.#mutex.run(req.containerId, async () => {
      if (await this.#records.get(req.containerId)) {
        throw new InvalidNetworkInputError('containerId', `container ${req.containerId} is already attached`);
      }
      return this.#attachParsed(req, false, signal);
    });
  }

  async #attachParsed(
    req: z.output<typeof AttachRequestSchema>,
    ownsNetns: boolean,
    signal?: AbortSignal,
    resolved?: ResolvedPort[],
  ): Promise<AttachResult> {
    const names = new Set<string>();
    const ifs = new Set<string>();
    for (const n of req.networks) {
      if (names.has(n.name)) throw new InvalidNetworkInputError('networks', `network ${n.name} listed twice`);
      names.add(n.name);
      if (n.interface) {
        if (ifs.has(n.interface))
          throw new InvalidNetworkInputError('networks.interface', `${n.interface} used twice`);
        ifs.add(n.interface);
      }
    }
    const loaded = await Promise.all(req.networks.map((n) => this.#config.get(n.name)));
    const record: AttachmentRecord = {
      containerId: req.containerId,
      name: req.name ?? req.containerId,
      netnsPath: req.netnsPath,
      ownsNetns,
      mode: 'bridge',
      networks: [],
      ports: [],
      state: 'setting-up',
      pid: process.pid,
    };
    await this.#doAttach(record, req.networks, loaded, req.portMappings, signal, resolved);
    await this.#registerHosts(record, req.hosts);
    return toResult(record);
  }

  async #doAttach(
    record: AttachmentRecord,
    nets: z.output<typeof NetworkRequestSchema>[],
    loaded: LoadedNetwork[],
    portMappings: z.output<typeof AttachRequestSchema>['portMappings'],
    signal?: AbortSignal,
    resolved?: ResolvedPort[],
  ): Promise<void> {
    if (!(await exists(record.netnsPath))) {
      throw new InvalidNetworkInputError('netnsPath', `${record.netnsPath} does not exist`);
    }
    const used = new Set(nets.map((n) => n.interface).filter((x): x is string => !!x));
    if (resolved) {
      // Chosen (and held) by setup before the netns existed.
      record.ports = resolved;
      await this.#records.put(record);
    } else {
      // Port choice and recording happen under one lock so two processes cannot take one port.
      await withFileLock(
        join(this.options.stateDir, 'ports.lock'),
        async () => {
          record.ports = portMappings.length
            ? await resolvePorts(portMappings, await this.#takenPorts(record.containerId))
            : [];
          await this.#records.put(record);
        },
        signal,
      );
    }
    try {
      for (const [i, n] of nets.entries()) {
        const ifName = n.interface ?? nextIf(used);
        used.add(ifName);
        record.networks.push(
          await this.#addOne(
            record.containerId,
            record.netnsPath,
            ifName,
            n,
            loaded[i]!,
            i === 0 ? record.ports : [],
            signal,
          ),
        );
        await this.#records.put(record);
      }
    } catch (err) {
      for (const n of [...record.networks].reverse()) {
        const e = await this.#cache.get(n.name, record.containerId, n.ifName);
        if (e) await this.#delEntry(e).catch(() => {});
      }
      await this.#records.remove(record.containerId);
      throw err;
    }
    record.state = 'ready';
    await this.#records.put(record);
  }

  async #registerHosts(
    record: AttachmentRecord,
    hosts: z.output<typeof AttachRequestSchema>['hosts'],
  ): Promise<void> {
    const dnsOf = new Map<string, boolean>();
    for (const n of record.networks)
      dnsOf.set(n.name, (await this.#config.get(n.name).catch(() => undefined))?.info.dnsEnabled ?? false);
    await this.#hosts.update(record.containerId, (m) => ({
      name: record.name,
      hostname: hosts?.hostname ?? m?.hostname,
      hostsPath: hosts?.path ?? m?.hostsPath,
      extraHosts: hosts?.extraHosts ?? m?.extraHosts ?? [],
      networks: Object.fromEntries(
        record.networks.map((n) => [
          n.name,
          {
            ips: n.addresses
              .map((a) => cidrAddress(a) && formatIp(cidrAddress(a)!))
              .filter((x): x is string => !!x),
            aliases: n.aliases,
            dns: dnsOf.get(n.name) ?? false,
          },
        ]),
      ),
    }));
  }

  /** What a container is attached to (networks, addresses, MACs, ports, netns); undefined if nothing. */
  inspectAttachment(containerId: string): Promise<AttachmentRecord | undefined> {
    return this.#records.get(containerId);
  }

  /** /etc/hosts content for a container, from the hosts registry. */
  hostsFor(containerId: string): Promise<string> {
    return this.#hosts.render(containerId);
  }

  /** resolv.conf content for a container by podman's rules (see renderResolvConf). */
  async resolvConfFor(o: {
    ownNetns: boolean;
    ipv6: boolean;
    dns?: string[];
    dnsSearch?: string[];
    dnsOptions?: string[];
  }): Promise<string> {
    let text = (await readIfExists(this.options.hostResolvConf)) ?? '';
    const parsed = parseResolvConf(text);
    // systemd-resolved's stub (127.0.0.53) is useless inside a netns; its upstream list is not.
    if (o.ownNetns && parsed.nameservers.length && parsed.nameservers.every((n) => n.startsWith('127.'))) {
      const upstream = await readIfExists('/run/systemd/resolve/resolv.conf');
      if (upstream) text = upstream;
    }
    return renderResolvConf(parseResolvConf(text), o);
  }

  /**
   * Detaches a container from all its networks (DEL from the result cache, so it works from a
   * fresh process), removes its hosts entries and record. Does not remove the netns (teardown
   * does). Returns false when nothing was attached.
   */
  async detach(containerId: string, signal?: AbortSignal): Promise<boolean> {
    return this.#mutex.run(containerId, async () => {
      const record = await this.#records.get(containerId);
      const entries = (await this.#cache.list(containerId)).entries.filter(
        (e) => e.containerId === containerId,
      );
      let first: unknown;
      for (const e of entries.reverse()) {
        try {
          await this.#delEntry(e, signal);
        } catch (err) {
          first ??= err;
        }
      }
      if (first) throw first;
      await this.#hosts.update(containerId, () => undefined);
      if (record && !record.ownsNetns) await this.#records.remove(containerId);
      else if (record) await this.#records.put({ ...record, networks: [], ports: [] });
      return !!record || entries.length > 0;
    });
  }

  /** Connects a set-up container to one more network (podman network connect). */
  async connect(
    containerId: string,
    network: NetworkRequest | string,
    signal?: AbortSignal,
  ): Promise<AttachedInterface> {
    const p = NetworkRequestSchema.safeParse(typeof network === 'string' ? { name: network } : network);
    if (!p.success) throw inputError(p.error, 'network');
    const req = p.data;
    return this.#mutex.run(containerId, async () => {
      const record = await this.#records.get(containerId);
      if (!record?.netnsPath || record.mode === 'host') throw new NotAttachedError(containerId);
      if (record.networks.some((n) => n.name === req.name)) {
        throw new InvalidNetworkInputError(
          'network',
          `container ${containerId} is already connected to ${req.name}`,
        );
      }
      const n = await this.#config.get(req.name);
      const ifName = req.interface ?? nextIf(new Set(record.networks.map((x) => x.ifName)));
      const att = await this.#addOne(containerId, record.netnsPath, ifName, req, n, [], signal);
      record.networks.push(att);
      await this.#records.put(record);
      await this.#registerHosts(record, undefined);
      return {
        network: att.name,
        ifName: att.ifName,
        mac: att.mac,
        addresses: att.addresses,
        gateways: att.gateways,
      };
    });
  }

  /** Disconnects a container from one network (podman network disconnect). */
  async disconnect(
    containerId: string,
    network: string,
    o: { signal?: AbortSignal | undefined } = {},
  ): Promise<void> {
    await this.#mutex.run(containerId, async () => {
      const record = await this.#records.get(containerId);
      const att = record?.networks.find((n) => n.name === network);
      if (!record || !att) throw new NotAttachedError(containerId, network);
      const e = await this.#cache.get(network, containerId, att.ifName);
      if (e) await this.#delEntry(e, o.signal);
      record.networks = record.networks.filter((n) => n.name !== network);
      if (record.networks.length === 0) record.ports = [];
      await this.#records.put(record);
      await this.#registerHosts(record, undefined);
    });
  }

  /** CNI CHECK of every attachment of a container against its cached results. */
  async check(containerId: string, signal?: AbortSignal): Promise<void> {
    const entries = (await this.#cache.list()).entries.filter(
      (e) => e.containerId === containerId && e.status === 'added',
    );
    if (!entries.length) throw new NotAttachedError(containerId);
    for (const e of entries) {
      const rt: RuntimeConf = {
        containerId,
        netns: e.netns,
        ifName: e.ifName,
        args: e.cniArgs,
        capabilityArgs: e.capabilityArgs,
      };
      await checkNetworkList(decodeCachedConfig(e.config), rt, e.result!, {
        pluginDirs: this.options.pluginDirs,
        cache: this.#cache,
        signal,
      });
    }
  }

  // ---- the two calls core makes ---------------------------------------------------------------

  /**
   * Everything a container needs before the runtime starts: the netns per mode, CNI attachments
   * (bridge mode), port mappings, hosts and resolv.conf files. On failure nothing is left.
   */
  async setup(
    input: SetupRequest,
    signal?: AbortSignal,
    hooks: {
      /**
       * Called once the netns exists (before the CNI ADDs), so a runtime may create the
       * container in it meanwhile; the hosts and resolv.conf files are written in place later.
       * With `holdPorts`, `held` carries the bound host ports: from this call on the callee
       * owns them (passes `held.fds` to the container's long-lived parent, then `held.close()`),
       * also when setup fails later.
       */
      onNetnsReady?: (path: string, held?: HeldPorts) => void;
      /**
       * Bind the published host ports and keep them (podman's reservation), before anything
       * else is created: a port a host process holds fails with PortInUseError first. Without
       * an onNetnsReady to take them, they are closed when setup returns. `heldBy`: processes
       * whose hold does not count (a restarting container's previous conmon; see holdPorts).
       */
      holdPorts?: boolean | { heldBy?: readonly number[] };
    } = {},
  ): Promise<SetupResult> {
    const p = SetupRequestSchema.safeParse(input);
    if (!p.success) throw inputError(p.error);
    const req = p.data;
    const mode = req.netns;
    if (mode.mode !== 'bridge' && req.portMappings.length) {
      throw new InvalidNetworkInputError('portMappings', `port mappings need bridge mode, not ${mode.mode}`);
    }
    // The record is claimed first (atomically), so the failure path below may tear down by id,
    // and a concurrent cleanupStale sees a live 'setting-up' owner instead of an orphan netns.
    const owns = mode.mode === 'bridge' || mode.mode === 'none';
    if (mode.mode === 'container' || mode.mode === 'ns') {
      if (!(await exists(mode.path)))
        throw new InvalidNetworkInputError('netns.path', `${mode.path} does not exist`);
    }
    const placeholder: AttachmentRecord = {
      containerId: req.containerId,
      name: req.name ?? req.containerId,
      netnsPath: owns ? this.#netns.pathOf(req.containerId) : 'path' in mode ? mode.path : '',
      ownsNetns: owns,
      mode: mode.mode,
      networks: [],
      ports: [],
      state: 'setting-up',
      pid: process.pid,
    };
    if (!(await this.#records.create(placeholder))) {
      throw new InvalidNetworkInputError('containerId', `container ${req.containerId} is already set up`);
    }
    const netnsPath = placeholder.netnsPath || undefined;
    let result: AttachResult = { interfaces: [], ips: [], ports: [] };
    let held: HeldPorts | undefined;
    let resolved: ResolvedPort[] | undefined;
    try {
      if (hooks.holdPorts && mode.mode === 'bridge' && req.portMappings.length) {
        const heldBy = typeof hooks.holdPorts === 'object' ? (hooks.holdPorts.heldBy ?? []) : [];
        await withFileLock(
          join(this.options.stateDir, 'ports.lock'),
          async () => {
            const ports = await resolvePorts(req.portMappings, await this.#takenPorts(req.containerId), {
              heldBy,
            });
            held = await holdPorts(ports, { heldBy });
            resolved = ports;
            await this.#records.put({ ...placeholder, ports });
          },
          signal,
        );
      }
      if (owns) await this.#netns.create(req.containerId, signal);
      if (netnsPath && hooks.onNetnsReady) {
        const h = held;
        held = undefined;
        hooks.onNetnsReady(netnsPath, h);
      }
      if (mode.mode === 'bridge') {
        const networks = req.networks?.length ? req.networks : [{ name: this.options.defaultNetwork.name }];
        const attachReq = AttachRequestSchema.parse({
          containerId: req.containerId,
          name: req.name,
          netnsPath: netnsPath!,
          networks,
          portMappings: req.portMappings,
          hosts: req.hosts,
        });
        result = await this.#mutex.run(req.containerId, () =>
          this.#attachParsed(attachReq, true, signal, resolved),
        );
      } else {
        await this.#records.put({ ...placeholder, state: 'ready' });
        if (req.hosts) await this.#registerHosts(placeholder, req.hosts);
      }
      if (req.resolvConfPath) {
        const ipv6 = result.ips.some((i) => parseIp(i)?.family === 6);
        const text = await this.resolvConfFor({ ownNetns: mode.mode !== 'host', ipv6, ...req.dns });
        await writeFile(req.resolvConfPath, text);
      }
    } catch (err) {
      // #doAttach drops the record on its own failure; put it back so teardown finds the netns.
      if (!(await this.#records.get(req.containerId))) await this.#records.put(placeholder);
      await this.teardown(req.containerId).catch(() => {});
      throw err;
    } finally {
      (held as HeldPorts | undefined)?.close();
    }
    return { ...result, netnsPath, mode: mode.mode };
  }

  /**
   * Inverse of setup, idempotent, from any process: DEL every attachment, drop hosts entries,
   * remove the netns if this library created it, delete the record. Best effort by contract:
   * a plugin whose DEL fails (e.g. macvlan when the parent interface is gone) does not stop it;
   * what that plugin would have removed is removed by hand, and its error is in `errors`.
   */
  async teardown(
    containerId: string,
    signal?: AbortSignal,
    o: {
      /**
       * Every process of the container is gone (core knows: it tears down after the exit): the
       * netns is unmounted (starting first, alongside the DELs), so the kernel destroys it with its
       * end of the veth pair, and the DELs run without a netns. That spares the bridge plugin's
       * veth deletion and masquerade teardown (~40-50 ms of a ~120 ms DEL chain here, each a wait
       * for the kernel); the masquerade chain goes in one iptables transaction instead (see
       * removeContainerRulesBatched). The host end of the veth disappears with the namespace, a
       * moment after this resolves, on its own. Without it (a process may still use the netns) the
       * plugins delete the interface themselves, before the netns goes.
       */
      processesGone?: boolean;
    } = {},
  ): Promise<TeardownReport> {
    return this.#mutex.run(containerId, async () => {
      const record = await this.#records.get(containerId);
      const entries = (await this.#cache.list(containerId)).entries.filter(
        (e) => e.containerId === containerId,
      );
      const errors: unknown[] = [];
      const ownNetns = record?.ownsNetns && record.netnsPath ? record.netnsPath : undefined;
      // The unmount (a `umount -l` process, ~6-8 ms) overlaps the DELs, which run without the
      // netns either way; teardown resolves only once it is done.
      const netnsGone =
        ownNetns && o.processesGone
          ? this.#netns.remove(ownNetns).then(
              () => undefined,
              (err: unknown) => err,
            )
          : undefined;
      for (const e of entries.reverse()) {
        const err = await this.#delEntry(e, signal, true, netnsGone !== undefined && e.netns === ownNetns);
        if (err) errors.push(err);
      }
      const removeErr = await netnsGone;
      if (removeErr) throw removeErr;
      await this.#hosts.update(containerId, () => undefined);
      if (ownNetns && !o.processesGone) await this.#netns.remove(ownNetns);
      await this.#records.remove(containerId);
      return { errors };
    });
  }

  /**
   * Cleans what dead processes left: records still 'setting-up' whose process is gone, records
   * of containers `isAlive` says are gone, cache entries without a record, netns files without a
   * record, host-local allocations no cache entry accounts for, hosts entries without a record.
   */
  async cleanupStale(
    o: { isAlive?: (containerId: string) => boolean | Promise<boolean>; signal?: AbortSignal } = {},
  ): Promise<CleanupReport> {
    const report: CleanupReport = { containers: [], netns: [], cacheEntries: 0, ipamFiles: 0 };
    const records = await this.#records.all();
    const live = new Set<string>();
    for (const r of records) {
      const dead =
        (r.state === 'setting-up' && !pidAlive(r.pid)) ||
        (o.isAlive ? !(await o.isAlive(r.containerId)) : false);
      if (dead) {
        await this.teardown(r.containerId, o.signal);
        report.containers.push(r.containerId);
      } else live.add(r.containerId);
    }
    const { entries, broken } = await this.#cache.list();
    for (const f of broken) await rm(f, { force: true });
    for (const e of entries) {
      if (live.has(e.containerId)) continue;
      if (e.status === 'adding' && pidAlive(e.pid) && e.pid !== process.pid) continue;
      await this.#delEntry(e, o.signal).catch(() =>
        this.#cache.remove(e.networkName, e.containerId, e.ifName),
      );
      report.cacheEntries++;
    }
    for (const name of await this.#netns.list()) {
      if (live.has(name)) continue;
      await this.#netns.remove(this.#netns.pathOf(name));
      report.netns.push(name);
    }
    for (const id of await this.#hosts.ids())
      if (!live.has(id)) await this.#hosts.update(id, () => undefined);
    report.ipamFiles = await this.#cleanIpam(
      new Set((await this.#cache.list()).entries.map((e) => e.containerId)),
    );
    await this.#maybePruneChains();
    return report;
  }

  async #cleanIpam(keep: Set<string>): Promise<number> {
    let n = 0;
    let nets: string[];
    try {
      nets = await readdir(this.ipamDir);
    } catch (e) {
      if (isEnoent(e)) return 0;
      throw e;
    }
    for (const net of nets) {
      const dir = join(this.ipamDir, net);
      for (const f of await readdir(dir).catch(() => [] as string[])) {
        if (!parseIp(f)) continue;
        const owner = (await readFile(join(dir, f), 'utf8').catch(() => '')).split(/\r?\n/)[0]?.trim() ?? '';
        if (owner && keep.has(owner)) continue;
        await rm(join(dir, f), { force: true });
        n++;
      }
    }
    return n;
  }

  /** Tears down every container this store knows, then cleans leftovers (exit hook / tests). */
  async teardownAll(signal?: AbortSignal): Promise<CleanupReport> {
    return this.cleanupStale({ isAlive: () => false, signal });
  }

  /**
   * The plugins' shared chains go when the last attachment of the store is gone, but only on
   * network removal and cleanup: pruning on every detach would cost ~15 iptables calls and race
   * with the next ADD recreating them (podman never prunes them).
   */
  async #maybePruneChains(): Promise<void> {
    const { entries } = await this.#cache.list();
    if (entries.length === 0) await pruneSharedChains();
  }
}

/** Frees a container's host-local allocations of one network by hand (files naming the id). */
async function freeHostLocal(list: ConfList, containerId: string): Promise<void> {
  const ipam = mainPlugin(list).ipam as Record<string, unknown> | undefined;
  if (ipam?.type !== 'host-local') return;
  const dir = join(typeof ipam.dataDir === 'string' ? ipam.dataDir : '/var/lib/cni/networks', list.name);
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    if (!parseIp(f)) continue;
    const owner = (await readFile(join(dir, f), 'utf8').catch(() => '')).split(/\r?\n/)[0]?.trim();
    if (owner === containerId) await rm(join(dir, f), { force: true });
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

function describeResult(r: CniResult, netns: string, ifName: string) {
  const ifaces = r.interfaces ?? [];
  const idx = ifaces.findIndex(
    (i) => i.name === ifName && (i.sandbox ?? '') !== '' && (!netns || i.sandbox === netns),
  );
  const mine = (r.ips ?? []).filter((ip) => idx < 0 || ip.interface === undefined || ip.interface === idx);
  return {
    mac: idx >= 0 ? ifaces[idx]!.mac : undefined,
    addresses: mine.map((i) => i.address),
    gateways: mine.map((i) => i.gateway).filter((g): g is string => !!g),
  };
}

function toResult(r: AttachmentRecord): AttachResult {
  const interfaces = r.networks.map((n) => ({
    network: n.name,
    ifName: n.ifName,
    mac: n.mac,
    addresses: n.addresses,
    gateways: n.gateways,
  }));
  return {
    interfaces,
    ips: interfaces.flatMap((i) => i.addresses.map((a) => formatIp(cidrAddress(a)!))),
    ports: r.ports,
  };
}
