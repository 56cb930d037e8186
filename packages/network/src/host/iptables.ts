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

async function chainRules(tool: string, table: string, chain: string): Promise<string[] | undefined> {
  const r = await ipt(tool, ['-t', table, '-S', chain]);
  if (r.code !== 0) return undefined;
  return r.stdout.split('\n').filter((l) => l.startsWith('-A '));
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
    if ((await chainRules(tool, 'nat', chain)) === undefined) continue;
    await dropChain(tool, 'nat', chain, ['POSTROUTING']);
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
    const dnat = await chainRules(tool, 'nat', 'CNI-HOSTPORT-DNAT');
    if (dnat !== undefined && dnat.length === 0) {
      await dropChain(tool, 'nat', 'CNI-HOSTPORT-DNAT', ['PREROUTING', 'OUTPUT']);
    }
    if ((await chainRules(tool, 'nat', 'CNI-HOSTPORT-DNAT')) === undefined) {
      const masq = await chainRules(tool, 'nat', 'CNI-HOSTPORT-MASQ');
      // Its only rule is the mark match portmap installs once.
      if (masq?.every((l) => l.includes('--mark'))) {
        await dropChain(tool, 'nat', 'CNI-HOSTPORT-MASQ', ['POSTROUTING']);
      }
      const mark = await chainRules(tool, 'nat', 'CNI-HOSTPORT-SETMARK');
      if (mark?.every((l) => l.includes('MARK'))) {
        await dropChain(tool, 'nat', 'CNI-HOSTPORT-SETMARK', []);
      }
    }
    const fwd = await chainRules(tool, 'filter', 'CNI-FORWARD');
    if (fwd?.every((l) => / -j CNI-ADMIN$/.test(l))) {
      await dropChain(tool, 'filter', 'CNI-FORWARD', ['FORWARD']);
      const admin = await chainRules(tool, 'filter', 'CNI-ADMIN');
      if (admin !== undefined && admin.length === 0) await dropChain(tool, 'filter', 'CNI-ADMIN', []);
    }
  }
}
