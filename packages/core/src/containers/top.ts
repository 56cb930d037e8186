import { readFile } from 'node:fs/promises';
import type { Engine } from './engine.js';
import type { ContainerRecord } from './record.js';

export interface TopResult {
  Titles: string[];
  Processes: string[][];
}

/** Processes of the container (host pids from `runc ps`, details from /proc). */
export async function top(engine: Engine, r: ContainerRecord): Promise<TopResult> {
  const pids = await engine.runtime.pids(r.id);
  const rows = await Promise.all(
    pids.map(async (pid) => {
      const [stat, status, cmdline] = await Promise.all([
        readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''),
        readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''),
        readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''),
      ]);
      if (!stat) return undefined;
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1] ?? '?';
      const cmd = cmdline.split('\0').filter(Boolean).join(' ') || `[${comm}]`;
      return [String(pid), fields[1] ?? '?', uid, fields[0] ?? '?', cmd];
    }),
  );
  return {
    Titles: ['PID', 'PPID', 'UID', 'STATE', 'COMMAND'],
    Processes: rows.filter((x): x is string[] => x !== undefined),
  };
}
