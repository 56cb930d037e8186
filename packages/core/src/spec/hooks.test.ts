import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateSpec } from './generate.js';
import { loadHooks, withHooks } from './hooks.js';
import { withAnnotations } from './opts/linux.js';
import { withBindMount } from './opts/mounts.js';
import { withArgs } from './opts/process.js';

const hook = (path: string, when: object, stages: string[], extra: object = {}) =>
  JSON.stringify({ version: '1.0.0', hook: { path, ...extra }, when, stages });

describe('OCI hooks from hooks.d (oci-hooks(5) 1.0.0)', () => {
  let dir: string;
  let low: string;
  let high: string;
  beforeEach(async () => {
    dir = await makeTempDir('spec-hooks');
    low = join(dir, 'usr-share');
    high = join(dir, 'etc');
    await mkdir(low);
    await mkdir(high);
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('loads in file-name order, later directories masking earlier ones, and injects matching hooks', async () => {
    await writeFile(
      join(low, '01-always.json'),
      hook('/bin/true', { always: true }, ['prestart', 'poststop'], { args: ['true', 'x'], timeout: 5 }),
    );
    await writeFile(join(low, '02-masked.json'), hook('/bin/false', { always: true }, ['prestart']));
    await writeFile(join(high, '02-masked.json'), hook('/bin/sh', { always: true }, ['createRuntime']));
    await writeFile(
      join(high, '03-ann.json'),
      hook('/bin/true', { annotations: { '^com\\.example\\.gpu$': '^yes$' } }, ['createContainer']),
    );
    await writeFile(
      join(high, '04-cmd.json'),
      hook('/bin/true', { commands: ['^/usr/sbin/init$'] }, ['startContainer']),
    );
    await writeFile(
      join(high, '05-both.json'),
      hook('/bin/true', { commands: ['.*'], hasBindMounts: true }, ['poststart']),
    );
    await writeFile(join(high, 'README'), 'not a hook');
    await writeFile(join(high, '00-never.json'), hook('/bin/true', { always: false }, ['prestart']));

    const hooks = await loadHooks([low, join(dir, 'absent'), high]);
    expect(hooks.map((h) => h.file)).toEqual([
      join(high, '00-never.json'),
      join(low, '01-always.json'),
      join(high, '02-masked.json'),
      join(high, '03-ann.json'),
      join(high, '04-cmd.json'),
      join(high, '05-both.json'),
    ]);

    const plain = await generateSpec(undefined, withArgs('/bin/sh'), withHooks(hooks));
    expect(plain.hooks).toEqual({
      prestart: [{ path: '/bin/true', args: ['true', 'x'], timeout: 5 }],
      poststop: [{ path: '/bin/true', args: ['true', 'x'], timeout: 5 }],
      createRuntime: [{ path: '/bin/sh' }],
    });

    const all = await generateSpec(
      undefined,
      withArgs('/usr/sbin/init'),
      withAnnotations({ 'com.example.gpu': 'yes' }),
      withBindMount('/tmp', '/hosttmp'),
      withHooks(hooks),
    );
    expect(Object.keys(all.hooks ?? {}).sort()).toEqual(
      ['createContainer', 'createRuntime', 'poststart', 'poststop', 'prestart', 'startContainer'].sort(),
    );
  });

  it('an invalid hook file is a typed error naming it', async () => {
    const cases: [string, string][] = [
      ['bad-json.json', '{'],
      [
        'no-version.json',
        JSON.stringify({ hook: { path: '/bin/true' }, when: { always: true }, stages: ['prestart'] }),
      ],
      ['relative.json', hook('bin/true', { always: true }, ['prestart'])],
      ['no-when.json', hook('/bin/true', {}, ['prestart'])],
      ['bad-stage.json', hook('/bin/true', { always: true }, ['prestop'])],
      ['bad-regex.json', hook('/bin/true', { commands: ['('] }, ['prestart'])],
      ['missing-exe.json', hook('/nonexistent/hook', { always: true }, ['prestart'])],
    ];
    for (const [name, text] of cases) {
      const d = join(dir, name.replace('.json', ''));
      await mkdir(d);
      await writeFile(join(d, name), text);
      await expect(loadHooks([d]), name).rejects.toMatchObject({
        code: 'ERR_INVALID_HOOK',
        file: join(d, name),
      });
    }
  });
});
