import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerRecord } from './record.js';

/** Resource usage of a container, from its cgroup. */
export interface ContainerStats {
  id: string;
  name: string;
  cgroupVersion: 1 | 2;
  /** Total CPU time used, nanoseconds. */
  cpuNanos: number;
  memoryUsageBytes: number;
  /** Undefined when unlimited. */
  memoryLimitBytes: number | undefined;
  pids: number;
  blockReadBytes: number;
  blockWriteBytes: number;
  /** When these numbers were read (ms since the epoch): two samples give a CPU percentage. */
  readAt: number;
}

const CGROUP_ROOT = '/sys/fs/cgroup';
const UNLIMITED = 2n ** 62n;

async function num(path: string): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const t = text.trim();
  if (t === 'max') return undefined;
  const n = BigInt(t.split(/\s/)[0] ?? '0');
  return n >= UNLIMITED ? undefined : Number(n);
}

async function kv(path: string): Promise<Map<string, number>> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

/** Reads cgroup v2 (unified) or v1 (per-controller hierarchies, hybrid hosts included). */
export async function readStats(r: ContainerRecord, cgroupRoot = CGROUP_ROOT): Promise<ContainerStats> {
  const path = r.cgroupsPath;
  const base = { id: r.id, name: r.name, readAt: Date.now() };
  if (existsSync(join(cgroupRoot, 'cgroup.controllers'))) {
    const dir = join(cgroupRoot, path);
    const cpu = await kv(join(dir, 'cpu.stat'));
    let rd = 0;
    let wr = 0;
    const io = await readFile(join(dir, 'io.stat'), 'utf8').catch(() => '');
    for (const m of io.matchAll(/rbytes=(\d+) wbytes=(\d+)/g)) {
      rd += Number(m[1]);
      wr += Number(m[2]);
    }
    return {
      ...base,
      cgroupVersion: 2,
      cpuNanos: (cpu.get('usage_usec') ?? 0) * 1000,
      memoryUsageBytes: (await num(join(dir, 'memory.current'))) ?? 0,
      memoryLimitBytes: await num(join(dir, 'memory.max')),
      pids: (await num(join(dir, 'pids.current'))) ?? 0,
      blockReadBytes: rd,
      blockWriteBytes: wr,
    };
  }
  const ctl = (c: string, f: string) => join(cgroupRoot, c, path, f);
  let rd = 0;
  let wr = 0;
  const blk = await readFile(ctl('blkio', 'blkio.throttle.io_service_bytes'), 'utf8').catch(() => '');
  for (const line of blk.split('\n')) {
    const [, op, v] = line.trim().split(/\s+/);
    if (op === 'Read') rd += Number(v);
    if (op === 'Write') wr += Number(v);
  }
  const cpuacct = existsSync(join(cgroupRoot, 'cpuacct')) ? 'cpuacct' : 'cpu,cpuacct';
  return {
    ...base,
    cgroupVersion: 1,
    cpuNanos: (await num(ctl(cpuacct, 'cpuacct.usage'))) ?? 0,
    memoryUsageBytes: (await num(ctl('memory', 'memory.usage_in_bytes'))) ?? 0,
    memoryLimitBytes: await num(ctl('memory', 'memory.limit_in_bytes')),
    pids: (await num(ctl('pids', 'pids.current'))) ?? 0,
    blockReadBytes: rd,
    blockWriteBytes: wr,
  };
}
