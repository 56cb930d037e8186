/**
 * Hostile registries: node:http servers on 127.0.0.x that we control, each breaking one rule
 * (SECURITY.md "Registries"). Every case must end in a typed error and leave the destination
 * without partial content, and credentials must never reach another host or an error message.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { copy } from '../copy/copy.js';
import { inspectImage } from '../copy/inspect.js';
import { parseImageName } from '../transports/defaults.js';
import type { SystemContext } from '../types.js';
import { RegistryClient } from './client.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const layer = randomBytes(200_000);
const config = Buffer.from(
  JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer)] } }),
);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: sha(config),
      size: config.length,
    },
    // An uncompressed layer keeps the fixture small; the digest checks are the same.
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }],
  }),
);
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
const servers: Server[] = [];
let tmp: string;

async function serve(
  handler: Handler,
  host = '127.0.0.1',
): Promise<{ host: string; seen: IncomingMessage[] }> {
  const seen: IncomingMessage[] = [];
  const s = createServer((req, res) => {
    seen.push(req);
    Promise.resolve(handler(req, res)).catch(() => res.destroy());
  });
  s.listen(0, host);
  await once(s, 'listening');
  servers.push(s);
  return { host: `${host}:${(s.address() as AddressInfo).port}`, seen };
}

/** A well-behaved registry for `fixture` with overridable routes. */
function registry(over: Partial<Record<'manifest' | 'config' | 'layer' | 'v2', Handler>> = {}): Handler {
  return (req, res) => {
    const u = req.url ?? '';
    if (u === '/v2/') return over.v2 ? over.v2(req, res) : void res.end('{}');
    if (u.startsWith('/v2/t/img/manifests/')) {
      if (over.manifest) return over.manifest(req, res);
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha(manifest) });
      return void res.end(req.method === 'HEAD' ? undefined : manifest);
    }
    if (u === `/v2/t/img/blobs/${sha(config)}`) {
      if (over.config) return over.config(req, res);
      return void res.end(config);
    }
    if (u === `/v2/t/img/blobs/${sha(layer)}`) {
      if (over.layer) return over.layer(req, res);
      res.writeHead(200, { 'content-length': String(layer.length) });
      return void res.end(layer);
    }
    res.writeHead(404);
    res.end();
  };
}

function ctx(host: string, extra: SystemContext = {}): SystemContext {
  return {
    insecureRegistries: [host],
    registriesConfPath: join(tmp, 'none.conf'),
    authFilePath: join(tmp, 'none.json'),
    dockerConfigPath: '',
    retries: 1,
    idleTimeoutMs: 2000,
    ...extra,
  };
}

async function expectNothingWritten(dir: string): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  expect(entries).not.toContain('index.json');
  const blobs = await readdir(join(dir, 'blobs', 'sha256')).catch(() => [] as string[]);
  expect(blobs.filter((b) => b === sha(layer).slice(7) || b.startsWith('.'))).toEqual([]);
}

beforeAll(async () => {
  tmp = await makeTempDir('image-hostile');
});
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
});
afterAll(async () => {
  await removeTempDir(tmp);
});

describe('hostile registries', () => {
  it('control: the well-behaved fixture copies', async () => {
    const { host } = await serve(registry());
    const r = await copy(parseImageName(`docker://${host}/t/img:1`), parseImageName(`oci:${tmp}/ok:1`), {
      ctx: ctx(host),
    });
    expect(r.manifestDigest).toBe(sha(manifest));
  });

  it('keeps connections alive: a copy does not open one connection per request', async () => {
    const { host, seen } = await serve(registry());
    const server = servers.at(-1)!;
    let connections = 0;
    server.on('connection', () => connections++);
    await copy(parseImageName(`docker://${host}/t/img:1`), parseImageName(`oci:${tmp}/keepalive:1`), {
      ctx: ctx(host),
    });
    // ping, manifest, config and layer: requests in sequence share a socket.
    expect(seen.length).toBeGreaterThanOrEqual(4);
    expect(connections).toBeLessThan(seen.length);
  });

  it('a registry that never answers: ERR_IDLE_TIMEOUT, not a hang', async () => {
    const { host } = await serve(registry({ manifest: () => {} }));
    const t0 = Date.now();
    await expect(
      inspectImage(parseImageName(`docker://${host}/t/img:1`), {
        ctx: ctx(host, { idleTimeoutMs: 300, retries: 0 }),
      }),
    ).rejects.toMatchObject({ code: 'ERR_IDLE_TIMEOUT' });
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('digest mismatch in a blob: typed error, nothing visible', async () => {
    const evil = Buffer.from(layer);
    evil[1000] = (evil[1000]! + 1) % 256;
    const { host } = await serve(registry({ layer: (_q, res) => void res.end(evil) }));
    const dest = join(tmp, 'mismatch');
    await expect(
      copy(parseImageName(`docker://${host}/t/img:1`), parseImageName(`oci:${dest}:1`), { ctx: ctx(host) }),
    ).rejects.toMatchObject({ code: 'ERR_DIGEST_MISMATCH' });
    await expectNothingWritten(dest);
  });

  it('digest mismatch in a manifest (Docker-Content-Digest and by-digest pulls)', async () => {
    const other = `sha256:${'1'.repeat(64)}`;
    const { host } = await serve(
      registry({
        manifest: (_q, res) => {
          res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': other });
          res.end(manifest);
        },
      }),
    );
    await expect(
      inspectImage(parseImageName(`docker://${host}/t/img:1`), { ctx: ctx(host) }),
    ).rejects.toMatchObject({
      code: 'ERR_DIGEST_MISMATCH',
    });
    await expect(
      inspectImage(parseImageName(`docker://${host}/t/img@${other}`), { ctx: ctx(host) }),
    ).rejects.toMatchObject({
      code: 'ERR_DIGEST_MISMATCH',
    });
  });

  it('truncated blob: typed error after resume attempts, nothing visible', async () => {
    const { host } = await serve(
      registry({
        layer: (_q, res) => {
          res.writeHead(200, { 'content-length': String(layer.length) });
          res.write(layer.subarray(0, 50_000));
          setTimeout(() => res.destroy(), 20);
        },
      }),
    );
    const dest = join(tmp, 'truncated');
    const err = await copy(parseImageName(`docker://${host}/t/img:1`), parseImageName(`oci:${dest}:1`), {
      ctx: ctx(host),
    }).catch((e) => e);
    expect(['ERR_NETWORK', 'ERR_SIZE_MISMATCH']).toContain(err.code);
    await expectNothingWritten(dest);
  });

  it('a blob shorter than its descriptor (clean end) is a size mismatch', async () => {
    const { host } = await serve(registry({ layer: (_q, res) => void res.end(layer.subarray(0, 1000)) }));
    await expect(
      copy(parseImageName(`docker://${host}/t/img:1`), parseImageName(`oci:${tmp}/short:1`), {
        ctx: ctx(host),
      }),
    ).rejects.toMatchObject({ code: 'ERR_SIZE_MISMATCH' });
  });

  it('resumes an interrupted blob with Range', async () => {
    let first = true;
    const ranges: string[] = [];
    const { host } = await serve(
      registry({
        layer: (req, res) => {
          if (req.headers.range) ranges.push(req.headers.range);
          if (first) {
            first = false;
            res.writeHead(200, { 'content-length': String(layer.length) });
            res.write(layer.subarray(0, 70_000));
            setTimeout(() => res.destroy(), 50);
            return;
          }
          const m = /bytes=(\d+)-/.exec(req.headers.range ?? '');
          const start = m ? Number(m[1]) : 0;
          res.writeHead(m ? 206 : 200, {
            'content-length': String(layer.length - start),
            ...(m ? { 'content-range': `bytes ${start}-${layer.length - 1}/${layer.length}` } : {}),
          });
          res.end(layer.subarray(start));
        },
      }),
    );
    const r = await copy(parseImageName(`docker://${host}/t/img:1`), parseImageName(`oci:${tmp}/resumed:1`), {
      ctx: ctx(host),
    });
    expect(r.manifestDigest).toBe(sha(manifest));
    expect(ranges.length).toBe(1);
    expect(ranges[0]).toMatch(/^bytes=\d+-$/);
  });

  it('slow blob past the idle timeout: ERR_IDLE_TIMEOUT', async () => {
    const { host } = await serve(
      registry({
        layer: (_q, res) => {
          res.writeHead(200, { 'content-length': String(layer.length) });
          res.write(layer.subarray(0, 1000));
          // …and then nothing.
        },
      }),
    );
    const dest = join(tmp, 'slow');
    const t0 = Date.now();
    await expect(
      copy(parseImageName(`docker://${host}/t/img:1`), parseImageName(`oci:${dest}:1`), {
        ctx: ctx(host, { idleTimeoutMs: 300, retries: 0 }),
      }),
    ).rejects.toMatchObject({ code: 'ERR_IDLE_TIMEOUT' });
    expect(Date.now() - t0).toBeLessThan(5000);
    await expectNothingWritten(dest);
  });

  it('oversized manifest: ERR_TOO_LARGE (with and without Content-Length)', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 0x20);
    for (const withLength of [true, false]) {
      const { host } = await serve(
        registry({
          manifest: (_q, res) => {
            res.writeHead(200, {
              'content-type': OCI_MANIFEST,
              ...(withLength ? { 'content-length': String(big.length) } : {}),
            });
            res.end(big);
          },
        }),
      );
      await expect(
        inspectImage(parseImageName(`docker://${host}/t/img:1`), { ctx: ctx(host) }),
      ).rejects.toMatchObject({
        code: 'ERR_TOO_LARGE',
      });
    }
  });

  it('media type confusion (CVE-2021-41190) and schema 1 are refused', async () => {
    const confused = Buffer.from(JSON.stringify({ ...JSON.parse(manifest.toString()), manifests: [] }));
    const asIndex = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [],
      }),
    );
    const schema1 = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 't/img', tag: '1', fsLayers: [] }));
    const cases: [Buffer, string, string][] = [
      [confused, OCI_MANIFEST, 'ERR_MEDIA_TYPE'],
      [asIndex, OCI_MANIFEST, 'ERR_MEDIA_TYPE'],
      [manifest, 'application/vnd.oci.image.index.v1+json', 'ERR_MEDIA_TYPE'],
      [schema1, 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'ERR_SCHEMA1_UNSUPPORTED'],
      [Buffer.from('{"schemaVersion":2,'), OCI_MANIFEST, 'ERR_INVALID_MANIFEST'],
    ];
    for (const [body, type, code] of cases) {
      const { host } = await serve(
        registry({
          manifest: (_q, res) => {
            res.writeHead(200, { 'content-type': type });
            res.end(body);
          },
        }),
      );
      await expect(
        inspectImage(parseImageName(`docker://${host}/t/img:1`), { ctx: ctx(host) }),
      ).rejects.toMatchObject({ code });
    }
  });

  it('malformed WWW-Authenticate: ERR_AUTH_CHALLENGE', async () => {
    const { host } = await serve(
      registry({
        v2: (_q, res) => {
          res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://127.0.0.1:1/token' });
          res.end();
        },
      }),
    );
    await expect(
      inspectImage(parseImageName(`docker://${host}/t/img:1`), { ctx: ctx(host) }),
    ).rejects.toMatchObject({
      code: 'ERR_AUTH_CHALLENGE',
    });
  });

  it('an oversized token answer: ERR_TOO_LARGE', async () => {
    const realm = await serve((_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: 'x'.repeat(2 * 1024 * 1024) }));
    });
    const { host } = await serve(
      registry({
        v2: (_q, res) => {
          res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${realm.host}/token",service="s"` });
          res.end();
        },
      }),
    );
    await expect(
      inspectImage(parseImageName(`docker://${host}/t/img:1`), { ctx: ctx(host) }),
    ).rejects.toMatchObject({
      code: 'ERR_TOO_LARGE',
    });
  });

  for (const otherHost of ['127.0.0.2', 'localhost']) {
    it(`a redirect to another host (${otherHost}) carries no credentials`, async () => {
      const secret = 'hunter2-secret';
      const other = await serve(
        (_q, res) => {
          res.writeHead(200, { 'content-length': String(layer.length) });
          res.end(layer);
        },
        otherHost === 'localhost' ? '127.0.0.1' : otherHost,
      );
      const otherPort = other.host.split(':')[1];
      const { host, seen } = await serve(
        registry({
          v2: (req, res) => {
            if (!req.headers.authorization) {
              res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' });
              return void res.end();
            }
            res.end('{}');
          },
          layer: (_q, res) => {
            res.writeHead(307, { location: `http://${otherHost}:${otherPort}/storage/blob?sig=abc` });
            res.end();
          },
        }),
      );
      const r = await copy(
        parseImageName(`docker://${host}/t/img:1`),
        parseImageName(`oci:${tmp}/redir-${otherHost}:1`),
        {
          ctx: ctx(host, { credentials: { username: 'u', password: secret } }),
        },
      );
      expect(r.manifestDigest).toBe(sha(manifest));
      expect(seen.some((q) => q.headers.authorization?.startsWith('Basic '))).toBe(true);
      expect(other.seen.length).toBeGreaterThan(0);
      for (const q of other.seen) expect(q.headers.authorization).toBeUndefined();
    });
  }

  it('credentials never appear in errors', async () => {
    const secret = 'p4ss-w0rd-never-print';
    const { host } = await serve(
      registry({
        v2: (_q, res) => {
          res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' });
          res.end();
        },
        manifest: (_q, res) => {
          res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' });
          res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'no' }] }));
        },
      }),
    );
    const err = await inspectImage(parseImageName(`docker://${host}/t/img:1`), {
      ctx: ctx(host, { credentials: { username: 'user', password: secret } }),
    }).catch((e: Error) => e);
    expect((err as { code?: string }).code).toBe('ERR_UNAUTHORIZED');
    const text = `${(err as Error).message} ${(err as Error).stack} ${JSON.stringify(err)}`;
    expect(text).not.toContain(secret);
    expect(text).not.toContain(Buffer.from(`user:${secret}`).toString('base64'));
  });

  it('retries 5xx with backoff, then succeeds', async () => {
    let n = 0;
    const { host } = await serve(
      registry({
        manifest: (_q, res) => {
          if (n++ < 2) {
            res.writeHead(503);
            return void res.end();
          }
          res.writeHead(200, { 'content-type': OCI_MANIFEST });
          res.end(manifest);
        },
      }),
    );
    const info = await inspectImage(parseImageName(`docker://${host}/t/img:1`), {
      ctx: ctx(host, { retries: 3 }),
    });
    expect(info.digest).toBe(sha(manifest));
  });

  it('plain HTTP only for insecure registries', async () => {
    const { host } = await serve(registry());
    const client = new RegistryClient({
      registry: host,
      ctx: { ...ctx(host), insecureRegistries: [], retries: 0 },
    });
    try {
      await expect(client.ping()).rejects.toMatchObject({ code: 'ERR_NETWORK' });
    } finally {
      await client.close();
    }
  });

  it('pulls through a registries.conf mirror, falling back to the primary when the mirror fails', async () => {
    const mirror = await serve(registry());
    const primary = await serve(registry());
    const conf = join(tmp, 'mirrors.conf');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(
      conf,
      `[[registry]]\nprefix = "example.test/t"\nlocation = "${primary.host}/t"\ninsecure = true\n\n[[registry.mirror]]\nlocation = "${mirror.host}/t"\ninsecure = true\n`,
    );
    const c = { ...ctx(primary.host), registriesConfPath: conf, insecureRegistries: [] };
    const info = await inspectImage(parseImageName('docker://example.test/t/img:1'), { ctx: c });
    expect(info.digest).toBe(sha(manifest));
    expect(mirror.seen.some((q) => q.url?.startsWith('/v2/t/img/manifests/'))).toBe(true);
    expect(primary.seen.length).toBe(0);
    for (const s of servers.splice(0, 1)) {
      s.closeAllConnections();
      s.close();
    }
    const info2 = await inspectImage(parseImageName('docker://example.test/t/img:1'), {
      ctx: { ...c, retries: 0 },
    });
    expect(info2.digest).toBe(sha(manifest));
    expect(primary.seen.length).toBeGreaterThan(0);
  });

  it('paginates tags through Link headers', async () => {
    const { host } = await serve((req, res) => {
      if (req.url === '/v2/') return void res.end('{}');
      if (req.url === '/v2/t/img/tags/list?n=2') {
        res.writeHead(200, { link: '</v2/t/img/tags/list?n=2&last=b>; rel="next"' });
        return void res.end(JSON.stringify({ name: 't/img', tags: ['a', 'b'] }));
      }
      if (req.url === '/v2/t/img/tags/list?n=2&last=b')
        return void res.end(JSON.stringify({ name: 't/img', tags: ['c'] }));
      res.writeHead(404);
      res.end();
    });
    const client = new RegistryClient({ registry: host, ctx: ctx(host) });
    try {
      expect(await client.listTags('t/img', { pageSize: 2 })).toEqual(['a', 'b', 'c']);
    } finally {
      await client.close();
    }
  });

  it('aborts a copy through its AbortSignal', async () => {
    const { host } = await serve(
      registry({
        layer: (_q, res) => {
          res.writeHead(200, { 'content-length': String(layer.length) });
          res.write(layer.subarray(0, 1000));
        },
      }),
    );
    const ac = new AbortController();
    const p = copy(parseImageName(`docker://${host}/t/img:1`), parseImageName(`oci:${tmp}/aborted:1`), {
      ctx: ctx(host, { idleTimeoutMs: 10_000 }),
      signal: ac.signal,
    });
    setTimeout(() => ac.abort(), 200);
    const err = await p.catch((e) => e);
    expect(err.code).toBe('ERR_ABORTED');
    await expectNothingWritten(join(tmp, 'aborted'));
  });
});
