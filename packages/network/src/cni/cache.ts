import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { isEnoent, readIfExists, writeAtomic } from '../util/fs.js';
import { CniResultSchema } from './types.js';

/**
 * One cached attachment, like libcni's /var/lib/cni/results/<net>-<id>-<if> (kind cniCacheV1)
 * plus `netns` and `status`. It is written *before* the first plugin runs (status "adding") so a
 * process killed mid-ADD leaves something cleanup can DEL; after ADD it holds the result
 * (status "added"), which DEL and CHECK pass on as prevResult.
 */
export const CacheEntrySchema = z.object({
  kind: z.literal('cniCacheV1'),
  containerId: z.string(),
  /** base64 of the exact conflist JSON the plugins were run with. */
  config: z.string(),
  ifName: z.string(),
  networkName: z.string(),
  netns: z.string(),
  cniArgs: z.array(z.tuple([z.string(), z.string()])),
  capabilityArgs: z.record(z.string(), z.unknown()),
  result: CniResultSchema.optional(),
  status: z.enum(['adding', 'added']),
  /** pid of the process running the ADD (meaningful while status is "adding"). */
  pid: z.number().int(),
});
export type CacheEntry = z.infer<typeof CacheEntrySchema>;

const SAFE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export class ResultCache {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }

  #file(network: string, containerId: string, ifName: string): string {
    for (const part of [network, containerId, ifName]) {
      if (!SAFE.test(part)) throw new Error(`unsafe cache key part ${JSON.stringify(part)}`);
    }
    return join(this.dir, `${network}-${containerId}-${ifName}`);
  }

  async put(e: CacheEntry): Promise<void> {
    await writeAtomic(this.#file(e.networkName, e.containerId, e.ifName), JSON.stringify(e), 0o600);
  }

  async get(network: string, containerId: string, ifName: string): Promise<CacheEntry | undefined> {
    const raw = await readIfExists(this.#file(network, containerId, ifName));
    if (raw === undefined) return undefined;
    const r = CacheEntrySchema.safeParse(JSONparse(raw));
    return r.success ? r.data : undefined;
  }

  async remove(network: string, containerId: string, ifName: string): Promise<void> {
    rmSync(this.#file(network, containerId, ifName), { force: true });
  }

  /**
   * Every readable entry; unreadable files are returned as `broken` paths for removal. With
   * `containerId`, only the files whose name carries it are read (teardown's case).
   */
  async list(containerId?: string): Promise<{ entries: CacheEntry[]; broken: string[] }> {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (e) {
      if (isEnoent(e)) return { entries: [], broken: [] };
      throw e;
    }
    const entries: CacheEntry[] = [];
    const broken: string[] = [];
    for (const n of names) {
      if (n.endsWith('.tmp')) continue;
      if (containerId !== undefined && !n.includes(`-${containerId}-`)) continue;
      const raw = await readIfExists(join(this.dir, n));
      if (raw === undefined) continue;
      const r = CacheEntrySchema.safeParse(JSONparse(raw));
      if (r.success) entries.push(r.data);
      else broken.push(join(this.dir, n));
    }
    return { entries, broken };
  }
}

function JSONparse(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
