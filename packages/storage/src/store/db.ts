/**
 * The store's metadata database (LevelDB through `level`) used as its own inter-process lock.
 *
 * LevelDB admits one opener at a time: `open()` takes an fcntl lock on `<db>/LOCK` and fails with
 * LEVEL_LOCKED while another process (or another handle in this process) holds it. The kernel
 * drops an fcntl lock when its holder dies, so holding the database open IS holding the store's
 * lock, and a lock can never be orphaned by a crash — Podman's per-operation database access,
 * with the lock for free.
 *
 * Contract of {@link MetaDb.transaction}:
 * - `fn` runs with the database open and exclusively ours (no other process or handle can open it);
 * - reads see the committed state plus this transaction's own puts/dels (`get` only; `range`
 *   sees committed state);
 * - the writes are applied as one LevelDB batch after `fn` resolves: all or nothing, even if the
 *   process is killed (LevelDB's log replays or drops the whole batch);
 * - if `fn` throws, nothing is written;
 * - `fn` must be short: no extraction, no network, only records. Long work happens between
 *   transactions, guarded by records that name their owner (see owner.ts).
 *
 * Handing the lock over: opening LevelDB costs 2-20 ms (it turns the previous log into a table and
 * syncs), so after a transaction the handle stays open for `lingerMs` in case this process has more
 * work, but only while nobody else wants it: a process that finds the database locked touches
 * `<db>.want`, and a holder that sees that file touched since it opened the database closes it
 * after the current transaction, or at once when idle: an idle holder watches the file (inotify),
 * so it can linger long (1 s by default: a container `run` spends ~50 ms in the runtime between two
 * transactions, which a short linger turned into two reopenings per run) without keeping anyone
 * waiting. Where the file cannot be watched the linger is 10 ms. Waiters retry the open with
 * jittered backoff until `lockTimeoutMs`, then throw StoreLockTimeoutError. Transactions of one
 * MetaDb run one at a time in call order.
 */
import { existsSync, type FSWatcher, statSync, watch, writeFileSync } from 'node:fs';
import { stat, utimes, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Level } from 'level';
import type { z } from 'zod';
import { CorruptRecordError, StoreConfigError, StoreLockTimeoutError } from '../errors.js';

export type Json = unknown;

export interface Tx {
  get<T>(key: string, schema: z.ZodType<T>): Promise<T | undefined>;
  has(key: string): Promise<boolean>;
  put(key: string, value: Json): void;
  del(key: string): void;
  /** Committed entries whose key starts with `prefix`, in key order. */
  range<T>(prefix: string, schema: z.ZodType<T>, opts?: { limit?: number }): Promise<Array<[string, T]>>;
  keys(prefix: string, opts?: { limit?: number }): Promise<string[]>;
}

const DELETED = Symbol('deleted');

function isLocked(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code === 'LEVEL_LOCKED' || e?.cause?.code === 'LEVEL_LOCKED';
}

export interface TxStats {
  transactions: number;
  /** Times the database was opened (each one is a lock acquisition). */
  opens: number;
  /** Failed open attempts because another holder had the lock. */
  openRetries: number;
}

export interface MetaDbOptions {
  lockTimeoutMs?: number;
  /**
   * Keep the database open this long after a transaction while nobody else wants it (default
   * 1000 ms while the want file is watched, else 10 ms).
   */
  lingerMs?: number;
}

export class MetaDb {
  readonly stats: TxStats = { transactions: 0, opens: 0, openRetries: 0 };
  private readonly lockTimeoutMs: number;
  private readonly lingerMs: number;
  private readonly wantPath: string;
  private handle: Level<string, Json> | undefined;
  private acquiredAt = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private pending = 0;
  private lingerTimer: NodeJS.Timeout | undefined;
  private lastWantTouch = 0;
  private wantWatcher: FSWatcher | undefined;
  private readonly lingerOpt: number | undefined;

  constructor(
    readonly path: string,
    opts: MetaDbOptions = {},
  ) {
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 120_000;
    this.lingerOpt = opts.lingerMs;
    this.lingerMs = opts.lingerMs ?? 10;
    this.wantPath = `${path}.want`;
  }

  /** Run `fn` as one critical section (see the module contract). */
  transaction<T>(fn: (tx: Tx) => Promise<T>, signal?: AbortSignal): Promise<T> {
    this.pending++;
    const run = this.queue.then(() => this.exec(fn, signal));
    this.queue = run.then(
      () => this.afterTx(),
      () => this.afterTx(),
    );
    return run;
  }

  /** Close the handle if open (waits for queued transactions). Idempotent. */
  async close(): Promise<void> {
    const done = this.queue.then(() => this.closeHandle());
    this.queue = done.catch(() => undefined);
    await done;
  }

  private async afterTx(): Promise<void> {
    this.pending--;
    if (!this.handle) return;
    const linger = this.watchWant() ? (this.lingerOpt ?? 1000) : this.lingerMs;
    if (linger <= 0 || (await this.othersWant())) return this.closeHandle();
    if (this.pending > 0) return;
    clearTimeout(this.lingerTimer);
    this.lingerTimer = setTimeout(() => this.closeIfIdle(), linger);
    this.lingerTimer.unref();
  }

  /** Closes the handle after the queued transactions unless more are pending. */
  private closeIfIdle(): void {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (this.pending > 0 || !this.handle) return;
    this.queue = this.queue
      .then(() => (this.pending > 0 ? undefined : this.closeHandle()))
      .catch(() => undefined);
  }

  /**
   * Watches the want file while the handle is open (true when watching): a waiter touching it
   * makes an idle holder close at once. The file is created if missing (its mtime then predates
   * this handle, so it does not read as a want).
   */
  private watchWant(): boolean {
    if (this.wantWatcher) return true;
    try {
      if (!existsSync(this.wantPath)) {
        writeFileSync(this.wantPath, '', { flag: 'a' });
        // Made by us just now: not a want (a waiter touches it again when it retries).
        this.acquiredAt = Math.max(this.acquiredAt, statSync(this.wantPath).mtimeMs);
      }
      const w = watch(this.wantPath, { persistent: false }, () => {
        if (this.pending === 0) void this.othersWant().then((want) => want && this.closeIfIdle());
      });
      w.on('error', () => this.stopWatching());
      this.wantWatcher = w;
      return true;
    } catch {
      return false;
    }
  }

  private stopWatching(): void {
    this.wantWatcher?.close();
    this.wantWatcher = undefined;
  }

  private async othersWant(): Promise<boolean> {
    try {
      return (await stat(this.wantPath)).mtimeMs > this.acquiredAt;
    } catch {
      return false;
    }
  }

  private async closeHandle(): Promise<void> {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    this.stopWatching();
    const h = this.handle;
    this.handle = undefined;
    if (h) await h.close();
  }

  private async signalWant(): Promise<void> {
    const now = Date.now();
    if (now - this.lastWantTouch < 2) return;
    this.lastWantTouch = now;
    const t = new Date(now);
    await utimes(this.wantPath, t, t).catch(() => writeFile(this.wantPath, '').catch(() => undefined));
  }

  private async open(signal?: AbortSignal): Promise<Level<string, Json>> {
    const started = Date.now();
    let delay = 1;
    for (;;) {
      signal?.throwIfAborted();
      const db = new Level<string, Json>(this.path, { valueEncoding: 'json' });
      try {
        await db.open();
        this.stats.opens++;
        this.acquiredAt = Date.now();
        return db;
      } catch (err) {
        if (!isLocked(err)) {
          throw new StoreConfigError(this.path, 'cannot open the metadata database', { cause: err });
        }
        const waited = Date.now() - started;
        if (waited >= this.lockTimeoutMs) throw new StoreLockTimeoutError(this.path, waited, { cause: err });
        this.stats.openRetries++;
        await this.signalWant();
        // Jitter keeps waiting processes from retrying in lock step.
        await sleep(delay * (0.5 + Math.random()), undefined, { signal });
        delay = Math.min(delay * 2, 8);
      }
    }
  }

  private async exec<T>(fn: (tx: Tx) => Promise<T>, signal?: AbortSignal): Promise<T> {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (!this.handle) this.handle = await this.open(signal);
    const db = this.handle;
    this.stats.transactions++;
    const pending = new Map<string, Json | typeof DELETED>();
    const parse = <V>(key: string, value: unknown, schema: z.ZodType<V>): V => {
      const r = schema.safeParse(value);
      if (!r.success) throw new CorruptRecordError(key, { cause: r.error });
      return r.data;
    };
    const tx: Tx = {
      async get(key, schema) {
        if (pending.has(key)) {
          const v = pending.get(key);
          return v === DELETED ? undefined : parse(key, v, schema);
        }
        const v = await db.get(key);
        return v === undefined ? undefined : parse(key, v, schema);
      },
      async has(key) {
        if (pending.has(key)) return pending.get(key) !== DELETED;
        return (await db.get(key)) !== undefined;
      },
      put(key, value) {
        pending.set(key, value);
      },
      del(key) {
        pending.set(key, DELETED);
      },
      async range<V>(prefix: string, schema: z.ZodType<V>, opts?: { limit?: number }) {
        const entries = await db
          .iterator({ gte: prefix, lt: `${prefix}\uffff`, limit: opts?.limit ?? -1 })
          .all();
        return entries.map(([k, v]) => [k, parse(k, v, schema)] as [string, V]);
      },
      async keys(prefix, opts) {
        return db.keys({ gte: prefix, lt: `${prefix}\uffff`, limit: opts?.limit ?? -1 }).all();
      },
    };
    const result = await fn(tx);
    if (pending.size > 0) {
      const ops = [...pending].map(([key, value]) =>
        value === DELETED ? { type: 'del' as const, key } : { type: 'put' as const, key, value },
      );
      try {
        await db.batch(ops);
      } catch (err) {
        await this.closeHandle().catch(() => undefined);
        throw err;
      }
    }
    return result;
  }
}
