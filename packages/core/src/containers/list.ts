import { z } from 'zod';
import type { ContainerRecord } from './record.js';

export const ListOptions = z
  .object({
    /** Include containers that are not running (Podman's `ps -a`). */
    all: z.boolean().default(false),
    filters: z
      .object({
        status: z
          .array(z.enum(['configured', 'created', 'running', 'paused', 'stopped', 'exited', 'removing']))
          .optional(),
        /** `key` or `key=value`; all must match. */
        label: z.array(z.string()).optional(),
        /** Regular expressions on the name (Podman semantics); any may match. */
        name: z.array(z.string()).optional(),
        /** Id prefixes; any may match. */
        id: z.array(z.string()).optional(),
        /** Image name (with or without tag) or image id prefix; any may match. */
        ancestor: z.array(z.string()).optional(),
      })
      .strict()
      .default({}),
  })
  .strict();
export type ListOptions = z.input<typeof ListOptions>;

/** One row of `list` (Podman's `ps --format json` names). */
export interface ContainerSummary {
  Id: string;
  Names: string[];
  Image: string;
  ImageID: string;
  Command: string[];
  Created: string;
  State: string;
  Status: string;
  ExitCode: number;
  Pid: number;
  Labels: Record<string, string>;
  StartedAt: string;
  AutoRemove: boolean;
}

function statusText(r: ContainerRecord): string {
  const s = r.state;
  if (s.status === 'exited' || s.status === 'stopped')
    return `Exited (${s.exitCode}) ${s.finishedAt ?? ''}`.trim();
  if (s.status === 'running') return `Up since ${s.startedAt ?? ''}`.trim();
  if (s.status === 'paused') return 'Paused';
  return s.status[0]!.toUpperCase() + s.status.slice(1);
}

/** Filters and maps records; pure, so it stays fast for thousands of containers. */
export function listRecords(records: ContainerRecord[], o: z.output<typeof ListOptions>): ContainerSummary[] {
  const f = o.filters;
  const nameRes = f.name?.map((n) => new RegExp(n));
  const labelTests = f.label?.map((l) => {
    const eq = l.indexOf('=');
    return eq < 0 ? { key: l, value: undefined } : { key: l.slice(0, eq), value: l.slice(eq + 1) };
  });
  const out: ContainerSummary[] = [];
  for (const r of records) {
    const st = r.state.status;
    if (!o.all && !f.status && st !== 'running' && st !== 'paused') continue;
    if (f.status && !f.status.includes(st)) continue;
    if (nameRes && !nameRes.some((re) => re.test(r.name))) continue;
    if (f.id && !f.id.some((p) => r.id.startsWith(p))) continue;
    if (
      labelTests &&
      !labelTests.every((t) => (t.value === undefined ? t.key in r.labels : r.labels[t.key] === t.value))
    )
      continue;
    if (f.ancestor && !f.ancestor.some((a) => matchesAncestor(r, a))) continue;
    out.push({
      Id: r.id,
      Names: [r.name],
      Image: r.image ?? '',
      ImageID: r.imageId ?? '',
      Command: r.args,
      Created: r.created,
      State: st,
      Status: statusText(r),
      ExitCode: r.state.exitCode,
      Pid: st === 'running' || st === 'paused' ? r.state.pid : 0,
      Labels: r.labels,
      StartedAt: r.state.startedAt ?? '',
      AutoRemove: r.autoRemove,
    });
  }
  out.sort((a, b) => (a.Created < b.Created ? 1 : a.Created > b.Created ? -1 : 0));
  return out;
}

function matchesAncestor(r: ContainerRecord, a: string): boolean {
  if (!r.image && !r.imageId) return false;
  const id = (r.imageId ?? '').replace(/^sha256:/, '');
  if (id && a.replace(/^sha256:/, '').length >= 3 && id.startsWith(a.replace(/^sha256:/, ''))) return true;
  const img = r.image ?? '';
  if (img === a) return true;
  const withoutTag = img.replace(/:[^/:]+$/, '');
  return withoutTag === a || withoutTag.endsWith(`/${a}`) || img.endsWith(`/${a}`);
}
