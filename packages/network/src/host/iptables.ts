import { createHash } from 'node:crypto';
import { run } from '../util/exec.js';

const TOOLS = ['iptables', 'ip6tables'] as const;

/**
 * The per-container masquerade chain the bridge plugin creates (plugins/pkg/utils
 * FormatChainName): "CNI-" + hex sha512(network + containerId), cut to 28 chars.
 */
export function masqChainName(network: string, containerId: string): string {
  return `CNI-${createHash('sha512')
    .update(network + containerId)
    .digest('hex')}`.slice(0, 28);
}

async function ipt(tool: string, args: string[]): Promise<{ code: number; stdout: string }> {
  const r = await run(tool, ['-w', ...args]).catch(() => ({ code: 127, stdout: '', stderr: '' }));
  return { code: r.code, stdout: r.stdout };
}

type Tables = Map<string, Map<string, string[]>>;

/** Parses iptables-save output: table -> chain -> its "-A" lines. Listing never creates a table. */
async function saveDump(tool: string): Promise<Tables> {
  const r = await run(`${tool}-save`, []).catch(() => ({ code: 127, stdout: '' }));
  const out: Tables = new Map();
  if (r.code !== 0) return out;
  let table: Map<string, string[]> | undefined;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('*')) {
      table = new Map();
      out.set(line.slice(1).trim(), table);
    } else if (line.startsWith(':') && table) {
      table.set(line.slice(1).split(' ')[0]!, []);
    } else if (line.startsWith('-A ') && table) {
      const chain = line.split(' ')[1]!;
      table.get(chain)?.push(line);
    }
  }
  return out;
}

/** Deletes every rule of `parent` that jumps to `target` (by line number, last first). */
async function dropJumps(tool: string, table: string, parent: string, target: string): Promise<void> {
  const r = await ipt(tool, ['-t', table, '-L', parent, '-n', '--line-numbers']);
  if (r.code !== 0) return;
  const nums = r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === target)
    .map((f) => Number(f[0]))
    .filter((n) => n > 0)
    .sort((a, b) => b - a);
  for (const n of nums) await ipt(tool, ['-t', table, '-D', parent, String(n)]);
}

async function dropChain(tool: string, table: string, chain: string, parents: string[]): Promise<void> {
  for (const p of parents) await dropJumps(tool, table, p, chain);
  await ipt(tool, ['-t', table, '-F', chain]);
  await ipt(tool, ['-t', table, '-X', chain]);
}

/**
 * Removes a container's masquerade chain when the bridge plugin could not (its DEL skips the
 * iptables teardown when the netns is already gone). Idempotent.
 */
export async function removeMasqChain(network: string, containerId: string): Promise<void> {
  const chain = masqChainName(network, containerId);
  for (const tool of TOOLS) {
    if (!(await saveDump(tool)).get('nat')?.has(chain)) continue;
    await dropChain(tool, 'nat', chain, ['POSTROUTING']);
  }
}

/** The firewall plugin's (iptables backend) two CNI-FORWARD rules for one container address. */
function firewallRules(ip: string): string[] {
  const host = hostCidr(ip);
  return [
    `-A CNI-FORWARD -d ${host} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    `-A CNI-FORWARD -s ${host} -j ACCEPT`,
  ];
}

/**
 * What a container's DELs would remove one iptables commit at a time, in one transaction per
 * family: the bridge plugin's masquerade chain and its POSTROUTING jumps (`masq`), and the
 * firewall plugin's CNI-FORWARD rules for the container's addresses (`firewall`; rules present
 * exactly as that plugin writes them, so the plugin's own DEL then finds nothing to commit).
 * `<tool>-save` is a read (no commit); each iptables-nft commit waits for the kernel (~8-25 ms
 * here): the two plugins' DELs make five. The addresses are still the container's (host-local
 * releases them only at the bridge plugin's DEL, after these). Nothing matching: no restore.
 * When the batch is refused, the masquerade chain goes the long way and the firewall rules are
 * left to the plugin.
 */
export async function removeContainerRulesBatched(o: {
  network: string;
  containerId: string;
  /** The container's addresses (CIDR or bare). */
  ips: readonly string[];
  masq: boolean;
  firewall: boolean;
}): Promise<void> {
  const chain = masqChainName(o.network, o.containerId);
  const addrs = o.ips.map((a) => a.split('/')[0]!);
  for (const tool of TOOLS) {
    const mine = addrs.filter((a) => a.includes(':') === (tool === 'ip6tables'));
    if (mine.length === 0 && !(o.masq && tool === 'iptables')) continue;
    // First without reading: the rules exactly as the plugins wrote them at ADD (one restore,
    // all or nothing). When one is not there (removed already, another plugin version, hand
    // edits) the restore changes nothing and fails; then read what is there and remove that.
    if (mine.length > 0 && (await restore(tool, expectedDeletes(o, chain, mine)))) continue;
    const r = await run(`${tool}-save`, []).catch(() => ({ code: 127, stdout: '' }));
    if (r.code !== 0) continue;
    const byTable = new Map<string, string[]>();
    let table: string[] | undefined;
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('*')) {
        table = [];
        byTable.set(line.slice(1).trim(), table);
      } else table?.push(line);
    }
    const batch: string[] = [];
    const nat = byTable.get('nat') ?? [];
    const masq = o.masq && nat.some((l) => l.startsWith(`:${chain} `));
    if (masq) {
      const jumps = nat.filter((l) => l.startsWith('-A POSTROUTING ') && l.endsWith(` -j ${chain}`));
      batch.push('*nat', ...jumps.map((l) => `-D${l.slice(2)}`), `-F ${chain}`, `-X ${chain}`, 'COMMIT');
    }
    if (o.firewall) {
      const present = new Set(byTable.get('filter') ?? []);
      const rules = mine.flatMap(firewallRules).filter((l) => present.has(l));
      if (rules.length) batch.push('*filter', ...rules.map((l) => `-D${l.slice(2)}`), 'COMMIT');
    }
    if (batch.length === 0) continue;
    if (!(await restore(tool, batch)) && masq) await dropChain(tool, 'nat', chain, ['POSTROUTING']);
  }
}

/** One `<tool>-restore --noflush` transaction; true when it was applied. */
async function restore(tool: string, batch: readonly string[]): Promise<boolean> {
  if (batch.length === 0) return true;
  const done = await run(`${tool}-restore`, ['-w', '--noflush'], { input: `${batch.join('\n')}\n` }).catch(
    () => ({ code: 127 }),
  );
  return done.code === 0;
}

/**
 * The deletions of what the bridge plugin (`ipMasq`: per address a POSTROUTING jump commented
 * `name: "<network>" id: "<container>"`, and the chain) and the firewall plugin added for these
 * addresses of one family, as restore lines.
 */
function expectedDeletes(
  o: { network: string; containerId: string; masq: boolean; firewall: boolean },
  chain: string,
  addrs: readonly string[],
): string[] {
  const out: string[] = [];
  const comment = `"name: \\"${o.network}\\" id: \\"${o.containerId}\\""`;
  if (o.masq) {
    out.push('*nat');
    for (const a of addrs)
      out.push(`-D POSTROUTING -s ${hostCidr(a)} -m comment --comment ${comment} -j ${chain}`);
    out.push(`-F ${chain}`, `-X ${chain}`, 'COMMIT');
  }
  if (o.firewall)
    out.push('*filter', ...addrs.flatMap(firewallRules).map((l) => `-D${l.slice(2)}`), 'COMMIT');
  return out;
}

function hostCidr(ip: string): string {
  return `${ip}/${ip.includes(':') ? 128 : 32}`;
}

/**
 * Removes the shared chains the portmap and firewall plugins create on first use and never
 * delete (CNI-HOSTPORT-DNAT/-SETMARK/-MASQ in nat, CNI-FORWARD/CNI-ADMIN in filter), but only
 * when they hold no per-container rule: then nothing uses them and the next ADD recreates them.
 * CNI-ADMIN is kept when an administrator put rules in it.
 */
export async function pruneSharedChains(): Promise<void> {
  for (const tool of TOOLS) {
    const dump = await saveDump(tool);
    const nat = dump.get('nat');
    const dnat = nat?.get('CNI-HOSTPORT-DNAT');
    if (nat && (dnat === undefined || dnat.length === 0)) {
      if (dnat) await dropChain(tool, 'nat', 'CNI-HOSTPORT-DNAT', ['PREROUTING', 'OUTPUT']);
      // Their only rules are the mark/masquerade pair portmap installs once.
      const masq = nat.get('CNI-HOSTPORT-MASQ');
      if (masq?.every((l) => l.includes('--mark')))
        await dropChain(tool, 'nat', 'CNI-HOSTPORT-MASQ', ['POSTROUTING']);
      const mark = nat.get('CNI-HOSTPORT-SETMARK');
      if (mark?.every((l) => l.includes('MARK'))) await dropChain(tool, 'nat', 'CNI-HOSTPORT-SETMARK', []);
    }
    const filter = dump.get('filter');
    const fwd = filter?.get('CNI-FORWARD');
    if (fwd?.every((l) => / -j CNI-ADMIN$/.test(l))) {
      await dropChain(tool, 'filter', 'CNI-FORWARD', ['FORWARD']);
      if (filter?.get('CNI-ADMIN')?.length === 0) await dropChain(tool, 'filter', 'CNI-ADMIN', []);
    }
  }
}
