import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { readIfExists, writeAtomic } from '../util/fs.js';
import { withFileLock } from '../util/lock.js';

export const HostsMemberSchema = z.object({
  /** Container name: what other containers on the same network resolve. */
  name: z.string(),
  /** The container's own hostname (first name on its own lines). */
  hostname: z.string().optional(),
  /** The file the container sees as /etc/hosts; kept up to date in place (same inode). */
  hostsPath: z.string().optional(),
  /** Extra "name:ip" entries (podman --add-host). */
  extraHosts: z.array(z.string()).default([]),
  networks: z.record(
    z.string(),
    z.object({ ips: z.array(z.string()), aliases: z.array(z.string()).default([]), dns: z.boolean() }),
  ),
});
export type HostsMember = z.infer<typeof HostsMemberSchema>;

const RegistrySchema = z.object({ containers: z.record(z.string(), HostsMemberSchema) });
type Registry = z.infer<typeof RegistrySchema>;

const LOCALHOST = [
  '127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4',
  '::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6',
];

/**
 * /etc/hosts for one container: localhost lines, its own addresses with hostname and name, the
 * extra hosts, then every other container sharing a DNS-enabled network with it, by name and
 * aliases (podman 4 + CNI resolves these through dnsname; here the hosts file is the resolver).
 */
export function renderHosts(reg: Registry, containerId: string): string {
  const me = reg.containers[containerId];
  const lines = [...LOCALHOST];
  if (!me) return `${lines.join('\n')}\n`;
  const ownNames = [...new Set([me.hostname, me.name].filter((x): x is string => !!x))];
  for (const net of Object.values(me.networks)) {
    const names = [...new Set([...ownNames, ...net.aliases])];
    for (const ip of net.ips) lines.push(`${ip}\t${names.join(' ')}`);
  }
  for (const e of me.extraHosts) {
    const i = e.indexOf(':');
    if (i > 0) lines.push(`${e.slice(i + 1)}\t${e.slice(0, i)}`);
  }
  for (const [id, other] of Object.entries(reg.containers)) {
    if (id === containerId) continue;
    for (const [netName, net] of Object.entries(other.networks)) {
      const mine = me.networks[netName];
      if (!mine?.dns || !net.dns) continue;
      const names = [...new Set([other.name, ...net.aliases])];
      for (const ip of net.ips) lines.push(`${ip}\t${names.join(' ')}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The per-store hosts registry (one JSON file, updated under an inter-process lock): which
 * container has which name, aliases and addresses on which network. Every change rewrites the
 * hosts file of each container that shares a network with the changed one, in place so that a
 * bind mount of the file into a running container sees it.
 */
export class HostsRegistry {
  readonly #file: string;
  constructor(stateDir: string) {
    this.#file = join(stateDir, 'hosts-registry.json');
  }

  async #read(): Promise<Registry> {
    const raw = await readIfExists(this.#file);
    if (!raw) return { containers: {} };
    try {
      const r = RegistrySchema.safeParse(JSON.parse(raw));
      return r.success ? r.data : { containers: {} };
    } catch {
      return { containers: {} };
    }
  }

  async render(containerId: string): Promise<string> {
    return renderHosts(await this.#read(), containerId);
  }

  async get(containerId: string): Promise<HostsMember | undefined> {
    return (await this.#read()).containers[containerId];
  }

  /** Applies `change` to the member (undefined removes it) and refreshes affected hosts files. */
  async update(
    containerId: string,
    change: (m: HostsMember | undefined) => HostsMember | undefined,
  ): Promise<void> {
    await withFileLock(`${this.#file}.lock`, async () => {
      const reg = await this.#read();
      const before = reg.containers[containerId];
      const after = change(before ? structuredClone(before) : undefined);
      if (after) reg.containers[containerId] = after;
      else delete reg.containers[containerId];
      await writeAtomic(this.#file, JSON.stringify(reg));
      const nets = new Set([...Object.keys(before?.networks ?? {}), ...Object.keys(after?.networks ?? {})]);
      for (const [id, m] of Object.entries(reg.containers)) {
        if (!m.hostsPath) continue;
        if (id !== containerId && !Object.keys(m.networks).some((n) => nets.has(n))) continue;
        // In place, not rename: a bind mount pins the inode.
        try {
          writeFileSync(m.hostsPath, renderHosts(reg, id));
        } catch {}
      }
    });
  }

  async ids(): Promise<string[]> {
    return Object.keys((await this.#read()).containers);
  }
}
