import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { z } from 'zod';
import { sleep } from '../util/fs.js';

/** One line of container output, as conmon's k8s-file driver recorded it. */
export interface LogLine {
  stream: 'stdout' | 'stderr';
  /** RFC 3339 time with nanoseconds, as conmon wrote it. */
  time: string;
  /** The line without its newline (partial records are joined). */
  line: string;
}

const time = z.union([z.date(), z.string(), z.number()]);

export const LogsOptions = z
  .object({
    follow: z.boolean().default(false),
    since: time.optional(),
    until: time.optional(),
    /** Only the last N lines (before following). */
    tail: z.number().int().nonnegative().optional(),
    stdout: z.boolean().default(true),
    stderr: z.boolean().default(true),
  })
  .strict();
export type LogsOptions = z.input<typeof LogsOptions>;

function toMs(t: Date | string | number): number {
  if (t instanceof Date) return t.getTime();
  if (typeof t === 'number') return t;
  return Date.parse(t);
}

/**
 * Parses k8s-file records: `<RFC3339Nano> <stdout|stderr> <P|F> <content>`. `P` marks a partial
 * line continued by the next record of the same stream; `F` ends it.
 */
export class K8sFileParser {
  private readonly partial: Record<'stdout' | 'stderr', { time: string; text: string } | undefined> = {
    stdout: undefined,
    stderr: undefined,
  };

  /** Feeds complete record lines (without '\n'); returns the finished log lines. */
  push(record: string): LogLine | undefined {
    const a = record.indexOf(' ');
    const b = record.indexOf(' ', a + 1);
    const c = record.indexOf(' ', b + 1);
    if (a < 0 || b < 0) return undefined;
    const t = record.slice(0, a);
    const stream = record.slice(a + 1, b);
    if (stream !== 'stdout' && stream !== 'stderr') return undefined;
    const tag = c < 0 ? record.slice(b + 1) : record.slice(b + 1, c);
    const content = c < 0 ? '' : record.slice(c + 1);
    const prev = this.partial[stream];
    if (tag.startsWith('P')) {
      this.partial[stream] = { time: prev?.time ?? t, text: (prev?.text ?? '') + content };
      return undefined;
    }
    this.partial[stream] = undefined;
    return { stream, time: prev?.time ?? t, line: (prev?.text ?? '') + content };
  }
}

/** Splits a k8s-file log into stdout and stderr text (lines joined with '\n'). */
export function splitStreams(lines: Iterable<LogLine>): { stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  for (const l of lines) {
    if (l.stream === 'stdout') stdout += `${l.line}\n`;
    else stderr += `${l.line}\n`;
  }
  return { stdout, stderr };
}

export async function readAllLogLines(path: string): Promise<LogLine[]> {
  const out: LogLine[] = [];
  for await (const l of readLogs(path, {}, async () => false)) out.push(l);
  return out;
}

/**
 * Reads a k8s-file log. With `follow`, keeps reading appended records until `isRunning()` turns
 * false and the file is drained, or `signal` aborts.
 */
export async function* readLogs(
  path: string,
  options: LogsOptions,
  isRunning: () => Promise<boolean>,
  signal?: AbortSignal,
): AsyncGenerator<LogLine> {
  const o = LogsOptions.parse(options);
  const since = o.since === undefined ? undefined : toMs(o.since);
  const until = o.until === undefined ? undefined : toMs(o.until);
  const parser = new K8sFileParser();
  const keep = (l: LogLine) => {
    if (l.stream === 'stdout' ? !o.stdout : !o.stderr) return false;
    if (since === undefined && until === undefined) return true;
    const t = Date.parse(l.time);
    return (since === undefined || t >= since) && (until === undefined || t <= until);
  };
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !o.follow) return;
    throw err;
  }
  try {
    let pos = 0;
    let rest = '';
    const decoder = new StringDecoder('utf8');
    const readChunk = async (): Promise<LogLine[]> => {
      const lines: LogLine[] = [];
      for (;;) {
        const buf = Buffer.alloc(64 * 1024);
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        const recs = (rest + decoder.write(buf.subarray(0, bytesRead))).split('\n');
        rest = recs.pop() ?? '';
        for (const r of recs) {
          const l = parser.push(r);
          if (l && keep(l)) lines.push(l);
        }
      }
      return lines;
    };
    const first = await readChunk();
    yield* o.tail === undefined ? first : o.tail === 0 ? [] : first.slice(-o.tail);
    if (!o.follow) return;
    for (;;) {
      if (signal?.aborted) return;
      const running = await isRunning();
      const more = await readChunk();
      yield* more;
      if (!running && more.length === 0) return;
      await sleep(50);
    }
  } finally {
    await fh.close();
  }
}
