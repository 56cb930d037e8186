import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CAPABILITIES } from './defaults.js';
import { DEFAULT_SECCOMP_PROFILE } from './seccomp/default-profile.js';
import { loadSeccompProfile, seccompForSpec } from './seccomp/profile.js';

const INSTALLED = '/usr/share/containers/seccomp.json';
const podman = (name: string) =>
  JSON.parse(readFileSync(new URL(`./testdata/${name}`, import.meta.url), 'utf8'));

describe('default seccomp profile', () => {
  it.skipIf(!existsSync(INSTALLED))('equals the containers-common seccomp.json installed with Podman', () => {
    const installed = JSON.parse(readFileSync(INSTALLED, 'utf8'));
    const norm = (p: typeof installed) =>
      p.syscalls.map((s: Record<string, unknown>) => ({
        names: s.names,
        action: s.action,
        errnoRet: s.errnoRet ?? undefined,
        args: ((s.args as { index: number; value: number; op: string }[] | null) ?? []).map((a) => ({
          index: a.index,
          value: a.value,
          op: a.op,
        })),
        includes: Object.fromEntries(
          Object.entries((s.includes as object) ?? {}).filter(([, v]) => v && (v as []).length),
        ),
        excludes: Object.fromEntries(
          Object.entries((s.excludes as object) ?? {}).filter(([, v]) => v && (v as []).length),
        ),
      }));
    expect(norm(DEFAULT_SECCOMP_PROFILE)).toEqual(norm(installed));
    expect(DEFAULT_SECCOMP_PROFILE.defaultAction).toBe(installed.defaultAction);
    expect(DEFAULT_SECCOMP_PROFILE.defaultErrnoRet).toBe(installed.defaultErrnoRet);
    expect(DEFAULT_SECCOMP_PROFILE.archMap).toEqual(installed.archMap);
  });
  if (!existsSync(INSTALLED)) console.log(`skipping the installed-profile comparison: ${INSTALLED} absent`);

  it('resolved for amd64 and the default capabilities, it is exactly what Podman 4.3 wrote', () => {
    const ours = seccompForSpec(DEFAULT_SECCOMP_PROFILE, {
      capabilities: DEFAULT_CAPABILITIES,
      arch: 'amd64',
    });
    expect(ours).toEqual(podman('podman-default.json').linux.seccomp);
  });

  it('capability conditions follow the bounding set', () => {
    const names = (caps: readonly string[]) =>
      seccompForSpec(DEFAULT_SECCOMP_PROFILE, { capabilities: caps, arch: 'amd64' })
        .syscalls!.filter((s) => s.action === 'SCMP_ACT_ALLOW')
        .flatMap((s) => s.names);
    expect(names(DEFAULT_CAPABILITIES)).not.toContain('bpf');
    expect(names([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'])).toContain('bpf');
    expect(names([])).not.toContain('chroot');
    expect(names(['CAP_SYS_CHROOT'])).toContain('chroot');
  });

  it('arch conditions and architectures follow the arch', () => {
    const arm = seccompForSpec(DEFAULT_SECCOMP_PROFILE, { capabilities: [], arch: 'arm64' });
    expect(arm.architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    const armNames = arm.syscalls!.flatMap((s) => s.names);
    expect(armNames).toContain('arm_fadvise64_64');
    expect(armNames).not.toContain('arch_prctl');
  });

  it('loads a profile file, refusing bad ones with a typed error', async () => {
    const dir = await makeTempDir('spec-seccomp');
    try {
      const good = join(dir, 'good.json');
      await writeFile(
        good,
        JSON.stringify({
          defaultAction: 'SCMP_ACT_ALLOW',
          syscalls: [{ names: ['ptrace'], action: 'SCMP_ACT_ERRNO' }],
        }),
      );
      const p = await loadSeccompProfile(good);
      expect(seccompForSpec(p, { capabilities: [], arch: 'amd64' })).toMatchObject({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['ptrace'], action: 'SCMP_ACT_ERRNO' }],
      });
      const bad = join(dir, 'bad.json');
      await writeFile(bad, JSON.stringify({ defaultAction: 'SCMP_ACT_MAYBE' }));
      await expect(loadSeccompProfile(bad)).rejects.toMatchObject({ code: 'ERR_INVALID_SECCOMP_PROFILE' });
      await writeFile(bad, '{not json');
      await expect(loadSeccompProfile(bad)).rejects.toMatchObject({ code: 'ERR_INVALID_SECCOMP_PROFILE' });
      await expect(loadSeccompProfile(join(dir, 'missing.json'))).rejects.toMatchObject({
        code: 'ERR_INVALID_SECCOMP_PROFILE',
      });
    } finally {
      await removeTempDir(dir);
    }
  });
});
