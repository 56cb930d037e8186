/**
 * Credentials for a registry, looked up the way Podman does (containers-auth.json(5)):
 *
 * 1. `SystemContext.credentials` (explicit, for this operation);
 * 2. the containers auth file: `SystemContext.authFilePath`, else `$REGISTRY_AUTH_FILE`, else
 *    `$XDG_RUNTIME_DIR/containers/auth.json`, else `~/.config/containers/auth.json`;
 * 3. the Docker config: `SystemContext.dockerConfigPath`, else `$DOCKER_CONFIG/config.json`, else
 *    `~/.docker/config.json`.
 *
 * In each file: `credHelpers[<host>]`, then `auths` (most specific `host/namespace/repo` key
 * first, then `host`; `https://` prefixes and `/v1/` suffixes are ignored), then `credsStore`.
 * Credential helpers run as `docker-credential-<name> get` with the server on stdin; their
 * output is capped, and their error text never contains the secret we did not know.
 * The returned object is never logged; `describeCredentials()` is the only printable view.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, CredentialHelperError } from '../errors.js';
import type { SystemContext } from '../types.js';

export type Credentials =
  | { username: string; password: string }
  | { identityToken: string; username?: string };

const AuthEntrySchema = z.object({
  auth: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  identitytoken: z.string().optional(),
});
const AuthFileSchema = z.object({
  auths: z.record(z.string(), AuthEntrySchema).optional(),
  credHelpers: z.record(z.string(), z.string()).optional(),
  credsStore: z.string().optional(),
});
type AuthFile = z.infer<typeof AuthFileSchema>;

const MAX_AUTH_FILE = 1024 * 1024;
const MAX_HELPER_OUTPUT = 1024 * 1024;

/** Paths searched, in order (for errors and docs). */
export function authFilePaths(ctx: SystemContext = {}): { containers: string[]; docker: string | undefined } {
  const containers: string[] = [];
  if (ctx.authFilePath) containers.push(ctx.authFilePath);
  else if (process.env.REGISTRY_AUTH_FILE) containers.push(process.env.REGISTRY_AUTH_FILE);
  else {
    if (process.env.XDG_RUNTIME_DIR)
      containers.push(join(process.env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
    containers.push(
      join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'containers', 'auth.json'),
    );
  }
  let docker: string | undefined;
  if (ctx.dockerConfigPath !== undefined) docker = ctx.dockerConfigPath || undefined;
  else if (process.env.DOCKER_CONFIG) docker = join(process.env.DOCKER_CONFIG, 'config.json');
  else docker = join(homedir(), '.docker', 'config.json');
  return { containers, docker };
}

async function readAuthFile(path: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    const buf = await readFile(path);
    if (buf.length > MAX_AUTH_FILE) throw new ConfigError(path, 'auth file too large');
    text = buf.toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // The cause is not chained: JSON.parse messages quote the file's content, i.e. secrets.
    throw new ConfigError(path, 'not valid JSON');
  }
  const r = AuthFileSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(path, 'unexpected structure');
  return r.data;
}

function normalizeKey(key: string): string {
  let k = key.replace(/^https?:\/\//, '');
  k = k.replace(/\/v[12]\/?$/, '').replace(/\/$/, '');
  if (k === 'index.docker.io' || k === 'registry-1.docker.io') k = 'docker.io';
  return k;
}

function decodeEntry(e: z.infer<typeof AuthEntrySchema>, where: string): Credentials | undefined {
  if (e.identitytoken) return { identityToken: e.identitytoken };
  if (e.auth) {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i <= 0) throw new ConfigError(where, 'an "auth" entry is not base64 of user:password');
    return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
  }
  if (e.username !== undefined && e.password !== undefined)
    return { username: e.username, password: e.password };
  return undefined;
}

/** Runs `docker-credential-<helper> get`; `undefined` when the helper has nothing for this server. */
export async function runCredentialHelper(
  helper: string,
  server: string,
  signal?: AbortSignal,
): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9_.-]+$/.test(helper))
    throw new CredentialHelperError(helper.slice(0, 50), 'invalid helper name');
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, ['get'], { stdio: ['pipe', 'pipe', 'pipe'], signal });
    let stdout = '';
    let stderrLen = 0;
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (stdout.length > MAX_HELPER_OUTPUT) child.kill('SIGKILL');
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderrLen < 4096) stderr += d;
      stderrLen += d.length;
    });
    child.on('error', (err) =>
      reject(
        new CredentialHelperError(helper, (err as NodeJS.ErrnoException).code ?? 'spawn failed', {
          cause: err,
        }),
      ),
    );
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else if (/credentials not found/i.test(stdout + stderr)) resolve('');
      else reject(new CredentialHelperError(helper, `exited with ${code}: ${stderr.trim().slice(0, 200)}`));
    });
    child.stdin.on('error', () => {});
    child.stdin.end(server);
  });
  if (!out.trim()) return undefined;
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = JSON.parse(out);
  } catch {
    throw new CredentialHelperError(helper, 'output is not JSON');
  }
  if (typeof parsed.Username !== 'string' || typeof parsed.Secret !== 'string') {
    throw new CredentialHelperError(helper, 'output lacks Username/Secret');
  }
  if (parsed.Username === '<token>') return { identityToken: parsed.Secret };
  return { username: parsed.Username, password: parsed.Secret };
}

async function fromFile(
  file: AuthFile,
  path: string,
  host: string,
  repo: string | undefined,
  signal?: AbortSignal,
) {
  const helper = file.credHelpers?.[host];
  if (helper) return runCredentialHelper(helper, host, signal);
  const entries = new Map<string, z.infer<typeof AuthEntrySchema>>();
  for (const [k, v] of Object.entries(file.auths ?? {})) entries.set(normalizeKey(k), v);
  if (repo) {
    const parts = repo.split('/');
    for (let n = parts.length; n > 0; n--) {
      const e = entries.get(`${host}/${parts.slice(0, n).join('/')}`);
      if (e) {
        const c = decodeEntry(e, path);
        if (c) return c;
      }
    }
  }
  const e = entries.get(host);
  if (e) {
    const c = decodeEntry(e, path);
    if (c) return c;
  }
  if (file.credsStore)
    return runCredentialHelper(
      file.credsStore,
      host === 'docker.io' ? 'https://index.docker.io/v1/' : host,
      signal,
    );
  return undefined;
}

/**
 * Credentials for `host` (`host[:port]`, `docker.io` for Docker Hub) and optionally the repository
 * path (for namespace-scoped entries); `undefined` when none are configured (anonymous access).
 */
export async function getCredentials(
  ctx: SystemContext,
  host: string,
  repo?: string,
  signal?: AbortSignal,
): Promise<Credentials | undefined> {
  if (ctx.credentials) return ctx.credentials;
  const paths = authFilePaths(ctx);
  for (const p of paths.containers) {
    const f = await readAuthFile(p);
    if (f) {
      const c = await fromFile(f, p, host, repo, signal);
      if (c) return c;
    }
  }
  if (paths.docker) {
    const f = await readAuthFile(paths.docker);
    if (f) return fromFile(f, paths.docker, host, repo, signal);
  }
  return undefined;
}

/** A printable description that reveals no secret. */
export function describeCredentials(c: Credentials | undefined): string {
  if (!c) return 'anonymous';
  return 'identityToken' in c ? 'identity token' : `user ${c.username}`;
}
