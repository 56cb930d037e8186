/**
 * Starts the real distribution registry (Debian `docker-registry`, v2.8) on 127.0.0.1 with an
 * ephemeral port and its storage in a rig temp dir. Options: TLS with a per-run CA, htpasswd basic
 * auth, or token auth backed by an in-process token server (token-server.ts).
 *
 * Lifecycle: startRegistry() resolves once GET /v2/ answers (200 or 401). stop() is idempotent:
 * it kills the process (SIGTERM, then SIGKILL), closes the token server and removes every file
 * the rig wrote. If the test process dies, setpriv's parent-death signal takes the registry down.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { makeServerPki, makeSigningPki } from './pki.js';
import { makeTempDir, removeTempDir } from './tmp.js';
import {
  type AccessEntry,
  type MintOptions,
  startTokenServer,
  type TokenRequestRecord,
  type TokenServer,
} from './token-server.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export type RegistryAuth = 'none' | 'basic' | 'token';

export interface RegistryOptions {
  /** Serve HTTPS with a certificate from a CA made for this registry. Default false. */
  tls?: boolean;
  /** Default 'none'. */
  auth?: RegistryAuth;
  /** Token auth: grant `pull` to anonymous clients. Default false. */
  anonymousPull?: boolean;
  /** Token auth: token lifetime in seconds. Default 300. */
  tokenTtlSeconds?: number;
  /** Allow DELETE of manifests and blobs. Default true. */
  deleteEnabled?: boolean;
  /** Aborting while starting stops what was started and rejects with the abort reason. */
  signal?: AbortSignal;
}

export interface RigRegistry {
  /** `https://127.0.0.1:<port>` or `http://127.0.0.1:<port>`, no trailing slash. */
  url: string;
  /** `127.0.0.1:<port>`: the registry part of an image reference. */
  host: string;
  port: number;
  tls: boolean;
  auth: RegistryAuth;
  /** PEM of the CA that signed the server certificate; undefined without TLS. */
  caPath: string | undefined;
  /** A certs.d-style dir: `<certsDir>/<host>/ca.crt`; undefined without TLS. */
  certsDir: string | undefined;
  /** Credentials accepted by basic and token auth (present but unused with auth 'none'). */
  username: string;
  password: string;
  /** Token auth only: the realm URL the registry sends clients to. */
  realm: string | undefined;
  /** Token auth only: the `service` value of the challenge. */
  service: string | undefined;
  /** Token auth only: every token request the token server answered. */
  tokenRequests: TokenRequestRecord[];
  /** Token auth only: signs a token directly (e.g. an expired or wrong-audience one). */
  mintToken(access: AccessEntry[], opts?: MintOptions): string;
  /** The registry's storage root (filesystem driver). */
  storageDir: string;
  /** What the registry printed on stderr so far (bounded), for failure messages. */
  logs(): string;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const SERVICE = 'libpod-ts-rig-registry';
const ISSUER = 'libpod-ts-rig-auth';

/** A port that was free a moment ago on 127.0.0.1 (the registry binds it by number). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

function registryConfig(o: {
  port: number;
  storageDir: string;
  tls?: { cert: string; key: string };
  htpasswd?: string;
  token?: { realm: string; bundle: string };
  deleteEnabled: boolean;
}): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${yamlString(o.storageDir)}`,
    '  delete:',
    `    enabled: ${o.deleteEnabled}`,
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${o.port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
  ];
  if (o.tls) {
    lines.push('  tls:', `    certificate: ${yamlString(o.tls.cert)}`, `    key: ${yamlString(o.tls.key)}`);
  }
  lines.push('health:', '  storagedriver:', '    enabled: false');
  if (o.htpasswd) {
    lines.push('auth:', '  htpasswd:', '    realm: libpod-ts-rig', `    path: ${yamlString(o.htpasswd)}`);
  } else if (o.token) {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${yamlString(o.token.realm)}`,
      `    service: ${SERVICE}`,
      `    issuer: ${ISSUER}`,
      `    rootcertbundle: ${yamlString(o.token.bundle)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** One GET of /v2/; resolves with the status, rejects on connection errors. */
function probeV2(url: string, ca: Buffer | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(`${url}/v2/`, { ca, timeout: 2000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function spawnRegistry(configPath: string, onLog: (s: string) => void): ChildProcess {
  // setpriv --pdeathsig: the registry dies with the test process even if stop() never runs.
  const [cmd, args] = existsSync('/usr/bin/setpriv')
    ? ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', REGISTRY_BIN, 'serve', configPath]]
    : [REGISTRY_BIN, ['serve', configPath]];
  const child = spawn(cmd as string, args as string[], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent' },
  });
  child.stdout?.setEncoding('utf8').on('data', onLog);
  child.stderr?.setEncoding('utf8').on('data', onLog);
  return child;
}

async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/** Starts a registry; see the module comment for the lifecycle. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<RigRegistry> {
  const tls = opts.tls ?? false;
  const auth = opts.auth ?? 'none';
  const dir = await makeTempDir('registry');
  let child: ChildProcess | undefined;
  let tokenServer: TokenServer | undefined;
  let log = '';
  const onLog = (s: string) => {
    log = (log + s).slice(-16_384);
  };
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      try {
        if (child) await killChild(child);
        await tokenServer?.close();
      } finally {
        await removeTempDir(dir);
      }
    })();
    return stopping;
  };

  try {
    const storageDir = join(dir, 'storage');
    const pkiDir = join(dir, 'pki');
    await mkdir(storageDir);
    await mkdir(pkiDir, { mode: 0o700 });
    const username = 'rig-user';
    const password = randomBytes(12).toString('base64url');

    const pki = tls ? await makeServerPki(pkiDir) : undefined;
    const ca = pki ? await readFile(pki.caPath) : undefined;

    let htpasswd: string | undefined;
    if (auth === 'basic') {
      htpasswd = join(pkiDir, 'htpasswd');
      const { stdout } = await execa('htpasswd', ['-Bbn', username, password]);
      await writeFile(htpasswd, `${stdout.trim()}\n`, { mode: 0o600 });
    }
    let bundle: string | undefined;
    if (auth === 'token') {
      const signer = await makeSigningPki(pkiDir);
      bundle = signer.certPath;
      tokenServer = await startTokenServer({
        service: SERVICE,
        issuer: ISSUER,
        username,
        password,
        signingCertPath: signer.certPath,
        signingKeyPath: signer.keyPath,
        ...(pki ? { tls: { certPath: pki.certPath, keyPath: pki.keyPath } } : {}),
        anonymousPull: opts.anonymousPull ?? false,
        ttlSeconds: opts.tokenTtlSeconds ?? 300,
      });
    }

    let port = 0;
    opts.signal?.throwIfAborted();
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      const configPath = join(dir, 'config.yml');
      await writeFile(
        configPath,
        registryConfig({
          port,
          storageDir,
          ...(pki ? { tls: { cert: pki.certPath, key: pki.keyPath } } : {}),
          ...(htpasswd ? { htpasswd } : {}),
          ...(tokenServer && bundle ? { token: { realm: tokenServer.realm, bundle } } : {}),
          deleteEnabled: opts.deleteEnabled ?? true,
        }),
      );
      log = '';
      const c = spawnRegistry(configPath, onLog);
      child = c;
      const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
      const deadline = Date.now() + 15_000;
      let up = false;
      while (Date.now() < deadline && c.exitCode === null && c.signalCode === null) {
        opts.signal?.throwIfAborted();
        try {
          const status = await probeV2(url, ca);
          if (status === 200 || status === 401) {
            up = true;
            break;
          }
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 40));
      }
      if (up) break;
      await killChild(c);
      // Another process took the port between freePort() and the bind: try a new one.
      if (attempt < 3 && /address already in use/i.test(log)) continue;
      throw new Error(`docker-registry did not answer on 127.0.0.1:${port}: ${log.trim() || 'no output'}`);
    }

    const host = `127.0.0.1:${port}`;
    let certsDir: string | undefined;
    if (pki) {
      certsDir = join(dir, 'certs.d');
      await mkdir(join(certsDir, host), { recursive: true });
      await copyFile(pki.caPath, join(certsDir, host, 'ca.crt'));
    }
    const ts = tokenServer;
    return {
      url: `${tls ? 'https' : 'http'}://${host}`,
      host,
      port,
      tls,
      auth,
      caPath: pki?.caPath,
      certsDir,
      username,
      password,
      realm: ts?.realm,
      service: ts ? SERVICE : undefined,
      tokenRequests: ts?.requests ?? [],
      mintToken(access, m) {
        if (!ts) throw new Error('mintToken: this registry does not use token auth');
        return ts.mint(access, m);
      },
      storageDir,
      logs: () => log,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
