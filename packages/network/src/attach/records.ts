import { linkSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { isEnoent, readIfExists, writeAtomic } from '../util/fs.js';

export const AttachmentRecordSchema = z.object({
  containerId: z.string(),
  name: z.string(),
  /** '' in host mode. */
  netnsPath: z.string(),
  /** True when this library created the netns and removes it on teardown. */
  ownsNetns: z.boolean(),
  mode: z.enum(['bridge', 'none', 'host', 'container', 'ns']),
  networks: z.array(
    z.object({
      name: z.string(),
      ifName: z.string(),
      aliases: z.array(z.string()),
      mac: z.string().optional(),
      addresses: z.array(z.string()),
      gateways: z.array(z.string()),
    }),
  ),
  ports: z.array(
    z.object({
      hostIp: z.string(),
      hostPort: z.number(),
      containerPort: z.number(),
      protocol: z.enum(['tcp', 'udp']),
    }),
  ),
  /** 'setting-up' until attach finished; cleanup treats a dead owner's 'setting-up' as stale. */
  state: z.enum(['setting-up', 'ready']),
  pid: z.number().int(),
});
export type AttachmentRecord = z.infer<typeof AttachmentRecordSchema>;

/** One JSON file per container under `<stateDir>/containers`. */
export class RecordStore {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }
  async get(id: string): Promise<AttachmentRecord | undefined> {
    const raw = await readIfExists(join(this.dir, `${id}.json`));
    if (!raw) return undefined;
    try {
      const r = AttachmentRecordSchema.safeParse(JSON.parse(raw));
      return r.success ? r.data : undefined;
    } catch {
      return undefined;
    }
  }
  async put(r: AttachmentRecord): Promise<void> {
    await writeAtomic(join(this.dir, `${r.containerId}.json`), JSON.stringify(r), 0o600);
  }
  /** Writes a record only if none exists (atomic: link(2) of a complete temp file); false if one did. */
  async create(r: AttachmentRecord): Promise<boolean> {
    // Inline calls: tiny files (see util/fs.ts).
    mkdirSync(this.dir, { recursive: true });
    const final = join(this.dir, `${r.containerId}.json`);
    const tmp = `${final}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(tmp, JSON.stringify(r), { mode: 0o600 });
    try {
      linkSync(tmp, final);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  async remove(id: string): Promise<void> {
    rmSync(join(this.dir, `${id}.json`), { force: true });
  }
  async ids(): Promise<string[]> {
    try {
      return readdirSync(this.dir)
        .filter((n) => n.endsWith('.json'))
        .map((n) => n.slice(0, -5));
    } catch (e) {
      if (isEnoent(e)) return [];
      throw e;
    }
  }
  async all(): Promise<AttachmentRecord[]> {
    const out: AttachmentRecord[] = [];
    for (const id of await this.ids()) {
      const r = await this.get(id);
      if (r) out.push(r);
    }
    return out;
  }
}
