import { describe, expect, it } from 'vitest';
import { CreateOptionsSchema, parseCreateOptions } from './create-options.js';
import { effectiveCapabilities } from './from-image.js';
import { cgroupsPathFor } from './opts/linux.js';

function issuesOf(input: unknown): string[] {
  try {
    parseCreateOptions(input);
  } catch (err) {
    expect(err).toMatchObject({ code: 'ERR_INVALID_OPTIONS' });
    return (err as { issues: { path: string }[] }).issues.map((i) => i.path);
  }
  return [];
}

describe('CreateOptions schema', () => {
  it('fills defaults', () => {
    const o = parseCreateOptions({});
    expect(o).toMatchObject({
      privileged: false,
      readOnly: false,
      readOnlyTmpfs: true,
      capAdd: [],
      mounts: [],
      init: false,
    });
    expect(CreateOptionsSchema.parse({ command: ['x'] }).command).toEqual(['x']);
  });

  it('rejects bad fields, naming each one', () => {
    expect(issuesOf({ hostname: 'bad host' })).toEqual(['hostname']);
    expect(issuesOf({ capAdd: ['NET_ADMIN', 'CAP_FLY'] })).toEqual(['capAdd.1']);
    expect(issuesOf({ workdir: 'relative' })).toEqual(['workdir']);
    expect(issuesOf({ resources: { memory: 1024 } })).toEqual(['resources.memory']);
    expect(issuesOf({ resources: { memory: 64 << 20, memorySwap: 1 << 20 } })).toEqual([
      'resources.memorySwap',
    ]);
    expect(issuesOf({ resources: { blkioWeight: 5 } })).toEqual(['resources.blkioWeight']);
    expect(issuesOf({ ulimits: [{ name: 'nofile', soft: 10, hard: 5 }] })).toEqual(['ulimits.0.soft']);
    expect(issuesOf({ ulimits: [{ name: 'files', soft: 1, hard: 5 }] })).toEqual(['ulimits.0.name']);
    expect(issuesOf({ stopSignal: 'SIGFOO' })).toEqual(['stopSignal']);
    expect(issuesOf({ mounts: [{ type: 'bind', source: '/a', destination: '/x/../../etc' }] })).toEqual([
      'mounts.0.destination',
    ]);
    expect(issuesOf({ mounts: [{ type: 'nfs', destination: '/x' }] })).toEqual(['mounts.0.type']);
    expect(issuesOf({ namespaces: { network: { path: 'relative' } } })).toEqual(['namespaces.network.path']);
    expect(issuesOf({ user: 'a:b:c' })).toEqual(['user']);
    expect(issuesOf({ env: { 'A=B': '1' } })).toEqual(['env.A=B']);
    expect(issuesOf({ seccompProfile: 'relative.json' })).toEqual(['seccompProfile']);
    expect(issuesOf({ privilegd: true })).toEqual(['']);
  });

  it('capability arithmetic follows Docker/Podman', () => {
    expect(effectiveCapabilities(['NET_ADMIN'], ['chown'])).not.toContain('CAP_CHOWN');
    expect(effectiveCapabilities(['NET_ADMIN'], ['chown'])).toContain('CAP_NET_ADMIN');
    expect(effectiveCapabilities(['NET_RAW'], ['ALL'])).toEqual(['CAP_NET_RAW']);
    expect(effectiveCapabilities(['ALL'], ['SYS_ADMIN'])).not.toContain('CAP_SYS_ADMIN');
    expect(effectiveCapabilities(['ALL'], []).length).toBeGreaterThan(30);
  });

  it('cgroups paths', () => {
    expect(cgroupsPathFor('abc')).toBe('/libpod_parent/libpod-abc');
    expect(cgroupsPathFor('abc', { parent: '/custom/' })).toBe('/custom/libpod-abc');
    expect(cgroupsPathFor('abc', { manager: 'systemd' })).toBe('machine.slice:libpod:abc');
    expect(() => cgroupsPathFor('../x')).toThrow();
    expect(() => cgroupsPathFor('abc', { parent: '/a/../b' })).toThrow();
  });
});

describe('capability opts', () => {
  it('withCapAdd / withCapDrop edit every present set', async () => {
    const { generateSpec } = await import('./generate.js');
    const { withCapAdd, withCapDrop, withCapabilities } = await import('./opts/security.js');
    const spec = await generateSpec(undefined, withCapAdd('net_admin'), withCapDrop('CAP_CHOWN'));
    const c = spec.process!.capabilities!;
    for (const set of [c.bounding, c.effective, c.permitted]) {
      expect(set).toContain('CAP_NET_ADMIN');
      expect(set).not.toContain('CAP_CHOWN');
    }
    expect(c.inheritable).toBeUndefined();
    const none = await generateSpec(undefined, withCapDrop('ALL'));
    expect(none.process!.capabilities!.bounding).toEqual([]);
    const nonRoot = await generateSpec(undefined, withCapabilities(['CAP_KILL', 'CAP_NET_RAW'], ['NET_RAW']));
    expect(nonRoot.process!.capabilities).toEqual({
      bounding: ['CAP_KILL', 'CAP_NET_RAW'],
      effective: ['CAP_NET_RAW'],
      inheritable: ['CAP_NET_RAW'],
      permitted: ['CAP_NET_RAW'],
      ambient: ['CAP_NET_RAW'],
    });
    expect(() => withCapAdd('CAP_FLY')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_SPEC_OPTION' }));
  });
});
