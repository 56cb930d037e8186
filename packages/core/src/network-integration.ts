import { join } from 'node:path';
import { NetworkManager, type PortMapping } from '@libpod-ts/network';
import type { Integrations } from './containers/engine.js';
import type { ContainerRecord } from './containers/record.js';

export interface NetworkSettings {
  root: string;
  runRoot: string;
  /** The network used when a bridge container names none (Podman's `podman` network). */
  defaultNetwork?: { name: string; subnet: string; bridge: string };
}

/**
 * Bridge networking from `@libpod-ts/network`: at init a network namespace is created and
 * attached (CNI), its path goes into the runtime config; at exit (program or exit hook) it is
 * torn down. The manager is built lazily: containers without a network never touch it.
 */
export class NetworkIntegration {
  private mgr: NetworkManager | undefined;

  constructor(readonly settings: NetworkSettings) {}

  manager(): NetworkManager {
    this.mgr ??= new NetworkManager({
      root: this.settings.root,
      runRoot: this.settings.runRoot,
      ...(this.settings.defaultNetwork ? { defaultNetwork: this.settings.defaultNetwork } : {}),
    });
    return this.mgr;
  }

  readonly integrations: Integrations = {
    setupNetwork: async (r: ContainerRecord) => {
      const res = await this.manager().setup({
        containerId: r.id,
        name: r.name,
        netns: { mode: 'bridge' },
        ...(r.network?.networks.length ? { networks: r.network.networks.map((name) => ({ name })) } : {}),
        portMappings: (r.network?.ports ?? []) as PortMapping[],
        resolvConfPath: join(this.containerDir(r), 'userdata', 'resolv.conf'),
      });
      return res.netnsPath;
    },
    teardownNetwork: async (r: ContainerRecord) => {
      await this.manager().teardown(r.id);
    },
  };

  private containerDir(r: ContainerRecord): string {
    // The record's log lives in its container dir (<root>/containers/<id>/ctr.log).
    return r.logPath.slice(0, r.logPath.lastIndexOf('/'));
  }
}
