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

/**
 * removeMasqChain in one transaction per family: `<tool>-save -t nat` (a read, no commit) to
 * find the chain and its POSTROUTING jumps, then one `<tool>-restore --noflush` that deletes the
 * jumps and the chain. Each iptables-nft commit waits for the kernel (~10-25 ms here); the
 * bridge plugin's own teardown makes three, the generic path four. `ipv6`: also ip6tables.
 * Falls back to removeMasqChain when the batch is refused.
 */
export async function removeMasqChainBatched(
  network: string,
  containerId: string,
  ipv6: boolean,
): Promise<void> {
  const chain = masqChainName(network, containerId);
  for (const tool of ipv6 ? TOOLS : (['iptables'] as const)) {
    const r = await run(`${tool}-save`, ['-t', 'nat']).catch(() => ({ code: 127, stdout: '' }));
    if (r.code !== 0) continue;
    const lines = r.stdout.split('\n');
    if (!lines.some((l) => l.startsWith(`:${chain} `))) continue;
    const jumps = lines.filter((l) => l.startsWith('-A POSTROUTING ') && l.endsWith(` -j ${chain}`));
    const batch = [
      '*nat',
      ...jumps.map((l) => `-D${l.slice(2)}`),
      `-F ${chain}`,
      `-X ${chain}`,
      'COMMIT',
      '',
    ];
    const done = await run(`${tool}-restore`, ['-w', '--noflush'], { input: batch.join('\n') }).catch(() => ({
      code: 127,
    }));
    if (done.code !== 0) await dropChain(tool, 'nat', chain, ['POSTROUTING']);
  }
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
