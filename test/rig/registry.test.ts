import { readFile, stat } from 'node:fs/promises';
import https from 'node:https';
import http from 'node:http';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuiltImage,
  buildBusyboxImage,
  inspectWithSkopeo,
  makeTempDir,
  pullWithSkopeo,
  pushWithSkopeo,
  type RegistryOptions,
  type RigRegistry,
  removeTempDir,
  skopeo,
  skopeoRegistryArgs,
  startRegistry,
} from './index.js';

function get(url: string, opts: { ca?: Buffer; headers?: Record<string, string> } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
    (resolve, reject) => {
      const mod = url.startsWith('https:') ? https : http;
      const req = mod.get(url, { ca: opts.ca, headers: opts.headers, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
    },
  );
}

let work: string;
let image: BuiltImage;

beforeAll(async () => {
  work = await makeTempDir('registry-test');
  image = await buildBusyboxImage({
    dir: join(work, 'src'),
    tag: 'v1',
    layers: [{ kind: 'busybox' }, { kind: 'files', files: [{ path: '/etc/motd', content: 'rig\n' }] }],
    config: { cmd: ['cat', '/etc/motd'], labels: { 'org.example.rig': 'yes' } },
  });
});
afterAll(async () => {
  await removeTempDir(work);
});

const modes: Array<[string, RegistryOptions]> = [
  ['TLS + basic auth', { tls: true, auth: 'basic' }],
  ['TLS + token auth', { tls: true, auth: 'token' }],
  ['plain HTTP, no auth', {}],
];

describe.each(modes)('skopeo round trip through the rig registry (%s)', (_name, opts) => {
  let reg: RigRegistry;
  beforeAll(async () => {
    reg = await startRegistry(opts);
  });
  afterAll(async () => {
    await reg.stop();
  });

  it('pushes, inspects and copies the image back unchanged', async () => {
    const ref = await pushWithSkopeo(image.dir, 'v1', reg, { repo: 'rig/round-trip' });
    expect(ref).toBe(`${reg.host}/rig/round-trip:v1`);

    const info = await inspectWithSkopeo(ref, reg);
    expect(info.Digest).toBe(image.manifestDigest);
    expect(info.Labels).toEqual({ 'org.example.rig': 'yes' });
    expect(info.Layers).toEqual(image.layers.map((l) => l.digest));

    const back = join(work, `back-${reg.port}`);
    await pullWithSkopeo(ref, reg, back, 'copy');
    const index = JSON.parse(await readFile(join(back, 'index.json'), 'utf8'));
    expect(index.manifests[0].digest).toBe(image.manifestDigest);
    for (const l of image.layers) {
      const s = await stat(join(back, 'blobs', 'sha256', l.digest.slice('sha256:'.length)));
      expect(s.size).toBe(l.size);
    }
  });

  // Mode-specific checks are registered only where they apply (not reported as skips).
  if (opts.tls) {
    it('serves TLS that only the per-run CA verifies', async () => {
      await expect(get(`${reg.url}/v2/`)).rejects.toThrow(/self.signed|unable to verify|certificate/i);
      const ca = await readFile(reg.caPath!);
      expect([200, 401]).toContain((await get(`${reg.url}/v2/`, { ca })).status);
      expect(await readFile(join(reg.certsDir!, reg.host, 'ca.crt'))).toEqual(ca);
    });
  }

  if (opts.auth === 'basic' || opts.auth === 'token') {
    it('refuses anonymous and wrong credentials', async () => {
      const anon = await skopeo([
        'inspect',
        ...skopeoRegistryArgs({ ...reg, auth: 'none' }, ''),
        `docker://${reg.host}/rig/round-trip:v1`,
      ]).then(
        () => 'ok',
        (e: Error) => e.message,
      );
      expect(anon).toMatch(/unauthorized|authentication required|401/i);
      const wrong = await skopeo([
        'inspect',
        ...skopeoRegistryArgs({ ...reg, password: 'wrong' }, ''),
        `docker://${reg.host}/rig/round-trip:v1`,
      ]).then(
        () => 'ok',
        (e: Error) => e.message,
      );
      expect(wrong).toMatch(/unauthorized|authentication|incorrect|401/i);
    });
  }
});

describe('token auth is really verified by the registry', () => {
  let reg: RigRegistry;
  let ca: Buffer;
  beforeAll(async () => {
    reg = await startRegistry({ tls: true, auth: 'token' });
    ca = await readFile(reg.caPath!);
    await pushWithSkopeo(image.dir, 'v1', reg, { repo: 'rig/tok' });
  });
  afterAll(async () => {
    await reg.stop();
  });
  const manifestUrl = () => `${reg.url}/v2/rig/tok/manifests/v1`;
  const accept = { accept: 'application/vnd.oci.image.manifest.v1+json' };
  const pull = [{ type: 'repository', name: 'rig/tok', actions: ['pull'] }];

  it('challenges with realm, service and scope like Docker Hub', async () => {
    const res = await get(manifestUrl(), { ca, headers: accept });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(
      `Bearer realm="${reg.realm}",service="${reg.service}",scope="repository:rig/tok:pull"`,
    );
  });

  it('issues scoped tokens from the realm and records the request', async () => {
    const basic = Buffer.from(`${reg.username}:${reg.password}`).toString('base64');
    const res = await get(`${reg.realm}?service=${reg.service}&scope=repository:rig/tok:pull,push`, {
      ca,
      headers: { authorization: `Basic ${basic}` },
    });
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.token).toBe(body.access_token);
    const [h, c] = body.token
      .split('.')
      .slice(0, 2)
      .map((p: string) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    expect(h.alg).toBe('RS256');
    expect(h.x5c).toHaveLength(1);
    expect(c.access).toEqual([{ type: 'repository', name: 'rig/tok', actions: ['pull', 'push'] }]);
    expect(c.aud).toBe(reg.service);
    const last = reg.tokenRequests.at(-1)!;
    expect(last.user).toBe(reg.username);
    expect(last.scopes).toEqual(['repository:rig/tok:pull,push']);
    const ok = await get(manifestUrl(), {
      ca,
      headers: { ...accept, authorization: `Bearer ${body.token}` },
    });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).config.digest).toBe(image.configDigest);
  });

  it('rejects forged, expired, wrong-audience and out-of-scope tokens', async () => {
    const status = async (token: string) =>
      (await get(manifestUrl(), { ca, headers: { ...accept, authorization: `Bearer ${token}` } })).status;
    const good = reg.mintToken(pull);
    expect(await status(good)).toBe(200);
    const [h, c, sig] = good.split('.') as [string, string, string];
    const flipped = Buffer.from(sig, 'base64url');
    flipped[10]! ^= 0xff;
    expect(await status(`${h}.${c}.${flipped.toString('base64url')}`)).toBe(401);
    const claims = JSON.parse(Buffer.from(c, 'base64url').toString());
    claims.access[0].name = 'rig/other';
    expect(await status(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`)).toBe(
      401,
    );
    expect(await status(reg.mintToken(pull, { expiresIn: -600 }))).toBe(401);
    expect(await status(reg.mintToken(pull, { audience: 'someone-else' }))).toBe(401);
    expect(await status(reg.mintToken(pull, { issuer: 'someone-else' }))).toBe(401);
    expect(await status(reg.mintToken([{ type: 'repository', name: 'rig/other', actions: ['pull'] }]))).toBe(
      401,
    );
  });

  it('grants anonymous clients nothing unless anonymousPull is set', async () => {
    const res = await get(`${reg.realm}?service=${reg.service}&scope=repository:rig/tok:pull`, { ca });
    const token = JSON.parse(res.body).token as string;
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    expect(claims.access).toEqual([{ type: 'repository', name: 'rig/tok', actions: [] }]);
    expect(
      (await get(manifestUrl(), { ca, headers: { ...accept, authorization: `Bearer ${token}` } })).status,
    ).toBe(401);
  });
});

describe('registry lifecycle', () => {
  it('stop() is idempotent and removes the process and its files', async () => {
    const reg = await startRegistry({ tls: true, auth: 'basic' });
    const root = join(reg.storageDir, '..');
    const { stdout } = await execa('pgrep', ['-f', join(root, 'config.yml')]);
    expect(stdout.trim()).not.toBe('');
    await Promise.all([reg.stop(), reg.stop()]);
    await reg.stop();
    await expect(stat(root)).rejects.toThrow(/ENOENT/);
    const after = await execa('pgrep', ['-f', join(root, 'config.yml')], { reject: false });
    expect(after.stdout.trim()).toBe('');
    await expect(get(`${reg.url}/v2/`, { ca: undefined })).rejects.toThrow();
  });

  it('an aborted start leaves nothing behind', async () => {
    await expect(startRegistry({ tls: true, auth: 'token', signal: AbortSignal.abort() })).rejects.toThrow(
      /abort/i,
    );
    const ac = new AbortController();
    const starting = startRegistry({ tls: true, auth: 'basic', signal: ac.signal });
    setTimeout(() => ac.abort(), 30);
    await starting.then(
      (reg) => reg.stop(),
      (err: Error) => expect(err.name).toBe('AbortError'),
    );
  });

  it('runs several registries at once on distinct ports', async () => {
    const [a, b] = await Promise.all([startRegistry(), startRegistry({ auth: 'basic' })]);
    try {
      expect(a.port).not.toBe(b.port);
      expect((await get(`${a.url}/v2/`)).status).toBe(200);
      expect((await get(`${b.url}/v2/`)).status).toBe(401);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
