import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type AttachedInterface,
  InvalidNetworkInputError,
  type NetworkManagerOptions,
  type NetworkRequest,
  NetworkManager,
  type PortMapping,
} from '@libpod-ts/network';
import type { Engine, HeldPorts, Integrations, NetworkSetup } from './containers/engine.js';
import type { ContainerRecord } from './containers/record.js';
import { isProcessAlive, sleep } from './util/fs.js';

export interface NetworkSettings {
  root: string;
  runRoot: string;
  /** The network used when a bridge container names none (Podman's `podman` network). */
  defaultNetwork?: { name: string; subnet: string; bridge: string };
  /** Read-only conflist sources (default `/etc/cni/net.d`); `[]` to see only the store's own. */
  extraConfigDirs?: string[];
}

const ACTIVE = new Set(['created', 'running', 'paused', 'stopped']);

/**
 * Bridge networking from `@libpod-ts/network`: at init a network namespace is created and
 * attached (CNI), its path goes into the runtime config, and the container's hosts and
 * resolv.conf files (`<container dir>/userdata`, bind-mounted by the spec) are written by the
 * network package, which keeps the hosts file current in place as peers join and leave. At exit
 * (program or exit hook), stop and rm it is torn down. The manager is built lazily: containers
 * without a network never touch it.
 */
export class NetworkIntegration {
  private mgr: NetworkManager | undefined;
  private engine: Engine | undefined;

  constructor(readonly settings: NetworkSettings) {}

  /** The engine whose container records `connect`/`disconnect` keep current (set by createEngine). */
  bindEngine(engine: Engine): void {
    this.engine = engine;
  }

  manager(): NetworkManager {
    this.mgr ??= new ContainerNetworkManager(
      {
        root: this.settings.root,
        runRoot: this.settings.runRoot,
        ...(this.settings.defaultNetwork ? { defaultNetwork: this.settings.defaultNetwork } : {}),
        ...(this.settings.extraConfigDirs ? { extraConfigDirs: this.settings.extraConfigDirs } : {}),
      },
      () => this.engine,
    );
    return this.mgr;
  }

  readonly integrations: Integrations = {
    setupNetwork: async (
      r: ContainerRecord,
      hooks?: { onNetnsReady?: (path: string, held?: HeldPorts) => void },
    ): Promise<NetworkSetup> => {
      // Published ports are bound here and held by conmon. A restart from the exit hook runs
      // while the previous conmon (the hook's parent) still holds them: its hold does not count,
      // and the descriptors the hook inherited from it are handed on to the new conmon.
      const prev = r.state.conmonPid;
      const heldBy = prev ? [prev, ...(process.ppid === prev ? [process.pid] : [])] : [];
      const userdata = join(this.containerDir(r), 'userdata');
      // Disconnected from every network: its own netns with loopback only (the network
      // package's `none` mode), hosts and resolv.conf as for a none container; connect attaches
      // to it as to any netns the package made.
      const none = r.network?.disconnected === true;
      const res = await this.manager().setup(
        {
          containerId: r.id,
          name: r.name,
          netns: { mode: none ? 'none' : 'bridge' },
          ...(!none && r.network?.networks.length
            ? {
                networks: r.network.networks.map((n) =>
                  typeof n === 'string' ? { name: n } : (n as NetworkRequest),
                ),
              }
            : {}),
          portMappings: none ? [] : ((r.network?.ports ?? []) as PortMapping[]),
          hosts: {
            path: join(userdata, 'hosts'),
            ...(r.hostname ? { hostname: r.hostname } : {}),
            extraHosts: r.network?.addHosts ?? [],
          },
          resolvConfPath: join(userdata, 'resolv.conf'),
          ...(r.network?.dns ? { dns: r.network.dns } : {}),
        },
        undefined,
        { ...hooks, holdPorts: { heldBy } },
      );
      return { netnsPath: res.netnsPath, status: await statusOf(this.manager(), r.id, res.ports) };
    },
    teardownNetwork: async (r: ContainerRecord) => {
      // Core tears down after the container's processes are gone (exit, kill + delete, failed
      // init): with a private PID namespace the kernel killed every process in it when its init
      // died, so nothing can still use the netns. A container sharing a PID namespace may leave
      // an exec'd process behind: then the plugins delete the interface as usual.
      // A container others joined (`container:<id>`) may be stopped while they run: their
      // processes keep the netns, so the plugins must delete the interface in it.
      await this.manager().teardown(r.id, undefined, {
        processesGone: (await this.privatePidNs(r.id)) && !(await this.hasLiveJoiners(r.id)),
      });
      // The published ports are free again only once conmon (their holder) is gone; it exits
      // right after its exit command, normally long before the DELs end. Not from the exit hook
      // itself: conmon waits for it.
      const conmon = r.state.conmonPid;
      if (r.network?.ports.length && conmon && process.ppid !== conmon) {
        for (let i = 0; i < 400 && isProcessAlive(conmon) && !(await isZombie(conmon)); i++) await sleep(5);
      }
    },
  };

  /**
   * After a crash: tears down the networking of containers no process runs any more (record
   * gone, exited, or active with conmon and the container process both dead) and whatever a
   * dead process left half-set-up. A container whose record lock a live process holds (being
   * initialised or cleaned up right now) counts as alive. Cheap when this store never used
   * networking (no state dir).
   */
  async cleanupStale(engine: Engine): Promise<void> {
    const state = join(this.settings.runRoot, 'network');
    if (!existsSync(state)) return;
    const isAlive = async (id: string): Promise<boolean> => {
      const owner = Number.parseInt(
        (await readFile(join(engine.layout.containerDir(id), 'lock'), 'utf8').catch(() => '')) || '0',
        10,
      );
      if (owner > 0 && isProcessAlive(owner)) return true;
      const r = await engine.store.read(id).catch(() => undefined);
      if (!r || !ACTIVE.has(r.state.status)) return false;
      return isProcessAlive(r.state.conmonPid) || isProcessAlive(r.state.pid);
    };
    // The full cleanup reads every record, the CNI cache and iptables; skip it when everything
    // the network side holds belongs to a live container (the common case at open).
    const ids = new Set([
      ...(await readdir(join(state, 'containers')).catch(() => [] as string[]))
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -5)),
      ...(await readdir(join(this.settings.runRoot, 'netns')).catch(() => [] as string[])),
    ]);
    const cached = await readdir(join(state, 'results')).catch(() => [] as string[]);
    let stale = cached.some((f) => ![...ids].some((id) => f.includes(id)));
    for (const id of ids) if (!stale && !(await isAlive(id))) stale = true;
    if (stale) await this.manager().cleanupStale({ isAlive });
  }

  private async hasLiveJoiners(id: string): Promise<boolean> {
    const mode = `container:${id}`;
    return !!(await this.engine?.store.list())?.some(
      (r) =>
        r.hostConfig.NetworkMode === mode && (ATTACHED.has(r.state.status) || isProcessAlive(r.state.pid)),
    );
  }

  private async privatePidNs(id: string): Promise<boolean> {
    const spec = (await this.engine?.store.readSpec(id).catch(() => undefined)) as
      | { linux?: { namespaces?: { type: string; path?: string }[] } }
      | undefined;
    return !!spec?.linux?.namespaces?.some((n) => n.type === 'pid' && !n.path);
  }

  private containerDir(r: ContainerRecord): string {
    // The record's log lives in its container dir (<root>/containers/<id>/ctr.log).
    return r.logPath.slice(0, r.logPath.lastIndexOf('/'));
  }
}

type NetStatus = NonNullable<NonNullable<ContainerRecord['network']>['status']>;

/** What inspect shows of a container's attachments, from the network package's record. */
async function statusOf(mgr: NetworkManager, id: string, ports: NetStatus['ports']): Promise<NetStatus> {
  const att = await mgr.inspectAttachment(id);
  return {
    interfaces: (att?.networks ?? []).map((n) => ({
      network: n.name,
      ifName: n.ifName,
      ...(n.mac ? { mac: n.mac } : {}),
      addresses: n.addresses,
      gateways: n.gateways,
      aliases: n.aliases,
    })),
    ports,
  };
}

const ATTACHED = new Set(['created', 'running', 'paused']);

/**
 * `lp.networks`: the network package's manager whose connect/disconnect take a container name
 * or id of the store and keep its record current, as podman's `network connect/disconnect`:
 * the record's network list (what the next start attaches), and for a container with a live
 * attachment the CNI ADD/DEL now, the status inspect reports, and the hosts files of the
 * container and its peers (rewritten in place by the network package). Both run under the
 * container's record lock, so an exit handled concurrently either sees the new network (and
 * tears it down) or happens first (then only the list changes). Ids that name no container of
 * the store go to the network package unchanged.
 */
class ContainerNetworkManager extends NetworkManager {
  constructor(
    opts: NetworkManagerOptions,
    private readonly engineRef: () => Engine | undefined,
  ) {
    super(opts);
  }

  async #container(nameOrId: string): Promise<ContainerRecord | undefined> {
    const engine = this.engineRef();
    if (!engine) return undefined;
    const r = await engine.store.resolve(nameOrId).catch(() => undefined);
    if (r && r.network?.mode !== 'bridge') {
      throw new InvalidNetworkInputError(
        'container',
        `container ${r.name} has network mode ${String(r.hostConfig.NetworkMode ?? 'none')}; only bridge containers connect to networks`,
      );
    }
    return r;
  }

  #listed(r: ContainerRecord): NonNullable<ContainerRecord['network']>['networks'] {
    const list = r.network?.networks ?? [];
    // An empty list means the default network, unless the container was disconnected from all.
    return list.length || r.network?.disconnected ? list : [this.options.defaultNetwork.name];
  }

  override async connect(
    nameOrId: string,
    network: NetworkRequest | string,
    signal?: AbortSignal,
  ): Promise<AttachedInterface> {
    const c = await this.#container(nameOrId);
    if (!c) return super.connect(nameOrId, network, signal);
    const name = typeof network === 'string' ? network : network.name;
    let out: AttachedInterface = { network: name, ifName: '', addresses: [], gateways: [] };
    await this.engineRef()!.store.update(c.id, async (r) => {
      const listed = this.#listed(r);
      if (listed.some((n) => (typeof n === 'string' ? n : n.name) === name)) {
        throw new InvalidNetworkInputError('network', `container ${r.name} is already connected to ${name}`);
      }
      let status = r.network?.status;
      if (ATTACHED.has(r.state.status) && (await this.inspectAttachment(r.id))) {
        out = await super.connect(r.id, network, signal);
        status = await statusOf(this, r.id, status?.ports ?? []);
      } else {
        await this.inspectNetwork(name); // NetworkNotFoundError now, not at the next start
      }
      return {
        ...r,
        network: { ...r.network!, networks: [...listed, network as never], disconnected: undefined, status },
      };
    });
    await this.#event(c, 'connect', name);
    return out;
  }

  /** podman's network events: the container's id and name, the network as an attribute. */
  async #event(c: ContainerRecord, action: 'connect' | 'disconnect', network: string): Promise<void> {
    await this.engineRef()
      ?.events.write({ type: 'network', action, id: c.id, name: c.name, attributes: { network } })
      .catch(() => {});
  }

  override async disconnect(
    nameOrId: string,
    network: string,
    o: { signal?: AbortSignal | undefined } = {},
  ): Promise<void> {
    const c = await this.#container(nameOrId);
    if (!c) return super.disconnect(nameOrId, network, o);
    await this.engineRef()!.store.update(c.id, async (r) => {
      const listed = this.#listed(r);
      const attached = (await this.inspectAttachment(r.id))?.networks.some((n) => n.name === network);
      if (!attached && !listed.some((n) => (typeof n === 'string' ? n : n.name) === network)) {
        await super.disconnect(r.id, network, o); // throws NotAttachedError
      }
      let status = r.network?.status;
      if (attached) {
        await super.disconnect(r.id, network, o);
        status = await statusOf(this, r.id, status?.ports ?? []);
        if (status.interfaces.length === 0) status = { ...status, ports: [] };
      }
      const networks = listed.filter((n) => (typeof n === 'string' ? n : n.name) !== network);
      // The last one gone: podman's container then behaves like `--network none` (also after a
      // restart) until a connect; the flag keeps the empty list from meaning the default network.
      return {
        ...r,
        network: { ...r.network!, networks, disconnected: networks.length === 0 || undefined, status },
      };
    });
    await this.#event(c, 'disconnect', network);
  }
}

async function isZombie(pid: number): Promise<boolean> {
  return /\) Z /.test(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''));
}
