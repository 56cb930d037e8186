/** SpecOpts for the container process: command, environment, cwd, terminal, umask. */
import path from 'node:path';
import { InvalidSpecOptionError, InvalidWorkdirError } from '../../errors.js';
import { ensureProcess } from '../generate.js';
import type { SpecOpt } from '../types.js';

/** Replace the process arguments (argv, the first being the executable). */
export function withArgs(...args: string[]): SpecOpt {
  return (spec) => {
    ensureProcess(spec).args = [...args];
  };
}

/** Split `KEY=VALUE`; an entry without `=` is a key with an empty value. */
export function splitEnv(entry: string): [string, string] {
  const i = entry.indexOf('=');
  return i < 0 ? [entry, ''] : [entry.slice(0, i), entry.slice(i + 1)];
}

/**
 * Set environment variables. A key already present keeps its position and takes the new value
 * (so later opts override earlier ones, as `docker run -e` overrides the image's Env).
 */
export function withEnv(env: Record<string, string> | readonly string[]): SpecOpt {
  const entries: [string, string][] = Array.isArray(env)
    ? (env as readonly string[]).map(splitEnv)
    : Object.entries(env as Record<string, string>);
  for (const [k] of entries) {
    if (k === '' || k.includes('\0'))
      throw new InvalidSpecOptionError('env', `bad variable name ${JSON.stringify(k)}`);
  }
  return (spec) => {
    const p = ensureProcess(spec);
    const map = new Map((p.env ?? []).map(splitEnv));
    for (const [k, v] of entries) map.set(k, v);
    p.env = [...map].map(([k, v]) => `${k}=${v}`);
  };
}

/** Set a variable only when the environment does not have it yet. */
export function withEnvDefault(key: string, value: string): SpecOpt {
  return (spec) => {
    const p = ensureProcess(spec);
    if ((p.env ?? []).some((e) => splitEnv(e)[0] === key)) return;
    p.env = [...(p.env ?? []), `${key}=${value}`];
  };
}

/** Remove variables. */
export function withoutEnv(...keys: string[]): SpecOpt {
  return (spec) => {
    const p = ensureProcess(spec);
    p.env = (p.env ?? []).filter((e) => !keys.includes(splitEnv(e)[0]));
  };
}

/**
 * Paths that must never be a container's cwd: procfs/sysfs are mounted by the runtime before it
 * chdirs, and `/proc/self/fd/N` there is a host file descriptor leaked into the container
 * (runc CVE-2024-21626 "Leaky Vessels").
 */
export function isForbiddenCwd(p: string): boolean {
  const n = path.posix.normalize(p);
  return /^\/(proc|sys)(\/|$)/.test(n);
}

/**
 * Set the working directory lexically (no rootfs access): it must be absolute and not under
 * /proc or /sys. `withWorkdirInRootfs()` also resolves and creates it inside a rootfs.
 */
export function withCwd(cwd: string): SpecOpt {
  if (!path.posix.isAbsolute(cwd)) throw new InvalidWorkdirError(cwd, 'not an absolute path');
  if (cwd.includes('\0')) throw new InvalidWorkdirError(cwd, 'contains a NUL byte');
  if (isForbiddenCwd(cwd)) throw new InvalidWorkdirError(cwd, 'inside /proc or /sys (CVE-2024-21626)');
  const clean = path.posix.normalize(cwd);
  return (spec) => {
    ensureProcess(spec).cwd = clean;
  };
}

/** Allocate a terminal (the runtime's console socket then receives the pty master). */
export function withTerminal(terminal = true): SpecOpt {
  return (spec) => {
    ensureProcess(spec).terminal = terminal;
  };
}

/** Set the process umask (Podman's default 0022). */
export function withUmask(umask: number): SpecOpt {
  if (!Number.isInteger(umask) || umask < 0 || umask > 0o777) {
    throw new InvalidSpecOptionError('umask', `${umask} is not between 0 and 0777`);
  }
  return (spec) => {
    ensureProcess(spec).user.umask = umask;
  };
}

/** Set the OOM score adjustment (-1000..1000). */
export function withOomScoreAdj(score: number): SpecOpt {
  if (!Number.isInteger(score) || score < -1000 || score > 1000) {
    throw new InvalidSpecOptionError('oomScoreAdj', `${score} is not between -1000 and 1000`);
  }
  return (spec) => {
    ensureProcess(spec).oomScoreAdj = score;
  };
}

/** Set `noNewPrivileges` (setuid binaries and file capabilities then grant nothing). */
export function withNoNewPrivileges(on = true): SpecOpt {
  return (spec) => {
    ensureProcess(spec).noNewPrivileges = on;
  };
}

/** Set hostname (with a private UTS namespace) and the HOSTNAME variable, as Podman does. */
export function withHostname(hostname: string): SpecOpt {
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})?$/.test(hostname)) {
    throw new InvalidSpecOptionError('hostname', `${JSON.stringify(hostname)} is not a valid host name`);
  }
  return (spec) => {
    spec.hostname = hostname;
    const p = ensureProcess(spec);
    const env = (p.env ?? []).filter((e) => splitEnv(e)[0] !== 'HOSTNAME');
    p.env = [...env, `HOSTNAME=${hostname}`];
  };
}

/** Set the NIS domain name (private UTS namespace). */
export function withDomainname(domainname: string): SpecOpt {
  return (spec) => {
    spec.domainname = domainname;
  };
}
