import { appendFileSync, type FSWatcher, watch } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';

export const EventAction = z.enum([
  'create',
  'init',
  'start',
  'attach',
  'died',
  'cleanup',
  'stop',
  'kill',
  'pause',
  'unpause',
  'restart',
  'remove',
  'rename',
  'exec',
  'exec_died',
  'checkpoint',
  // images (podman's image event statuses)
  'pull',
  'push',
  'tag',
  'untag',
  'save',
  'loadfromarchive',
  // networks
  'connect',
  'disconnect',
]);
export type EventAction = z.infer<typeof EventAction>;

export const EventType = z.enum(['container', 'image', 'network']);
export type EventType = z.infer<typeof EventType>;

/**
 * One event, as written to the events log (one JSON object per line). Container events: `id`
 * and `name` are the container's. Image events: the image's ID and the name the operation used
 * (pulled, pushed, tagged, untagged, saved or removed name; the archive path for
 * `loadfromarchive`). Network events (`connect`, `disconnect`): the container's id and name,
 * the network in `attributes.network`.
 */
export interface LibpodEvent {
  type: EventType;
  action: EventAction;
  id: string;
  name: string;
  image?: string;
  /** ISO time with milliseconds; `timeNano` orders events written in the same millisecond. */
  time: string;
  timeNano: string;
  attributes: Record<string, string>;
}

export const EventFilter = z
  .object({
    /** Events at or after this time (Date, ISO string, or milliseconds since the epoch). */
    since: z.union([z.date(), z.string(), z.number()]).optional(),
    until: z.union([z.date(), z.string(), z.number()]).optional(),
    action: z.array(EventAction).optional(),
    /** Container ids, id prefixes or names (container and network events). */
    container: z.array(z.string()).optional(),
    /**
     * Image IDs, ID prefixes or names: image events of those images, and container events of
     * containers created from them (by the name or ID the container was created with).
     */
    image: z.array(z.string()).optional(),
    /** `key` or `key=value` on the event's attributes (container labels are attributes). */
    label: z.array(z.string()).optional(),
    type: z.array(EventType).optional(),
  })
  .strict();
export type EventFilter = z.input<typeof EventFilter>;

function toMs(t: Date | string | number): number {
  if (t instanceof Date) return t.getTime();
  if (typeof t === 'number') return t;
  const n = Date.parse(t);
  if (Number.isNaN(n)) throw new Error(`invalid time ${t}`);
  return n;
}

export function eventMatches(ev: LibpodEvent, f: z.infer<typeof EventFilter>): boolean {
  const t = Date.parse(ev.time);
  if (f.since !== undefined && t < toMs(f.since)) return false;
  if (f.until !== undefined && t > toMs(f.until)) return false;
  if (f.action && !f.action.includes(ev.action)) return false;
  if (f.type && !f.type.includes(ev.type)) return false;
  if (f.container && (ev.type === 'image' || !f.container.some((c) => ev.name === c || ev.id.startsWith(c))))
    return false;
  if (f.image) {
    const hit =
      ev.type === 'image'
        ? f.image.some((i) => ev.name === i || ev.id.startsWith(i))
        : ev.image !== undefined && f.image.includes(ev.image);
    if (!hit) return false;
  }
  if (f.label) {
    for (const l of f.label) {
      const eq = l.indexOf('=');
      if (eq < 0 ? !(l in ev.attributes) : ev.attributes[l.slice(0, eq)] !== l.slice(eq + 1)) return false;
    }
  }
  return true;
}

let lastNano = 0n;
function nowNano(): bigint {
  // Strictly increasing within one process, so a reader can order same-millisecond events.
  const n = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  lastNano = n > lastNano ? n : lastNano + 1n;
  return lastNano;
}

/**
 * The persistent events log: JSON lines appended with O_APPEND (each line is one write, so
 * writers in several processes — the program and the exit hook — do not interleave). Readers
 * filter by time, action, container and label; subscribers follow the file, so they also see
 * events written by other processes.
 */
export class EventLog {
  constructor(readonly file: string) {}

  async init(): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    await writeFile(this.file, '', { flag: 'a', mode: 0o600 });
  }

  async write(
    ev: Omit<LibpodEvent, 'time' | 'timeNano' | 'type'> & { type?: EventType },
  ): Promise<LibpodEvent> {
    const nano = nowNano();
    const full: LibpodEvent = {
      type: 'container',
      ...ev,
      time: new Date(Number(nano / 1_000_000n)).toISOString(),
      timeNano: nano.toString(),
    };
    // One O_APPEND write of one small line, inline: open+write+close through the thread pool cost
    // more than the syscalls, and `run` writes four events.
    appendFileSync(this.file, `${JSON.stringify(full)}\n`);
    return full;
  }

  /** Events already in the log that match the filter, oldest first. */
  async *read(filter: EventFilter = {}): AsyncGenerator<LibpodEvent> {
    const f = EventFilter.parse(filter);
    const tail = new Tail(this.file, 0);
    try {
      for (const ev of await tail.readNew()) if (eventMatches(ev, f)) yield ev;
    } finally {
      await tail.close();
    }
  }

  /**
   * Follows the log: yields matching events written after the call (and, with `since`, the
   * matching ones already there), until `signal` aborts, `until` passes, or the loop breaks.
   */
  async *subscribe(filter: EventFilter = {}, signal?: AbortSignal): AsyncGenerator<LibpodEvent> {
    const f = EventFilter.parse(filter);
    const tail = new Tail(this.file, f.since === undefined ? 'end' : 0);
    await tail.ready();
    const untilMs = f.until === undefined ? undefined : toMs(f.until);
    try {
      while (!signal?.aborted) {
        for (const ev of await tail.readNew()) {
          if (untilMs !== undefined && Date.parse(ev.time) > untilMs) return;
          if (eventMatches(ev, f)) yield ev;
        }
        if (untilMs !== undefined && Date.now() > untilMs) return;
        await tail.changed(signal);
      }
    } finally {
      await tail.close();
    }
  }
}

/** Reads appended lines of a file from a position, waking on inotify with a polling fallback. */
class Tail {
  private pos = 0;
  private partial = '';
  private watcher: FSWatcher | undefined;
  private wake: (() => void) | undefined;
  private readonly init: Promise<void>;

  constructor(
    private readonly file: string,
    start: number | 'end',
  ) {
    this.init = (async () => {
      if (start === 'end') {
        const fh = await open(file, 'r');
        this.pos = (await fh.stat()).size;
        await fh.close();
      } else this.pos = start;
      try {
        this.watcher = watch(file, { persistent: false }, () => this.wake?.());
        this.watcher.on('error', () => {});
      } catch {}
    })();
  }

  ready(): Promise<void> {
    return this.init;
  }

  async readNew(): Promise<LibpodEvent[]> {
    await this.init;
    const fh = await open(this.file, 'r');
    try {
      const size = (await fh.stat()).size;
      if (size <= this.pos) return [];
      const buf = Buffer.alloc(size - this.pos);
      const { bytesRead } = await fh.read(buf, 0, buf.length, this.pos);
      this.pos += bytesRead;
      const text = this.partial + buf.subarray(0, bytesRead).toString('utf8');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      const out: LibpodEvent[] = [];
      for (const line of lines) {
        if (!line) continue;
        try {
          out.push(JSON.parse(line) as LibpodEvent);
        } catch {}
      }
      return out;
    } finally {
      await fh.close();
    }
  }

  changed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, 250);
      this.wake = done;
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  async close(): Promise<void> {
    await this.init.catch(() => {});
    this.watcher?.close();
    this.wake?.();
  }
}
