import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getCredentials } from './credentials.js';

let tmp: string;
const b64 = (s: string) => Buffer.from(s).toString('base64');

beforeAll(async () => {
  tmp = await makeTempDir('image-creds');
  await mkdir(join(tmp, 'bin'));
  // A real executable credential helper, found through PATH as docker does.
  await writeFile(
    join(tmp, 'bin', 'docker-credential-rigtest'),
    `#!/bin/sh
read server
case "$server" in
  helper.example:5000) echo '{"ServerURL":"helper.example:5000","Username":"hu","Secret":"hs"}' ;;
  store.example) echo '{"ServerURL":"store.example","Username":"<token>","Secret":"idtok"}' ;;
  broken.example) echo 'boom' >&2; exit 3 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
`,
  );
  await chmod(join(tmp, 'bin', 'docker-credential-rigtest'), 0o755);
});
afterAll(async () => {
  await removeTempDir(tmp);
});

describe('getCredentials', () => {
  it('reads containers-auth.json with namespace-specific entries first', async () => {
    const f = join(tmp, 'auth.json');
    await writeFile(
      f,
      JSON.stringify({
        auths: {
          'reg.example': { auth: b64('host:pw') },
          'reg.example/team/app': { auth: b64('repo:pw2') },
          'https://index.docker.io/v1/': { auth: b64('hub:pw3') },
        },
      }),
    );
    const ctx = { authFilePath: f, dockerConfigPath: '' };
    expect(await getCredentials(ctx, 'reg.example', 'team/app')).toEqual({
      username: 'repo',
      password: 'pw2',
    });
    expect(await getCredentials(ctx, 'reg.example', 'other/x')).toEqual({ username: 'host', password: 'pw' });
    expect(await getCredentials(ctx, 'docker.io', 'library/busybox')).toEqual({
      username: 'hub',
      password: 'pw3',
    });
    expect(await getCredentials(ctx, 'unknown.example')).toBeUndefined();
  });

  it('falls back to the Docker config, credHelpers and credsStore executables', async () => {
    const path = process.env.PATH;
    process.env.PATH = `${join(tmp, 'bin')}:${path}`;
    try {
      const cfg = join(tmp, 'config.json');
      await writeFile(
        cfg,
        JSON.stringify({
          auths: { 'plain.example': { auth: b64('d:p') } },
          credHelpers: { 'helper.example:5000': 'rigtest', 'broken.example': 'rigtest' },
          credsStore: 'rigtest',
        }),
      );
      const ctx = { authFilePath: join(tmp, 'missing.json'), dockerConfigPath: cfg };
      expect(await getCredentials(ctx, 'plain.example')).toEqual({ username: 'd', password: 'p' });
      expect(await getCredentials(ctx, 'helper.example:5000')).toEqual({ username: 'hu', password: 'hs' });
      expect(await getCredentials(ctx, 'store.example')).toEqual({ identityToken: 'idtok' });
      expect(await getCredentials(ctx, 'nothing.example')).toBeUndefined();
      await expect(getCredentials(ctx, 'broken.example')).rejects.toMatchObject({
        code: 'ERR_CREDENTIAL_HELPER',
      });
    } finally {
      process.env.PATH = path;
    }
  });

  it('reports malformed auth files without quoting their content', async () => {
    const f = join(tmp, 'bad.json');
    await writeFile(f, '{"auths": {"x": {"auth": "c2VjcmV0LXZhbHVl"}');
    const err = await getCredentials({ authFilePath: f, dockerConfigPath: '' }, 'x').catch((e: Error) => e);
    expect((err as { code?: string }).code).toBe('ERR_CONFIG');
    expect(String((err as Error).message)).not.toContain('c2VjcmV0');
    expect((err as Error).cause).toBeUndefined();
  });

  it('explicit credentials win', async () => {
    expect(await getCredentials({ credentials: { username: 'a', password: 'b' } }, 'x')).toEqual({
      username: 'a',
      password: 'b',
    });
  });
});
