import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { K8sFileParser, readLogs, splitStreams } from './logs.js';

describe('k8s-file log reader', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'libpod-ts-test-logs-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('joins partial records per stream and keeps empty lines', () => {
    const p = new K8sFileParser();
    expect(p.push('2026-01-01T00:00:00.000000001Z stdout P hel')).toBeUndefined();
    expect(p.push('2026-01-01T00:00:00.000000002Z stderr F oops')).toEqual({
      stream: 'stderr',
      time: '2026-01-01T00:00:00.000000002Z',
      line: 'oops',
    });
    expect(p.push('2026-01-01T00:00:00.000000003Z stdout F lo world')?.line).toBe('hello world');
    expect(p.push('2026-01-01T00:00:00.000000004Z stdout F ')?.line).toBe('');
    expect(p.push('garbage')).toBeUndefined();
    expect(p.push('2026-01-01T00:00:00Z other F x')).toBeUndefined();
  });

  it('filters by stream, since/until and tail; tolerates multi-byte text', async () => {
    const file = join(dir, 'a.log');
    await writeFile(
      file,
      [
        '2026-01-01T00:00:01.000000000Z stdout F one',
        '2026-01-01T00:00:02.000000000Z stderr F two',
        '2026-01-01T00:00:03.000000000Z stdout F drei ü €',
        '2026-01-01T00:00:04.000000000Z stdout F four',
        '',
      ].join('\n'),
    );
    const read = async (o: Parameters<typeof readLogs>[1]) => {
      const out: string[] = [];
      for await (const l of readLogs(file, o, async () => false)) out.push(l.line);
      return out;
    };
    expect(await read({})).toEqual(['one', 'two', 'drei ü €', 'four']);
    expect(await read({ stderr: false })).toEqual(['one', 'drei ü €', 'four']);
    expect(await read({ since: '2026-01-01T00:00:02Z', until: '2026-01-01T00:00:03.5Z' })).toEqual([
      'two',
      'drei ü €',
    ]);
    expect(await read({ tail: 2 })).toEqual(['drei ü €', 'four']);
    expect(await read({ tail: 0 })).toEqual([]);
    expect(await read({ follow: false, stdout: false })).toEqual(['two']);
    const all = [];
    for await (const l of readLogs(file, {}, async () => false)) all.push(l);
    expect(splitStreams(all)).toEqual({ stdout: 'one\ndrei ü €\nfour\n', stderr: 'two\n' });
  });

  it('rejects unknown options', async () => {
    const it = readLogs(join(dir, 'a.log'), { bogus: true } as never, async () => false);
    await expect(it.next()).rejects.toThrow();
  });
});
