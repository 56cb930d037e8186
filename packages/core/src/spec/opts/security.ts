/** SpecOpts for privileges: capabilities, privileged mode, seccomp, masked paths. */
import { readFileSync } from 'node:fs';
import { InvalidSpecOptionError } from '../../errors.js';
import { ALL_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../defaults.js';
import { ensureLinux, ensureProcess } from '../generate.js';
import { DEFAULT_SECCOMP_PROFILE } from '../seccomp/default-profile.js';
import { type DockerSeccompProfile, seccompForSpec } from '../seccomp/profile.js';
import type { Capabilities, LinuxSeccomp, SpecOpt } from '../types.js';

const KNOWN = new Set(ALL_CAPABILITIES);

/** `net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` all name CAP_NET_ADMIN; `ALL` stays `ALL`. */
export function normalizeCapability(name: string): string {
  const up = name.trim().toUpperCase();
  if (up === 'ALL') return 'ALL';
  const cap = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!KNOWN.has(cap))
    throw new InvalidSpecOptionError('capability', `unknown capability ${JSON.stringify(name)}`);
  return cap;
}

/**
 * The capabilities this process may grant: its own bounding set (CapBnd in /proc/self/status).
 * A runtime started by us cannot give a container more; Podman's privileged set is the same
 * (here it lacks CAP_SYS_RESOURCE). Falls back to every known capability if unreadable.
 */
export function hostCapabilities(): string[] {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status);
    if (!m) return [...ALL_CAPABILITIES];
    const mask = BigInt(`0x${m[1]}`);
    return ALL_CAPABILITIES.filter((_, i) => (mask >> BigInt(i)) & 1n).sort();
  } catch {
    return [...ALL_CAPABILITIES];
  }
}

const SETS = ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'] as const;

/**
 * Replace the capability sets. Root (uid 0) gets bounding = effective = permitted = `caps`;
 * pass `nonRootAdded` for a non-root user: Podman then gives effective, permitted, inheritable
 * and ambient only the explicitly added capabilities (still within `caps`).
 */
export function withCapabilities(caps: readonly string[], nonRootAdded?: readonly string[]): SpecOpt {
  const set = [...new Set(caps.map(normalizeCapability))].filter((c) => c !== 'ALL').sort();
  return (spec) => {
    const p = ensureProcess(spec);
    if (nonRootAdded) {
      const added = nonRootAdded.map(normalizeCapability).filter((c) => set.includes(c));
      const a = [...new Set(added)].sort();
      p.capabilities = {
        bounding: set,
        effective: a,
        inheritable: [...a],
        permitted: [...a],
        ambient: [...a],
      };
      if (a.length === 0) p.capabilities = { bounding: set, effective: [], permitted: [] };
    } else {
      p.capabilities = { bounding: set, effective: [...set], permitted: [...set] };
    }
  };
}

function editCaps(caps: Capabilities, fn: (list: string[]) => string[], onlyExisting: boolean): void {
  for (const k of SETS) {
    if (onlyExisting && caps[k] === undefined) continue;
    caps[k] = fn(caps[k] ?? []);
  }
}

/** Add capabilities to the bounding, effective and permitted sets (and inheritable/ambient when present). `ALL` adds every capability the host allows. */
export function withCapAdd(...names: string[]): SpecOpt {
  const norm = names.map(normalizeCapability);
  return (spec) => {
    const p = ensureProcess(spec);
    p.capabilities ??= { bounding: [], effective: [], permitted: [] };
    const add = norm.includes('ALL') ? hostCapabilities() : norm;
    const caps = p.capabilities;
    for (const k of ['bounding', 'effective', 'permitted'] as const) caps[k] ??= [];
    editCaps(caps, (list) => [...new Set([...list, ...add])].sort(), true);
  };
}

/** Remove capabilities from every set; `ALL` empties them. */
export function withCapDrop(...names: string[]): SpecOpt {
  const norm = names.map(normalizeCapability);
  return (spec) => {
    const p = ensureProcess(spec);
    if (!p.capabilities) return;
    const fn = norm.includes('ALL') ? () => [] : (list: string[]) => list.filter((c) => !norm.includes(c));
    editCaps(p.capabilities, fn, true);
  };
}

/**
 * Podman's `--privileged`: every capability the host allows, no seccomp filter, no masked or
 * read-only paths, sysfs and cgroupfs read-write, every device allowed in the devices cgroup.
 * Host devices are bind-created by `withHostDevices()` (async; specFromImage applies both).
 */
export function withPrivileged(): SpecOpt {
  return (spec) => {
    const caps = hostCapabilities();
    const p = ensureProcess(spec);
    p.capabilities = { bounding: [...caps], effective: [...caps], permitted: [...caps] };
    const linux = ensureLinux(spec);
    delete linux.seccomp;
    linux.maskedPaths = [];
    linux.readonlyPaths = [];
    linux.resources ??= {};
    linux.resources.devices = [{ allow: true, access: 'rwm' }];
    for (const m of spec.mounts ?? []) {
      if (m.type === 'sysfs' || m.type === 'cgroup') {
        m.options = [...(m.options ?? []).filter((o) => o !== 'ro' && o !== 'rw'), 'rw'];
      }
    }
  };
}

/** Set an explicit OCI seccomp filter, or none (`undefined`: unconfined). */
export function withSeccomp(seccomp: LinuxSeccomp | undefined): SpecOpt {
  return (spec) => {
    const linux = ensureLinux(spec);
    if (seccomp) linux.seccomp = structuredClone(seccomp);
    else delete linux.seccomp;
  };
}

/** No seccomp filter (`--security-opt seccomp=unconfined`). */
export function withUnconfinedSeccomp(): SpecOpt {
  return withSeccomp(undefined);
}

/**
 * Apply a Docker-format profile (Podman's default when omitted), resolved for the spec's
 * bounding capability set at the time this opt runs: put it after every capability change.
 */
export function withDefaultSeccomp(profile: DockerSeccompProfile = DEFAULT_SECCOMP_PROFILE): SpecOpt {
  return (spec) => {
    const caps = spec.process?.capabilities?.bounding ?? [];
    ensureLinux(spec).seccomp = seccompForSpec(profile, { capabilities: caps });
  };
}

/** Replace the masked paths (Podman's defaults when called without arguments). */
export function withMaskedPaths(paths: readonly string[] = DEFAULT_MASKED_PATHS): SpecOpt {
  return (spec) => {
    ensureLinux(spec).maskedPaths = [...paths];
  };
}

/** Replace the read-only paths (Podman's defaults when called without arguments). */
export function withReadonlyPaths(paths: readonly string[] = DEFAULT_READONLY_PATHS): SpecOpt {
  return (spec) => {
    ensureLinux(spec).readonlyPaths = [...paths];
  };
}
