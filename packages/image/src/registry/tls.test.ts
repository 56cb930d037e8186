/**
 * TLS against a node:https server we control: certs.d CA and client certificate (mTLS), refusal
 * of an unknown CA, and an https -> http redirect that must not be followed.
 */
import { once } from 'node:events';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from './client.js';

let tmp: string;
let server: Server;
let plain: HttpServer;
let host: string;
let plainHost: string;
let certsDir: string;
const clientSubjects: string[] = [];
const plainAuth: (string | undefined)[] = [];
const registryAuth: (string | undefined)[] = [];

async function openssl(args: string[]) {
  await execa('openssl', args, { cwd: tmp });
}

beforeAll(async () => {
  tmp = await makeTempDir('image-tls');
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=test-ca',
  ]);
  await openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'srv.key',
    '-out',
    'srv.csr',
    '-subj',
    '/CN=127.0.0.1',
  ]);
  await execa('sh', ['-c', 'printf "subjectAltName=IP:127.0.0.1\\n" > san.ext'], { cwd: tmp });
  await openssl([
    'x509',
    '-req',
    '-in',
    'srv.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'srv.crt',
    '-days',
    '2',
    '-extfile',
    'san.ext',
  ]);
  await openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'client.key',
    '-out',
    'client.csr',
    '-subj',
    '/CN=libpod-client',
  ]);
  await openssl([
    'x509',
    '-req',
    '-in',
    'client.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'client.crt',
    '-days',
    '2',
  ]);

  plain = createHttpServer((req, res) => {
    plainAuth.push(req.headers.authorization);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ token: 'anon-token' }));
  });
  plain.listen(0, '127.0.0.1');
  await once(plain, 'listening');
  plainHost = `127.0.0.1:${(plain.address() as AddressInfo).port}`;

  server = createServer(
    {
      key: await readFile(join(tmp, 'srv.key')),
      cert: await readFile(join(tmp, 'srv.crt')),
      ca: await readFile(join(tmp, 'ca.crt')),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      clientSubjects.push(String(peer.subject?.CN ?? ''));
      if (req.url?.startsWith('/v2/bearer/')) {
        registryAuth.push(req.headers.authorization);
        if (req.headers.authorization !== 'Bearer anon-token') {
          res.writeHead(401, {
            'www-authenticate': `Bearer realm="http://${plainHost}/token",service="svc"`,
          });
          return void res.end();
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ name: 'bearer/x', tags: ['a'] }));
      }
      if (req.url?.startsWith('/v2/ref/referrers/')) {
        res.writeHead(200, {
          'content-type': 'application/vnd.oci.image.index.v1+json',
          'oci-filters-applied': 'artifactType',
        });
        return void res.end(
          JSON.stringify({ schemaVersion: 2, manifests: [{ artifactType: 'application/x.sig' }] }),
        );
      }
      if (req.url === '/v2/') return void res.end('{}');
      if (req.url?.startsWith('/v2/r/blobs/')) {
        res.writeHead(302, { location: `http://${plainHost}/blob` });
        return void res.end();
      }
      res.writeHead(404);
      res.end();
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  certsDir = join(tmp, 'certs.d');
  await mkdir(join(certsDir, host), { recursive: true });
  await execa('cp', [join(tmp, 'ca.crt'), join(certsDir, host, 'ca.crt')]);
  await execa('cp', [join(tmp, 'client.crt'), join(certsDir, host, 'client.cert')]);
  await execa('cp', [join(tmp, 'client.key'), join(certsDir, host, 'client.key')]);
});

afterAll(async () => {
  server?.closeAllConnections();
  server?.close();
  plain?.closeAllConnections();
  plain?.close();
  await removeTempDir(tmp);
});

const base = {
  registriesConfPath: '/nonexistent',
  authFilePath: '/nonexistent',
  dockerConfigPath: '',
  retries: 0,
};

describe('registry TLS', () => {
  it('uses the certs.d CA and client certificate', async () => {
    const c = new RegistryClient({ registry: host, ctx: { ...base, certsDirs: [certsDir] } });
    try {
      expect(await c.ping()).toEqual({ scheme: 'https', auth: 'none' });
      expect(clientSubjects).toContain('libpod-client');
    } finally {
      await c.close();
    }
  });

  it('refuses a server whose CA is unknown', async () => {
    const c = new RegistryClient({ registry: host, ctx: { ...base, certsDirs: [join(tmp, 'none')] } });
    try {
      await expect(c.ping()).rejects.toMatchObject({ code: 'ERR_NETWORK' });
    } finally {
      await c.close();
    }
  });

  it('never sends credentials to a token realm on another scheme (https registry, http realm)', async () => {
    const c = new RegistryClient({
      registry: host,
      ctx: { ...base, certsDirs: [certsDir], credentials: { username: 'u', password: 'secret-pw' } },
    });
    try {
      expect(await c.listTags('bearer/x')).toEqual(['a']);
      expect(plainAuth.length).toBeGreaterThan(0);
      for (const a of plainAuth) expect(a).toBeUndefined();
      expect(registryAuth).toContain('Bearer anon-token');
    } finally {
      await c.close();
    }
  });

  it('uses the referrers API when the registry has it', async () => {
    const c = new RegistryClient({ registry: host, ctx: { ...base, certsDirs: [certsDir] } });
    try {
      const r = await c.referrers('ref', `sha256:${'b'.repeat(64)}`, { artifactType: 'application/x.sig' });
      expect(r).toEqual({ manifests: [{ artifactType: 'application/x.sig' }], filtersApplied: true });
    } finally {
      await c.close();
    }
  });

  it('refuses an https -> http redirect', async () => {
    const c = new RegistryClient({ registry: host, ctx: { ...base, certsDirs: [certsDir] } });
    try {
      await expect(c.getBlob('r', `sha256:${'a'.repeat(64)}`)).rejects.toMatchObject({
        code: 'ERR_REDIRECT',
      });
    } finally {
      await c.close();
    }
  });
});
