import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type NetworkRequest, NetworkManager, type PortMapping } from '@libpod-ts/network';
import type { Engine, Integrations, NetworkSetup } from './containers/engine.js';
import type { ContainerRecord } from './containers/record.js';
import { isProcessAlive } from './util/fs.js';

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

  constructor(readonly settings: NetworkSettings) {}

  manager(): NetworkManager {
    this.mgr ??= new NetworkManager({
      root: this.settings.root,
      runRoot: this.settings.runRoot,
      ...(this.settings.defaultNetwork ? { defaultNetwork: this.settings.defaultNetwork } : {}),
      ...(this.settings.extraConfigDirs ? { extraConfigDirs: this.settings.extraConfigDirs } : {}),
    });
    return this.mgr;
  }

  readonly integrations: Integrations = {
    setupNetwork: async (
      r: ContainerRecord,
      hooks?: { onNetnsReady?: (path: string) => void },
    ): Promise<NetworkSetup> => {
      const userdata = join(this.containerDir(r), 'userdata');
      const res = await this.manager().setup(
        {
          containerId: r.id,
          name: r.name,
          netns: { mode: 'bridge' },
          ...(r.network?.networks.length
            ? {
                networks: r.network.networks.map((n) =>
                  typeof n === 'string' ? { name: n } : (n as NetworkRequest),
                ),
              }
            : {}),
          portMappings: (r.network?.ports ?? []) as PortMapping[],
          hosts: {
            path: join(userdata, 'hosts'),
            ...(r.hostname ? { hostname: r.hostname } : {}),
            extraHosts: r.network?.addHosts ?? [],
          },
          resolvConfPath: join(userdata, 'resolv.conf'),
          ...(r.network?.dns ? { dns: r.network.dns } : {}),
        },
        undefined,
        hooks,
      );
      const att = await this.manager().inspectAttachment(r.id);
      return {
        netnsPath: res.netnsPath,
        status: {
          interfaces: res.interfaces.map((i) => ({
            ...i,
            aliases: att?.networks.find((n) => n.name === i.network)?.aliases ?? [],
          })),
          ports: res.ports,
        },
      };
    },
    teardownNetwork: async (r: ContainerRecord) => {
      await this.manager().teardown(r.id);
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

  private containerDir(r: ContainerRecord): string {
    // The record's log lives in its container dir (<root>/containers/<id>/ctr.log).
    return r.logPath.slice(0, r.logPath.lastIndexOf('/'));
  }
}
