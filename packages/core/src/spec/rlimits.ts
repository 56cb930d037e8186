/**
 * Resource limits (`process.rlimits`). The runtime sets them with setrlimit(2) in the container's
 * init, which inherits our limits through conmon/runc: without CAP_SYS_RESOURCE (missing on this
 * host) a hard limit above ours fails with EPERM and the container does not start — what makes
 * `podman run` fail here with Podman's default nofile/nproc of 1048576. So defaults are clamped
 * to our own hard limits, and an explicit limit above them is refused before the runtime runs.
 */
import { readFileSync } from 'node:fs';
import { InvalidSpecOptionError, RlimitExceedsHostError } from '../errors.js';
import { DEFAULT_RLIMITS } from './defaults.js';
import { ensureProcess } from './generate.js';
import type { POSIXRlimit, SpecOpt } from './types.js';

/** Short names (`ulimit`/`--ulimit`) to the runtime-spec names. */
export const RLIMIT_NAMES: Readonly<Record<string, string>> = {
  as: 'RLIMIT_AS',
  core: 'RLIMIT_CORE',
  cpu: 'RLIMIT_CPU',
  data: 'RLIMIT_DATA',
  fsize: 'RLIMIT_FSIZE',
  locks: 'RLIMIT_LOCKS',
  memlock: 'RLIMIT_MEMLOCK',
  msgqueue: 'RLIMIT_MSGQUEUE',
  nice: 'RLIMIT_NICE',
  nofile: 'RLIMIT_NOFILE',
  nproc: 'RLIMIT_NPROC',
  rss: 'RLIMIT_RSS',
  rtprio: 'RLIMIT_RTPRIO',
  rttime: 'RLIMIT_RTTIME',
  sigpending: 'RLIMIT_SIGPENDING',
  stack: 'RLIMIT_STACK',
};

/** The row titles of /proc/<pid>/limits. */
const PROC_TITLES: Readonly<Record<string, string>> = {
  'Max cpu time': 'RLIMIT_CPU',
  'Max file size': 'RLIMIT_FSIZE',
  'Max data size': 'RLIMIT_DATA',
  'Max stack size': 'RLIMIT_STACK',
  'Max core file size': 'RLIMIT_CORE',
  'Max resident set': 'RLIMIT_RSS',
  'Max processes': 'RLIMIT_NPROC',
  'Max open files': 'RLIMIT_NOFILE',
  'Max locked memory': 'RLIMIT_MEMLOCK',
  'Max address space': 'RLIMIT_AS',
  'Max file locks': 'RLIMIT_LOCKS',
  'Max pending signals': 'RLIMIT_SIGPENDING',
  'Max msgqueue size': 'RLIMIT_MSGQUEUE',
  'Max nice priority': 'RLIMIT_NICE',
  'Max realtime priority': 'RLIMIT_RTPRIO',
  'Max realtime timeout': 'RLIMIT_RTTIME',
};

/** One host limit; `Infinity` for `unlimited`. */
export interface HostRlimit {
  soft: number;
  hard: number;
}

/** Normalize `nofile` / `NOFILE` / `RLIMIT_NOFILE` to `RLIMIT_NOFILE`. */
export function rlimitType(name: string): string {
  const low = name.toLowerCase().replace(/^rlimit_/, '');
  const t = RLIMIT_NAMES[low];
  if (!t) throw new InvalidSpecOptionError('ulimit', `unknown limit ${JSON.stringify(name)}`);
  return t;
}

/** Parse the text of /proc/<pid>/limits (Node has no getrlimit). */
export function parseProcLimits(text: string): Map<string, HostRlimit> {
  const out = new Map<string, HostRlimit>();
  const num = (s: string) => (s === 'unlimited' ? Number.POSITIVE_INFINITY : Number(s));
  for (const line of text.split('\n').slice(1)) {
    const m = /^(.+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
    if (!m) continue;
    const type = PROC_TITLES[m[1]!.trim()];
    if (!type) continue;
    const soft = num(m[2]!);
    const hard = num(m[3]!);
    if (Number.isNaN(soft) || Number.isNaN(hard)) continue;
    out.set(type, { soft, hard });
  }
  return out;
}

/** This process's limits, read from /proc/self/limits (empty map if unreadable). */
export function hostRlimits(): Map<string, HostRlimit> {
  try {
    return parseProcLimits(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return new Map();
  }
}

export interface Ulimit {
  /** `nofile`, `nproc`, ... or `RLIMIT_*`. */
  name: string;
  soft: number;
  hard: number;
}

function checkValue(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0)
    throw new InvalidSpecOptionError('ulimit', `${name} value ${v} is not valid`);
}

/** Clamp a limit to the host's hard limit (both soft and hard; soft never above hard). */
export function clampRlimit(limit: POSIXRlimit, host: ReadonlyMap<string, HostRlimit>): POSIXRlimit {
  const h = host.get(limit.type);
  if (!h) return { ...limit };
  const hard = Math.min(limit.hard, h.hard);
  return { type: limit.type, hard, soft: Math.min(limit.soft, hard) };
}

export interface RlimitOptions {
  /** The host's limits (default: read from /proc/self/limits). */
  host?: ReadonlyMap<string, HostRlimit>;
}

/**
 * Set explicit limits (`--ulimit nofile=1024:2048`), replacing any of the same type.
 * Refuses (RlimitExceedsHostError) a hard limit above the host's: the runtime would fail later
 * with a less helpful EPERM.
 */
export function withRlimits(limits: readonly Ulimit[], opts: RlimitOptions = {}): SpecOpt {
  const wanted = limits.map((l) => {
    const type = rlimitType(l.name);
    checkValue(type, l.soft);
    checkValue(type, l.hard);
    if (l.soft > l.hard)
      throw new InvalidSpecOptionError('ulimit', `${type} soft ${l.soft} is above hard ${l.hard}`);
    return { type, soft: l.soft, hard: l.hard };
  });
  return (spec) => {
    const host = opts.host ?? hostRlimits();
    for (const l of wanted) {
      const h = host.get(l.type);
      if (h && l.hard > h.hard) throw new RlimitExceedsHostError(l.type, l.hard, h.hard);
    }
    const p = ensureProcess(spec);
    const types = new Set(wanted.map((l) => l.type));
    p.rlimits = [...(p.rlimits ?? []).filter((r) => !types.has(r.type)), ...wanted];
  };
}

/**
 * Podman's default limits for root (nofile and nproc 1048576), each clamped to the host's hard
 * limit, for the types not already set. Here: nofile 20000:20000, nproc 96368:96368.
 */
export function withDefaultRlimits(opts: RlimitOptions = {}): SpecOpt {
  return (spec) => {
    const host = opts.host ?? hostRlimits();
    const p = ensureProcess(spec);
    const have = new Set((p.rlimits ?? []).map((r) => r.type));
    const add = DEFAULT_RLIMITS.filter((r) => !have.has(r.type)).map((r) => clampRlimit(r, host));
    p.rlimits = [...(p.rlimits ?? []), ...add];
  };
}
