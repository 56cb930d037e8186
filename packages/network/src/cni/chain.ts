import { CniPluginError } from '../errors.js';
import type { ConfList } from '../config/schema.js';
import type { ResultCache } from './cache.js';
import { invokePlugin, pluginVersion } from './exec.js';
import type { CniResult, RuntimeConf } from './types.js';

export interface ChainOptions {
  pluginDirs: readonly string[];
  cache: ResultCache;
  signal?: AbortSignal | undefined;
  /** DEL: awaited before each plugin's DEL runs (work that must precede that plugin's). */
  beforeDel?: (plugin: Record<string, unknown>) => Promise<void>;
}

function versionAtLeast(v: string, min: [number, number, number]): boolean {
  const p = v.split('.').map((x) => Number(x));
  for (let i = 0; i < 3; i++) {
    const a = p[i] ?? 0;
    if (a !== min[i]) return a > min[i]!;
  }
  return true;
}

/**
 * The stdin config of one plugin of a list: the plugin object plus the list's name and
 * cniVersion, `runtimeConfig` with only the capabilities the plugin declares, and prevResult.
 */
export function pluginConfig(
  list: ConfList,
  plugin: Record<string, unknown>,
  rt: RuntimeConf,
  prevResult: CniResult | undefined,
): Record<string, unknown> {
  const c: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  delete c.runtimeConfig;
  const caps = (plugin.capabilities ?? {}) as Record<string, unknown>;
  const runtimeConfig: Record<string, unknown> = {};
  for (const [k, on] of Object.entries(caps)) {
    if (on === true && rt.capabilityArgs[k] !== undefined) runtimeConfig[k] = rt.capabilityArgs[k];
  }
  if (Object.keys(runtimeConfig).length) c.runtimeConfig = runtimeConfig;
  if (prevResult) c.prevResult = prevResult;
  return c;
}

function encode(list: ConfList): string {
  return Buffer.from(JSON.stringify(list)).toString('base64');
}

export function decodeCachedConfig(b64: string): ConfList {
  return JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as ConfList;
}

/**
 * Whether a plugin failed because another ADD created an iptables chain between its check and its
 * create: the firewall and portmap plugins make their shared chains (CNI-FORWARD, CNI-ADMIN,
 * CNI-HOSTPORT-*) that way, so concurrent first ADDs on a host can collide. Seen in CI with 20
 * concurrent attachments: `iptables -t filter -N CNI-ADMIN --wait: ... CHAIN_USER_ADD failed
 * (File exists)` (nft backend); the legacy backend says `Chain already exists`.
 */
export function isSharedChainRace(err: unknown): boolean {
  if (!(err instanceof CniPluginError)) return false;
  return /CHAIN_USER_ADD failed \(File exists\)|Chain already exists/.test(
    `${err.message} ${err.details ?? ''}`,
  );
}

/** Runs a plugin ADD again (twice at most, after a short random pause) when it lost that race: the
 * plugins' ADD is idempotent and the chain now exists. */
async function retryingSharedChainRace<T>(add: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await add();
    } catch (err) {
      if (attempt >= 2 || !isSharedChainRace(err)) throw err;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
    }
  }
}

/**
 * ADD of a whole list, plugins in order, each getting the previous one's result. The cache entry
 * is written before the first plugin (crash safety) and completed with the final result.
 * On failure the whole list is DELeted in reverse order (what earlier plugins did is undone),
 * the cache entry removed, and the original error thrown.
 */
export async function addNetworkList(list: ConfList, rt: RuntimeConf, o: ChainOptions): Promise<CniResult> {
  const base = {
    kind: 'cniCacheV1' as const,
    containerId: rt.containerId,
    config: encode(list),
    ifName: rt.ifName,
    networkName: list.name,
    netns: rt.netns,
    cniArgs: rt.args,
    capabilityArgs: rt.capabilityArgs,
    pid: process.pid,
  };
  await o.cache.put({ ...base, status: 'adding' });
  let prev: CniResult | undefined;
  try {
    for (const p of list.plugins) {
      const input = prev;
      prev = await retryingSharedChainRace(() =>
        invokePlugin({
          command: 'ADD',
          config: pluginConfig(list, p, rt, input),
          rt,
          network: list.name,
          pluginDirs: o.pluginDirs,
          signal: o.signal,
        }),
      );
    }
  } catch (err) {
    // Rollback must run even when the caller aborted: it is what makes the abort leave nothing.
    try {
      await delNetworkList(list, rt, prev, { ...o, signal: undefined });
      await o.cache.remove(list.name, rt.containerId, rt.ifName);
    } catch {
      // The cache entry stays so cleanupStale can retry; the ADD error is the one to report.
    }
    throw err;
  }
  await o.cache.put({ ...base, status: 'added', result: prev });
  return prev!;
}

/**
 * DEL of a whole list in reverse order, prevResult (for spec >= 0.4.0) from the cache. Every
 * plugin is called even when one fails (so one failure does not strand the others' state); the
 * first error is thrown afterwards and the cache entry is kept for a retry.
 */
export async function delNetworkList(
  list: ConfList,
  rt: RuntimeConf,
  prevResult: CniResult | undefined,
  o: ChainOptions,
): Promise<void> {
  const withPrev = versionAtLeast(list.cniVersion, [0, 4, 0]);
  let first: unknown;
  for (const p of [...list.plugins].reverse()) {
    try {
      await o.beforeDel?.(p);
      await invokePlugin({
        command: 'DEL',
        config: pluginConfig(list, p, rt, withPrev ? prevResult : undefined),
        rt,
        network: list.name,
        pluginDirs: o.pluginDirs,
        signal: o.signal,
      });
    } catch (e) {
      first ??= e;
    }
  }
  if (first) throw first;
}

/** CHECK of a whole list against the cached result (spec >= 0.4.0, unless disableCheck). */
export async function checkNetworkList(
  list: ConfList,
  rt: RuntimeConf,
  prevResult: CniResult,
  o: ChainOptions,
): Promise<void> {
  if (!versionAtLeast(list.cniVersion, [0, 4, 0]) || list.disableCheck) return;
  for (const p of list.plugins) {
    await invokePlugin({
      command: 'CHECK',
      config: pluginConfig(list, p, rt, prevResult),
      rt,
      network: list.name,
      pluginDirs: o.pluginDirs,
      signal: o.signal,
    });
  }
}

export interface PluginStatus {
  plugin: string;
  supportedVersions: string[];
  /** 'ready' after a successful STATUS, 'unsupported' when the plugin predates spec 1.1.0. */
  status: 'ready' | 'unsupported';
}

/**
 * VERSION of every plugin of the list, then STATUS (spec 1.1.0) where a plugin speaks 1.1.0.
 * Throws CniPluginError (code 50/51 per spec) when a plugin reports it is not ready.
 */
export async function statusNetworkList(
  list: ConfList,
  o: Omit<ChainOptions, 'cache'>,
): Promise<PluginStatus[]> {
  const out: PluginStatus[] = [];
  for (const p of list.plugins) {
    const v = await pluginVersion(p.type, o.pluginDirs, o.signal);
    if (!v.supportedVersions.includes(list.cniVersion)) {
      throw new CniPluginError({
        plugin: p.type,
        command: 'VERSION',
        network: list.name,
        cniCode: 1,
        msg: `does not support cniVersion ${list.cniVersion} (supports ${v.supportedVersions.join(', ')})`,
      });
    }
    if (!v.supportedVersions.includes('1.1.0')) {
      out.push({ plugin: p.type, supportedVersions: v.supportedVersions, status: 'unsupported' });
      continue;
    }
    await invokePlugin({
      command: 'STATUS',
      config: { ...p, name: list.name, cniVersion: '1.1.0' },
      rt: { containerId: '', netns: '', ifName: '', args: [], capabilityArgs: {} },
      network: list.name,
      pluginDirs: o.pluginDirs,
      signal: o.signal,
    });
    out.push({ plugin: p.type, supportedVersions: v.supportedVersions, status: 'ready' });
  }
  return out;
}
