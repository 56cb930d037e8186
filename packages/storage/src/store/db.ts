/**
 * The store's metadata database (LevelDB through `level`) used as its own inter-process lock.
 *
 * LevelDB admits one opener at a time: `open()` takes an fcntl lock on `<db>/LOCK` and fails with
 * LEVEL_LOCKED while another process (or another handle in this process) holds it. The kernel
 * drops an fcntl lock when its holder dies, so a transaction that opens the database, works,
 * writes one atomic batch and closes it is a critical section whose lock can never be orphaned —
 * Podman's per-operation database access, with the lock for free.
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
 * Waiting: in-process callers queue on a promise chain (per database path, shared by all Store
 * objects in the process); across processes we retry the open with jittered backoff until
 * `lockTimeoutMs`, then throw StoreLockTimeoutError.
 */
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

export interface MetaDbOptions {
  lockTimeoutMs?: number;
}

const queues = new Map<string, Promise<unknown>>();

const DELETED = Symbol('deleted');

function isLocked(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code === 'LEVEL_LOCKED' || e?.cause?.code === 'LEVEL_LOCKED';
}

export interface TxStats {
  transactions: number;
  openRetries: number;
}

export class MetaDb {
  readonly stats: TxStats = { transactions: 0, openRetries: 0 };
  private readonly lockTimeoutMs: number;

  constructor(
    readonly path: string,
    opts: MetaDbOptions = {},
  ) {
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 120_000;
  }

  /** Run `fn` as one critical section (see the module contract). */
  transaction<T>(fn: (tx: Tx) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const prev = queues.get(this.path) ?? Promise.resolve();
    const run = prev.then(
      () => this.runExclusive(fn, signal),
      () => this.runExclusive(fn, signal),
    );
    const tail = run.catch(() => undefined);
    queues.set(this.path, tail);
    void tail.then(() => {
      if (queues.get(this.path) === tail) queues.delete(this.path);
    });
    return run;
  }

  private async open(signal?: AbortSignal): Promise<Level<string, Json>> {
    const started = Date.now();
    let delay = 1;
    for (;;) {
      signal?.throwIfAborted();
      const db = new Level<string, Json>(this.path, { valueEncoding: 'json' });
      try {
        await db.open();
        return db;
      } catch (err) {
        if (!isLocked(err)) {
          throw new StoreConfigError(this.path, 'cannot open the metadata database', { cause: err });
        }
        const waited = Date.now() - started;
        if (waited >= this.lockTimeoutMs) throw new StoreLockTimeoutError(this.path, waited, { cause: err });
        this.stats.openRetries++;
        // Jitter keeps waiting processes from retrying in lock step.
        await sleep(delay * (0.5 + Math.random()), undefined, { signal });
        delay = Math.min(delay * 2, 20);
      }
    }
  }

  private async runExclusive<T>(fn: (tx: Tx) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const db = await this.open(signal);
    try {
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
        async range(prefix, schema, opts) {
          const entries = await db
            .iterator({ gte: prefix, lt: `${prefix}\uffff`, limit: opts?.limit ?? -1 })
            .all();
          return entries.map(([k, v]) => [k, parse(k, v, schema)] as [string, typeof schema._output]);
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
        await db.batch(ops);
      }
      return result;
    } finally {
      await db.close();
    }
  }
}
