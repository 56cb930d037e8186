import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AmbiguousContainerError, ContainerNameConflictError, ContainerNotFoundError } from '../errors.js';
import type { Layout } from '../runtime/layout.js';
import { writeFileAtomic } from '../util/fs.js';
import { withFileLock } from '../util/lock.js';
import type { ContainerRecord } from './record.js';

interface CacheEntry {
  mtimeMs: number;
  size: number;
  record: ContainerRecord;
}

/**
 * Container records, one JSON file per container under `<root>/containers/<id>/container.json`,
 * replaced atomically (write + fsync + rename). Updates run under the container's lock file so the
 * exit hook and any program sharing the store do not lose each other's changes; creation and
 * renames also hold the store-wide lock that keeps names unique.
 */
export class ContainerStore {
  private readonly cache = new Map<string, CacheEntry>();

  constructor(private readonly layout: Layout) {}

  async init(): Promise<void> {
    await mkdir(join(this.layout.containersDir, 'names'), { recursive: true, mode: 0o700 });
  }

  private nameFile(name: string): string {
    return join(this.layout.containersDir, 'names', name);
  }

  /**
   * Claims a name for a container: `names/<name>` created with O_EXCL holding the id, so two
   * processes can never both get it (no scan of every record). A claim whose container record
   * does not exist (a creator that crashed before writing it) is stale and taken over.
   * Throws ContainerNameConflictError.
   */
  async claimName(name: string, id: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await writeFile(this.nameFile(name), id, { flag: 'wx', mode: 0o600 });
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const owner = (await readFile(this.nameFile(name), 'utf8').catch(() => '')).trim();
      if (owner === id) return;
      const rec = /^[0-9a-f]{64}$/.test(owner) ? await this.read(owner) : undefined;
      if (rec && rec.name === name) throw new ContainerNameConflictError(name, owner);
      // Stale claim: the owner is gone or renamed; remove it only if it still holds that owner.
      const again = (await readFile(this.nameFile(name), 'utf8').catch(() => '')).trim();
      if (again === owner) await unlink(this.nameFile(name)).catch(() => {});
    }
    throw new ContainerNameConflictError(name, 'unknown');
  }

  /** Releases a name held by `id` (no-op when another container holds it). Inline: two tiny calls. */
  async releaseName(name: string, id: string): Promise<void> {
    let owner = '';
    try {
      owner = readFileSync(this.nameFile(name), 'utf8').trim();
    } catch {}
    if (owner !== id) return;
    try {
      unlinkSync(this.nameFile(name));
    } catch {}
  }

  /** The id holding a name, if any (fast path of resolve). */
  async idForName(name: string): Promise<string | undefined> {
    if (name.includes('/') || name === '.' || name === '..') return undefined;
    const owner = (await readFile(this.nameFile(name), 'utf8').catch(() => '')).trim();
    return /^[0-9a-f]{64}$/.test(owner) ? owner : undefined;
  }

  /** Store-wide lock: held while a name is claimed or released. */
  withStoreLock<T>(fn: () => Promise<T>): Promise<T> {
    return withFileLock(join(this.layout.containersDir, '.lock'), fn);
  }

  withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return withFileLock(join(this.layout.containerDir(id), 'lock'), fn);
  }

  async read(id: string): Promise<ContainerRecord | undefined> {
    const file = this.layout.recordFile(id);
    // Inline calls: a record is ~1 KB and is read several times per `run` (see `list`).
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(file);
    } catch {
      this.cache.delete(id);
      return undefined;
    }
    const hit = this.cache.get(id);
    // Records are treated as immutable values (updates build new objects), so the cached one is shared.
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.record;
    let record: ContainerRecord;
    try {
      record = JSON.parse(readFileSync(file, 'utf8')) as ContainerRecord;
    } catch {
      return undefined;
    }
    this.cache.set(id, { mtimeMs: st.mtimeMs, size: st.size, record });
    return record;
  }

  /**
   * Every record; records being written for the first time (no file yet) are skipped.
   * Synchronous fs calls on purpose: thousands of tiny stats/reads through the libuv thread pool
   * cost several times more than doing them inline (1000 records: ~5 ms warm).
   */
  async list(): Promise<ContainerRecord[]> {
    let ids: string[];
    try {
      ids = readdirSync(this.layout.containersDir).filter((n) => n.length === 64 && /^[0-9a-f]{64}$/.test(n));
    } catch {
      return [];
    }
    const out: ContainerRecord[] = [];
    for (const id of ids) {
      const file = this.layout.recordFile(id);
      const st = statSync(file, { throwIfNoEntry: false });
      if (!st) {
        this.cache.delete(id);
        continue;
      }
      const hit = this.cache.get(id);
      if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) {
        out.push(hit.record);
        continue;
      }
      try {
        const record = JSON.parse(readFileSync(file, 'utf8')) as ContainerRecord;
        this.cache.set(id, { mtimeMs: st.mtimeMs, size: st.size, record });
        out.push(record);
      } catch {
        // being replaced or removed right now
      }
    }
    return out;
  }

  async write(record: ContainerRecord): Promise<void> {
    // Inline (an existing directory is one syscall): records are written four times per `run`.
    mkdirSync(this.layout.containerDir(record.id), { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.layout.recordFile(record.id), JSON.stringify(record));
  }

  /** Read-modify-write under the container's lock. Returns the new record (undefined if gone). */
  async update(
    id: string,
    fn: (r: ContainerRecord) => ContainerRecord | undefined | Promise<ContainerRecord | undefined>,
  ): Promise<ContainerRecord | undefined> {
    return this.withLock(id, async () => {
      const current = await this.read(id);
      if (!current) return undefined;
      const next = await fn(current);
      if (next) await this.write(next);
      return next ?? current;
    }).catch((err) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    });
  }

  /** The container's OCI runtime spec (immutable after create). */
  async readSpec(id: string): Promise<Record<string, unknown>> {
    // ~10-40 KB, read inline at every init (a thread-pool round trip costs more here).
    return JSON.parse(readFileSync(this.layout.specFile(id), 'utf8')) as Record<string, unknown>;
  }

  async writeSpec(id: string, spec: Record<string, unknown>): Promise<void> {
    await mkdir(this.layout.containerDir(id), { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.layout.specFile(id), JSON.stringify(spec));
  }

  async delete(id: string): Promise<void> {
    const r = await this.read(id);
    if (r) await this.releaseName(r.name, id);
    this.cache.delete(id);
    const dir = this.layout.containerDir(id);
    // Record, spec, userdata files: a dozen small files, inline (~0.3 ms; through the thread pool
    // 2-5 ms of `run` here). A big log is unlinked off the event loop first (ext4 frees its extents).
    const log = this.layout.logFile(id);
    const size = statSync(log, { throwIfNoEntry: false })?.size ?? 0;
    if (size > 1 << 20) await unlink(log).catch(() => {});
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      // conmon may still be writing its last files here (persist/exit, the log's tail) when a
      // forced remove saw the exit file first: ENOTEMPTY once in the suite. Retry off the loop.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EBUSY') throw err;
      await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });
    }
  }

  /** Resolves a full id, a unique id prefix, or a name. */
  async resolve(nameOrId: string): Promise<ContainerRecord> {
    if (/^[0-9a-f]{64}$/.test(nameOrId)) {
      const r = await this.read(nameOrId);
      if (r) return r;
    }
    const named = await this.idForName(nameOrId);
    if (named) {
      const r = await this.read(named);
      if (r && r.name === nameOrId) return r;
    }
    const all = await this.list();
    const byName = all.find((r) => r.name === nameOrId);
    if (byName) return byName;
    if (/^[0-9a-f]+$/.test(nameOrId)) {
      const matches = all.filter((r) => r.id.startsWith(nameOrId));
      if (matches.length === 1) return matches[0]!;
      if (matches.length > 1) throw new AmbiguousContainerError(nameOrId, matches.length);
    }
    throw new ContainerNotFoundError(nameOrId);
  }
}
