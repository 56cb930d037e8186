/**
 * A client for one registry (distribution-spec v2) over undici.
 *
 * Lifecycle: `new RegistryClient({ registry, ctx })` does no I/O; the first call pings `/v2/`
 * (choosing https, or http for insecure registries only) and learns the auth challenge.
 * `close()` closes the client's own undici Agents (no global dispatcher is touched).
 *
 * Auth: Bearer tokens per scope set (cached until expiry), obtained from the challenge's realm
 * with Basic credentials or an identity token; Basic auth when the registry asks for it.
 * Credentials (and tokens) go only to the registry's own origin and to the token realm, and to the
 * realm only over the registry's scheme; a redirect to any other origin drops them, and an
 * https -> http redirect is refused. Errors and events carry URLs without query strings and never
 * an Authorization value.
 *
 * Robustness: idempotent requests are retried with exponential backoff on 5xx/429 and connection
 * resets; blob reads resume with `Range` after a reset; headers and body chunks must arrive within
 * the idle timeout; manifests are capped at 4 MiB, token answers at 1 MiB, error bodies at 64 KiB.
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { Agent, type Dispatcher, request } from 'undici';
import { readCapped, VerifyingStream, verifyBytes } from '../digest/digest.js';
import {
  AbortedError,
  AuthChallengeError,
  IdleTimeoutError,
  ImageError,
  NetworkError,
  NotFoundError,
  RedirectError,
  RegistryError,
  SizeMismatchError,
  TooLargeError,
  UnauthorizedError,
} from '../errors.js';
import { MAX_MANIFEST_SIZE } from '../manifest/parse.js';
import { SUPPORTED_MANIFEST_MEDIA_TYPES } from '../manifest/media-types.js';
import type { SystemContext } from '../types.js';
import { type Credentials, getCredentials } from './credentials.js';
import { loadTlsMaterial } from './tls.js';
import { type Challenge, parseWwwAuthenticate } from './www-authenticate.js';

export const MAX_TOKEN_SIZE = 1024 * 1024;
const MAX_ERROR_BODY = 64 * 1024;
const MAX_REDIRECTS = 10;
const DEFAULT_IDLE_MS = 30_000;
const DEFAULT_RETRIES = 3;
const DEFAULT_USER_AGENT = 'libpod-ts/0.1';

export interface RegistryClientOptions {
  /** `host[:port]` as written in references (`docker.io` is Docker Hub). */
  registry: string;
  ctx?: SystemContext;
  /** Plain HTTP / unverified TLS allowed (registries.conf `insecure = true`). */
  insecure?: boolean;
}

interface Req {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  /** Path starting with /v2/, or an absolute URL (upload locations). */
  path: string;
  scopes: string[];
  object: string;
  headers?: Record<string, string>;
  body?: Buffer | Readable | undefined;
  /** Safe to resend (no stream body, idempotent semantics). */
  retry?: boolean;
  follow?: boolean;
  signal?: AbortSignal | undefined;
}

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: URL;
}

type AuthState = { kind: 'none' } | { kind: 'basic' } | { kind: 'bearer'; realm: string; service?: string };

const RETRYABLE_NET = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Destroys a response body we will not read; undici then emits an abort error nobody must see. */
function discard(body: Readable): void {
  body.on('error', () => {});
  body.destroy();
}

function header(h: Res['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** URL for messages: origin + path, never userinfo or query (may hold signatures/tokens). */
function safeUrl(u: URL): string {
  return `${u.protocol}//${u.host}${u.pathname}`;
}

const secureContexts = new Map<string, SecureContext>();

/**
 * SecureContexts are cached by their material: building one parses every CA certificate
 * (~50 ms for the system bundle), and passing `ca` per connection would do it per handshake.
 */
function secureContextFor(ca: string[], cert?: string, key?: string): SecureContext {
  const id = createHash('sha256')
    .update(ca.join('\0'))
    .update(`\0${cert ?? ''}\0${key ?? ''}`)
    .digest('hex');
  let c = secureContexts.get(id);
  if (!c) {
    c = createSecureContext({ ca, cert, key });
    if (secureContexts.size >= 16) secureContexts.delete(secureContexts.keys().next().value!);
    secureContexts.set(id, c);
  }
  return c;
}

export function pullScope(repo: string): string {
  return `repository:${repo}:pull`;
}
export function pushScope(repo: string): string {
  return `repository:${repo}:pull,push`;
}

export class RegistryClient {
  readonly registry: string;
  private readonly ctx: SystemContext;
  private readonly insecure: boolean;
  private readonly idleMs: number;
  private readonly retries: number;
  private agent: Agent | undefined;
  private foreignAgent: Agent | undefined;
  private foreignCA: string[] = [];
  private base: URL | undefined;
  private initP: Promise<void> | undefined;
  private auth: AuthState = { kind: 'none' };
  private readonly tokens = new Map<string, { token: string; expires: number }>();
  private readonly pendingTokens = new Map<string, Promise<string>>();
  private readonly creds = new Map<string, Promise<Credentials | undefined>>();
  private closed = false;

  constructor(opts: RegistryClientOptions) {
    this.registry = opts.registry;
    this.ctx = opts.ctx ?? {};
    this.insecure = opts.insecure ?? (this.ctx.insecureRegistries ?? []).includes(opts.registry);
    this.idleMs = this.ctx.idleTimeoutMs ?? DEFAULT_IDLE_MS;
    this.retries = this.ctx.retries ?? DEFAULT_RETRIES;
  }

  /** The host:port actually contacted (Docker Hub's API lives on registry-1.docker.io). */
  get endpoint(): string {
    return this.registry === 'docker.io' ? 'registry-1.docker.io' : this.registry;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.agent?.close(), this.foreignAgent?.close()]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---------- setup, ping ----------

  private init(signal?: AbortSignal): Promise<void> {
    this.initP ??= this.doInit(signal).catch((err) => {
      this.initP = undefined;
      throw err;
    });
    return this.initP;
  }

  private async doInit(signal?: AbortSignal): Promise<void> {
    if (this.closed) throw new ImageError('ERR_CLOSED', `registry client for ${this.registry} is closed`);
    const tls = await loadTlsMaterial(this.ctx, this.endpoint);
    const common = { headersTimeout: this.idleMs, bodyTimeout: this.idleMs, connections: 16 };
    // One SecureContext per agent: passing `ca` per connection would re-parse every CA
    // certificate on each TLS handshake (hundreds of milliseconds per image pull).
    this.agent ??= new Agent({
      ...common,
      connect: {
        secureContext: secureContextFor(tls.ca, tls.cert, tls.key),
        rejectUnauthorized: !this.insecure,
      },
    });
    this.foreignCA = tls.ca;
    const schemes = this.insecure ? ['https:', 'http:'] : ['https:'];
    let lastErr: unknown;
    for (const scheme of schemes) {
      const base = new URL(`${scheme}//${this.endpoint}/`);
      try {
        const res = await this.rawOnce(new URL('/v2/', base), 'GET', {}, undefined, signal, this.agent);
        await res.body.dump();
        this.base = base;
        if (res.status === 401) this.auth = this.authFromChallenge(res, `${this.registry} /v2/`);
        else if (res.status >= 500)
          throw new RegistryError({ object: `${this.registry} /v2/`, status: res.status });
        return;
      } catch (err) {
        lastErr = err;
        if (err instanceof ImageError && !(err instanceof NetworkError)) throw err;
      }
    }
    throw lastErr instanceof ImageError
      ? lastErr
      : new NetworkError(`ping ${this.registry}`, { cause: lastErr });
  }

  /** Agent for other origins (blob storage redirects, token realms): never the client certificate. */
  private foreign(): Agent {
    this.foreignAgent ??= new Agent({
      headersTimeout: this.idleMs,
      bodyTimeout: this.idleMs,
      connections: 16,
      connect: { secureContext: secureContextFor(this.foreignCA) },
    });
    return this.foreignAgent;
  }

  /** GET /v2/: resolves when the registry answers as a distribution API (200 or 401). */
  async ping(options: { signal?: AbortSignal } = {}): Promise<{ scheme: string; auth: string }> {
    await this.init(options.signal);
    return { scheme: this.base!.protocol.slice(0, -1), auth: this.auth.kind };
  }

  private authFromChallenge(res: Res, object: string): AuthState {
    const raw = res.headers['www-authenticate'];
    const h = Array.isArray(raw) ? raw.join(', ') : raw;
    if (!h) return { kind: 'basic' };
    const challenges: Challenge[] = parseWwwAuthenticate(h, object);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      const realm = bearer.params.realm;
      if (!realm) throw new AuthChallengeError(object, 'bearer challenge without realm');
      let u: URL;
      try {
        u = new URL(realm);
      } catch {
        throw new AuthChallengeError(object, 'bearer realm is not a URL');
      }
      if (u.protocol !== 'https:' && u.protocol !== 'http:')
        throw new AuthChallengeError(object, 'bearer realm is not http(s)');
      if (u.username || u.password) throw new AuthChallengeError(object, 'bearer realm contains userinfo');
      return { kind: 'bearer', realm, service: bearer.params.service };
    }
    if (challenges.some((c) => c.scheme === 'basic')) return { kind: 'basic' };
    throw new AuthChallengeError(
      object,
      `unsupported auth schemes: ${challenges.map((c) => c.scheme).join(', ')}`,
    );
  }

  private credentialsFor(repo: string | undefined, signal?: AbortSignal): Promise<Credentials | undefined> {
    const key = repo ?? '';
    let p = this.creds.get(key);
    if (!p) {
      p = getCredentials(this.ctx, this.registry, repo, signal);
      this.creds.set(key, p);
    }
    return p;
  }

  private async authorization(
    scopes: string[],
    signal: AbortSignal | undefined,
    force: boolean,
  ): Promise<string | undefined> {
    const repo = scopes.map((s) => /^repository:(.+):[^:]+$/.exec(s)?.[1]).find(Boolean);
    if (this.auth.kind === 'basic') {
      const c = await this.credentialsFor(repo, signal);
      if (!c || !('username' in c) || !('password' in c)) return undefined;
      return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
    }
    if (this.auth.kind === 'bearer') return `Bearer ${await this.token(scopes, repo, signal, force)}`;
    return undefined;
  }

  private async token(
    scopes: string[],
    repo: string | undefined,
    signal: AbortSignal | undefined,
    force: boolean,
  ): Promise<string> {
    const key = [...scopes].sort().join(' ');
    const cached = this.tokens.get(key);
    if (!force && cached && cached.expires > Date.now()) return cached.token;
    let p = this.pendingTokens.get(key);
    if (!p) {
      p = this.fetchToken(scopes, repo, signal).finally(() => this.pendingTokens.delete(key));
      this.pendingTokens.set(key, p);
    }
    return p;
  }

  private async fetchToken(
    scopes: string[],
    repo: string | undefined,
    signal?: AbortSignal,
  ): Promise<string> {
    const auth = this.auth as Extract<AuthState, { kind: 'bearer' }>;
    const realm = new URL(auth.realm);
    const object = `token from ${safeUrl(realm)}`;
    // Credentials only travel to a realm on the registry's own scheme.
    const creds =
      realm.protocol === this.base!.protocol ? await this.credentialsFor(repo, signal) : undefined;
    const headers: Record<string, string> = { 'user-agent': this.ctx.userAgent ?? DEFAULT_USER_AGENT };
    let method: 'GET' | 'POST' = 'GET';
    let body: Buffer | undefined;
    if (creds && 'identityToken' in creds) {
      method = 'POST';
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.identityToken,
        client_id: 'libpod-ts',
      });
      if (auth.service) form.set('service', auth.service);
      for (const s of scopes) form.append('scope', s);
      body = Buffer.from(form.toString());
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else {
      if (auth.service) realm.searchParams.set('service', auth.service);
      for (const s of scopes) realm.searchParams.append('scope', s);
      if (creds)
        headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    }
    const agent =
      realm.host === this.base!.host && realm.protocol === this.base!.protocol ? this.agent! : this.foreign();
    let res: Res | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await this.rawOnce(realm, method, headers, body, signal, agent);
      } catch (err) {
        if (attempt < this.retries && this.isRetryable(err)) {
          await this.backoff(attempt, signal);
          continue;
        }
        throw this.mapNetError(err, object, signal);
      }
      if (res.status >= 500 && attempt < this.retries) {
        await res.body.dump();
        await this.backoff(attempt, signal);
        continue;
      }
      break;
    }
    if (res.status === 401 || res.status === 403) {
      await res.body.dump();
      throw new UnauthorizedError(
        object,
        res.status,
        creds ? 'credentials rejected' : 'anonymous access refused',
      );
    }
    if (res.status !== 200) {
      await res.body.dump();
      throw new RegistryError({ object, status: res.status });
    }
    const cl = Number(header(res.headers, 'content-length') ?? '0');
    if (cl > MAX_TOKEN_SIZE) {
      discard(res.body);
      throw new TooLargeError(object, MAX_TOKEN_SIZE);
    }
    const bytes = await readCapped(res.body, MAX_TOKEN_SIZE, object);
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new AuthChallengeError(object, 'token answer is not JSON');
    }
    const token =
      typeof doc.token === 'string'
        ? doc.token
        : typeof doc.access_token === 'string'
          ? doc.access_token
          : '';
    if (!token) throw new AuthChallengeError(object, 'token answer has no token');
    if (!/^[\x21-\x7e]+$/.test(token))
      throw new AuthChallengeError(object, 'token has characters not allowed in a header');
    const ttl = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    // Refresh a little before the registry's expiry.
    this.tokens.set([...scopes].sort().join(' '), {
      token,
      expires: Date.now() + Math.max(ttl - 10, 5) * 1000,
    });
    return token;
  }

  // ---------- transport ----------

  private async rawOnce(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: Buffer | Readable | undefined,
    signal: AbortSignal | undefined,
    dispatcher: Dispatcher,
  ): Promise<Res> {
    const r = await request(url, {
      dispatcher,
      method: method as Dispatcher.HttpMethod,
      headers: { 'user-agent': this.ctx.userAgent ?? DEFAULT_USER_AGENT, ...headers },
      body,
      signal,
      headersTimeout: this.idleMs,
      bodyTimeout: this.idleMs,
    });
    return { status: r.statusCode, headers: r.headers as Res['headers'], body: r.body, url };
  }

  private isRetryable(err: unknown): boolean {
    const code = (err as { code?: string }).code;
    return code !== undefined && RETRYABLE_NET.has(code);
  }

  private async backoff(attempt: number, signal?: AbortSignal): Promise<void> {
    await sleep(Math.min(200 * 2 ** attempt, 3000), undefined, { signal }).catch(() => {
      throw new AbortedError(this.registry, { cause: signal?.reason });
    });
  }

  private mapNetError(err: unknown, object: string, signal?: AbortSignal): ImageError {
    if (err instanceof ImageError) return err;
    if (signal?.aborted) return new AbortedError(object, { cause: signal.reason });
    const code = (err as { code?: string }).code;
    if (code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT')
      return new IdleTimeoutError(object, this.idleMs);
    return new NetworkError(object, { cause: err });
  }

  /**
   * Sends a request with auth, retries and manual redirects. Returns any status; callers decide.
   */
  private async send(req: Req): Promise<Res> {
    await this.init(req.signal);
    let url = new URL(req.path, this.base);
    let sameOrigin = url.origin === this.base!.origin;
    let redirects = 0;
    let attempt = 0;
    let reauthed = false;
    for (;;) {
      const headers: Record<string, string> = { ...(req.headers ?? {}) };
      if (sameOrigin) {
        const a = await this.authorization(req.scopes, req.signal, false);
        if (a) headers.authorization = a;
      }
      let res: Res;
      try {
        res = await this.rawOnce(
          url,
          req.method,
          headers,
          req.body,
          req.signal,
          sameOrigin ? this.agent! : this.foreign(),
        );
      } catch (err) {
        if (req.retry && attempt < this.retries && this.isRetryable(err) && !req.signal?.aborted) {
          await this.backoff(attempt++, req.signal);
          continue;
        }
        throw this.mapNetError(err, req.object, req.signal);
      }
      if (res.status === 401 && sameOrigin && !reauthed && (req.retry || !(req.body instanceof Readable))) {
        await res.body.dump();
        this.auth = this.authFromChallenge(res, req.object);
        if (this.auth.kind === 'bearer') await this.token(req.scopes, undefined, req.signal, true);
        reauthed = true;
        continue;
      }
      if ((res.status >= 500 || res.status === 429) && req.retry && attempt < this.retries) {
        await res.body.dump();
        await this.backoff(attempt++, req.signal);
        continue;
      }
      if (req.follow && [301, 302, 303, 307, 308].includes(res.status)) {
        await res.body.dump();
        const loc = header(res.headers, 'location');
        if (!loc) throw new RedirectError(req.object, `HTTP ${res.status} without Location`);
        if (++redirects > MAX_REDIRECTS) throw new RedirectError(req.object, 'too many redirects');
        let next: URL;
        try {
          next = new URL(loc, url);
        } catch {
          throw new RedirectError(req.object, 'invalid Location');
        }
        if (next.protocol !== 'https:' && next.protocol !== 'http:')
          throw new RedirectError(req.object, 'redirect to a non-http(s) URL');
        if (url.protocol === 'https:' && next.protocol === 'http:') {
          throw new RedirectError(req.object, `refusing https -> http redirect to ${next.host}`);
        }
        if (next.username || next.password)
          throw new RedirectError(req.object, 'redirect URL contains userinfo');
        // Once we left the registry's origin, credentials never come back in this chain.
        sameOrigin = sameOrigin && next.origin === this.base!.origin;
        url = next;
        continue;
      }
      return res;
    }
  }

  private async fail(res: Res, object: string): Promise<never> {
    let codes: string[] = [];
    let detail: string | undefined;
    try {
      const bytes = await readCapped(res.body, MAX_ERROR_BODY, object);
      const doc = JSON.parse(bytes.toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] };
      codes = (doc.errors ?? []).map((e) => String(e.code)).slice(0, 5);
      const m = doc.errors?.[0]?.message;
      if (typeof m === 'string') detail = m.slice(0, 200);
    } catch {
      discard(res.body);
    }
    if (res.status === 404) throw new NotFoundError(object);
    if (res.status === 401 || res.status === 403) throw new UnauthorizedError(object, res.status, detail);
    throw new RegistryError({ object, status: res.status, registryCodes: codes, detail });
  }

  private repoUrl(repo: string, rest: string): string {
    return `/v2/${repo}/${rest}`;
  }

  // ---------- manifests ----------

  /**
   * GET a manifest by tag or digest. Verifies the bytes against `reference` when it is a digest,
   * otherwise against Docker-Content-Digest when the registry sends one. Refuses > 4 MiB.
   */
  async getManifest(
    repo: string,
    reference: string,
    options: { signal?: AbortSignal; accept?: readonly string[] } = {},
  ): Promise<{ bytes: Buffer; mediaType: string; digest: string | undefined }> {
    const object = `manifest ${this.registry}/${repo}${reference.includes(':') ? '@' : ':'}${reference}`;
    const res = await this.send({
      method: 'GET',
      path: this.repoUrl(repo, `manifests/${reference}`),
      scopes: [pullScope(repo)],
      object,
      headers: { accept: (options.accept ?? SUPPORTED_MANIFEST_MEDIA_TYPES).join(', ') },
      retry: true,
      follow: true,
      signal: options.signal,
    });
    if (res.status !== 200) return this.fail(res, object);
    const cl = Number(header(res.headers, 'content-length') ?? '0');
    if (cl > MAX_MANIFEST_SIZE) {
      discard(res.body);
      throw new TooLargeError(object, MAX_MANIFEST_SIZE);
    }
    let bytes: Buffer;
    try {
      bytes = await readCapped(res.body, MAX_MANIFEST_SIZE, object);
    } catch (err) {
      throw this.mapNetError(err, object, options.signal);
    }
    const mediaType = header(res.headers, 'content-type') ?? '';
    const headerDigest = header(res.headers, 'docker-content-digest');
    if (reference.includes(':')) verifyBytes(bytes, reference, object);
    else if (headerDigest && /^sha(256|512):/.test(headerDigest)) verifyBytes(bytes, headerDigest, object);
    return { bytes, mediaType, digest: reference.includes(':') ? reference : headerDigest };
  }

  /** HEAD a manifest: its digest, media type and size, or undefined when it does not exist. */
  async headManifest(
    repo: string,
    reference: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ digest: string | undefined; mediaType: string; size: number } | undefined> {
    const object = `manifest ${this.registry}/${repo}:${reference}`;
    const res = await this.send({
      method: 'HEAD',
      path: this.repoUrl(repo, `manifests/${reference}`),
      scopes: [pullScope(repo)],
      object,
      headers: { accept: SUPPORTED_MANIFEST_MEDIA_TYPES.join(', ') },
      retry: true,
      follow: true,
      signal: options.signal,
    });
    await res.body.dump();
    if (res.status === 404) return undefined;
    if (res.status !== 200) return this.fail(res, object);
    return {
      digest: header(res.headers, 'docker-content-digest'),
      mediaType: header(res.headers, 'content-type') ?? '',
      size: Number(header(res.headers, 'content-length') ?? '-1'),
    };
  }

  /** PUT a manifest under a tag or digest. Returns the digest the registry reports (or undefined). */
  async putManifest(
    repo: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<string | undefined> {
    if (bytes.length > MAX_MANIFEST_SIZE) throw new TooLargeError(`manifest for ${repo}`, MAX_MANIFEST_SIZE);
    const object = `manifest ${this.registry}/${repo}:${reference}`;
    const res = await this.send({
      method: 'PUT',
      path: this.repoUrl(repo, `manifests/${reference}`),
      scopes: [pushScope(repo)],
      object,
      headers: { 'content-type': mediaType },
      body: Buffer.from(bytes),
      retry: true,
      signal: options.signal,
    });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) return this.fail(res, object);
    await res.body.dump();
    return header(res.headers, 'docker-content-digest');
  }

  async deleteManifest(repo: string, digest: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const object = `manifest ${this.registry}/${repo}@${digest}`;
    const res = await this.send({
      method: 'DELETE',
      path: this.repoUrl(repo, `manifests/${digest}`),
      scopes: [`repository:${repo}:delete`],
      object,
      retry: true,
      signal: options.signal,
    });
    if (res.status !== 202 && res.status !== 200) return this.fail(res, object);
    await res.body.dump();
  }

  // ---------- blobs ----------

  /** HEAD a blob: its size, or undefined when it does not exist. */
  async headBlob(
    repo: string,
    digest: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<number | undefined> {
    const object = `blob ${this.registry}/${repo}@${digest}`;
    const res = await this.send({
      method: 'HEAD',
      path: this.repoUrl(repo, `blobs/${digest}`),
      scopes: [pullScope(repo)],
      object,
      retry: true,
      follow: true,
      signal: options.signal,
    });
    await res.body.dump();
    if (res.status === 404) return undefined;
    if (res.status !== 200) return this.fail(res, object);
    return Number(header(res.headers, 'content-length') ?? '-1');
  }

  private async openBlob(
    repo: string,
    digest: string,
    offset: number,
    signal: AbortSignal | undefined,
  ): Promise<OpenedBlob> {
    const object = `blob ${this.registry}/${repo}@${digest}`;
    const res = await this.send({
      method: 'GET',
      path: this.repoUrl(repo, `blobs/${digest}`),
      scopes: [pullScope(repo)],
      object,
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      retry: true,
      follow: true,
      signal,
    });
    if (res.status === 200) {
      const cl = header(res.headers, 'content-length');
      // A server that ignores Range sends everything; the reader skips what it already has.
      return { res, total: cl !== undefined ? Number(cl) : -1, skip: offset };
    }
    if (res.status === 206 && offset > 0) {
      const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res.headers, 'content-range') ?? '');
      if (!cr || Number(cr[1]) !== offset) {
        discard(res.body);
        throw new RegistryError({
          object,
          status: 206,
          detail: 'Content-Range does not match the requested range',
        });
      }
      return { res, total: cr[3] === '*' ? -1 : Number(cr[3]), skip: 0 };
    }
    return this.fail(res, object);
  }

  /**
   * GET a blob as a stream starting at `offset`. The stream resumes with `Range` after connection
   * resets (up to the retry count) and errors with SizeMismatchError when the data ends early;
   * it does not check the digest (the caller streams it through a verifier: `verify: true` adds one).
   */
  async getBlob(
    repo: string,
    digest: string,
    options: { signal?: AbortSignal; offset?: number; size?: number; verify?: boolean } = {},
  ): Promise<{ stream: Readable; size: number }> {
    const object = `blob ${this.registry}/${repo}@${digest}`;
    const start = options.offset ?? 0;
    const first = await this.openBlob(repo, digest, start, options.signal);
    const total = first.total >= 0 ? first.total : (options.size ?? -1);
    if (options.size !== undefined && options.size >= 0 && first.total >= 0 && first.total !== options.size) {
      discard(first.res.body);
      throw new SizeMismatchError({ object, expected: options.size, actual: first.total });
    }
    let stream: Readable = new ResumingBlobStream({
      object,
      total,
      start,
      first,
      retries: this.retries,
      signal: options.signal,
      canResume: (err) =>
        this.isRetryable(err) ||
        (err as { code?: string }).code === 'UND_ERR_ABORTED' ||
        (err as Error).message === 'aborted',
      reopen: async (pos, attempt) => {
        await this.backoff(attempt, options.signal);
        return this.openBlob(repo, digest, pos, options.signal);
      },
      mapError: (err) => this.mapNetError(err, object, options.signal),
    });
    if (options.verify && start === 0) {
      const v = new VerifyingStream({ digest, size: total, object });
      stream.on('error', (e) => v.destroy(e));
      stream = stream.pipe(v);
    }
    return { stream, size: total };
  }

  private async startUpload(
    repo: string,
    signal?: AbortSignal,
    query = '',
    extraScopes: string[] = [],
  ): Promise<Res> {
    const object = `blob upload to ${this.registry}/${repo}`;
    return this.send({
      method: 'POST',
      path: this.repoUrl(repo, `blobs/uploads/${query}`),
      scopes: [pushScope(repo), ...extraScopes],
      object,
      headers: { 'content-length': '0' },
      retry: true,
      signal,
    });
  }

  private uploadLocation(res: Res, object: string): URL {
    const loc = header(res.headers, 'location');
    if (!loc)
      throw new RegistryError({ object, status: res.status, detail: 'upload answer without Location' });
    const u = new URL(loc, res.url);
    if (u.protocol !== this.base!.protocol && !(u.protocol === 'https:' && this.base!.protocol === 'http:')) {
      throw new RedirectError(object, 'upload location on a different scheme');
    }
    return u;
  }

  private async cancelUpload(loc: URL, repo: string): Promise<void> {
    try {
      const res = await this.send({
        method: 'DELETE',
        path: loc.href,
        scopes: [pushScope(repo)],
        object: `cancel upload to ${this.registry}/${repo}`,
      });
      await res.body.dump();
    } catch {
      // Best effort: the registry expires abandoned uploads.
    }
  }

  /**
   * Uploads a blob. When `digest` is known and no `chunkSize` is given: one monolithic PUT;
   * otherwise a streamed PATCH (or PATCHes of `chunkSize` bytes) and a final PUT with the digest
   * computed while streaming. The data is verified locally against `digest`/`size` and by the
   * registry against the digest in the final PUT, so nothing is committed unverified; on failure
   * the upload session is cancelled.
   */
  async putBlob(
    repo: string,
    data: Readable,
    options: {
      digest?: string | undefined;
      size?: number | undefined;
      signal?: AbortSignal | undefined;
      onProgress?: ((n: number) => void) | undefined;
      chunkSize?: number | undefined;
    } = {},
  ): Promise<{ digest: string; size: number }> {
    const object = `blob upload to ${this.registry}/${repo}${options.digest ? `@${options.digest}` : ''}`;
    const started = await this.startUpload(repo, options.signal);
    if (started.status !== 202) return this.fail(started, object);
    await started.body.dump();
    let loc = this.uploadLocation(started, object);
    const verifier = new VerifyingStream({
      digest: options.digest,
      size: options.size,
      object,
      onProgress: options.onProgress,
    });
    let streamErr: unknown;
    const onErr = (e: unknown) => {
      streamErr ??= e;
      verifier.destroy(e as Error);
    };
    data.on('error', onErr);
    verifier.on('error', (e) => {
      streamErr ??= e;
    });
    data.pipe(verifier);
    try {
      if (options.digest && !options.chunkSize) {
        const put = new URL(loc);
        put.searchParams.set('digest', options.digest);
        const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
        if (options.size !== undefined && options.size >= 0) headers['content-length'] = String(options.size);
        const res = await this.send({
          method: 'PUT',
          path: put.href,
          scopes: [pushScope(repo)],
          object,
          headers,
          body: verifier,
          signal: options.signal,
        });
        if (streamErr) throw streamErr;
        if (res.status !== 201) return await this.fail(res, object);
        await res.body.dump();
        return { digest: options.digest, size: verifier.result?.size ?? options.size ?? -1 };
      }
      if (!options.chunkSize) {
        const res = await this.send({
          method: 'PATCH',
          path: loc.href,
          scopes: [pushScope(repo)],
          object,
          headers: { 'content-type': 'application/octet-stream' },
          body: verifier,
          signal: options.signal,
        });
        if (streamErr) throw streamErr;
        if (res.status !== 202) return await this.fail(res, object);
        await res.body.dump();
        loc = this.uploadLocation(res, object);
      } else {
        let offset = 0;
        for await (const chunk of chunked(verifier, options.chunkSize)) {
          const res = await this.send({
            method: 'PATCH',
            path: loc.href,
            scopes: [pushScope(repo)],
            object,
            headers: {
              'content-type': 'application/octet-stream',
              'content-range': `${offset}-${offset + chunk.length - 1}`,
              'content-length': String(chunk.length),
            },
            body: chunk,
            signal: options.signal,
          });
          if (res.status !== 202) return await this.fail(res, object);
          await res.body.dump();
          loc = this.uploadLocation(res, object);
          offset += chunk.length;
        }
        if (streamErr) throw streamErr;
      }
      const result = verifier.result;
      if (!result)
        throw streamErr ?? new ImageError('ERR_INTERNAL', `${object}: stream ended without a digest`);
      const put = new URL(loc);
      put.searchParams.set('digest', result.digest);
      const res = await this.send({
        method: 'PUT',
        path: put.href,
        scopes: [pushScope(repo)],
        object,
        headers: { 'content-length': '0' },
        signal: options.signal,
      });
      if (res.status !== 201) return await this.fail(res, object);
      await res.body.dump();
      return result;
    } catch (err) {
      data.unpipe(verifier);
      verifier.destroy();
      await this.cancelUpload(loc, repo);
      if (streamErr instanceof ImageError) throw streamErr;
      throw this.mapNetError(streamErr ?? err, object, options.signal);
    } finally {
      data.off('error', onErr);
    }
  }

  /** Cross-repository mount: true when the registry mounted `digest` from `fromRepo` into `repo`. */
  async mountBlob(
    repo: string,
    digest: string,
    fromRepo: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<boolean> {
    const q = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepo)}`;
    const res = await this.startUpload(repo, options.signal, q, [pullScope(fromRepo)]);
    if (res.status === 201) {
      await res.body.dump();
      return true;
    }
    if (res.status === 202) {
      await res.body.dump();
      await this.cancelUpload(this.uploadLocation(res, `mount into ${repo}`), repo);
      return false;
    }
    if (res.status === 401 || res.status === 403 || res.status === 404) {
      await res.body.dump();
      return false;
    }
    return this.fail(res, `mount ${digest} from ${fromRepo} into ${this.registry}/${repo}`);
  }

  // ---------- listings ----------

  private async *paginate(
    first: string,
    scopes: string[],
    object: string,
    signal?: AbortSignal,
  ): AsyncGenerator<unknown> {
    let path: string | undefined = first;
    for (let page = 0; path && page < 10_000; page++) {
      const res = await this.send({ method: 'GET', path, scopes, object, retry: true, follow: true, signal });
      if (res.status !== 200) await this.fail(res, object);
      const bytes = await readCapped(res.body, MAX_MANIFEST_SIZE, object);
      try {
        yield JSON.parse(bytes.toString('utf8'));
      } catch (err) {
        if (err instanceof SyntaxError)
          throw new RegistryError({ object, status: 200, detail: 'answer is not JSON' });
        throw err;
      }
      const link = header(res.headers, 'link');
      const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
      if (!m) return;
      const next = new URL(m[1]!, res.url);
      if (next.origin !== this.base!.origin)
        throw new RedirectError(object, 'pagination link to another origin');
      path = next.pathname + next.search;
    }
  }

  /** All tags of a repository (follows `Link: <...>; rel="next"` pagination). */
  async listTags(repo: string, options: { signal?: AbortSignal; pageSize?: number } = {}): Promise<string[]> {
    const object = `tags of ${this.registry}/${repo}`;
    const out: string[] = [];
    const q = options.pageSize ? `?n=${options.pageSize}` : '';
    for await (const doc of this.paginate(
      this.repoUrl(repo, `tags/list${q}`),
      [pullScope(repo)],
      object,
      options.signal,
    )) {
      const tags = (doc as { tags?: unknown }).tags;
      if (tags !== null && tags !== undefined && !Array.isArray(tags))
        throw new RegistryError({ object, status: 200, detail: 'tags is not a list' });
      for (const t of (tags as unknown[] | null | undefined) ?? []) if (typeof t === 'string') out.push(t);
    }
    return out;
  }

  /** Repositories of the registry (`/v2/_catalog`, paginated). */
  async catalog(options: { signal?: AbortSignal; pageSize?: number } = {}): Promise<string[]> {
    const object = `catalog of ${this.registry}`;
    const out: string[] = [];
    const q = options.pageSize ? `?n=${options.pageSize}` : '';
    for await (const doc of this.paginate(
      `/v2/_catalog${q}`,
      ['registry:catalog:*'],
      object,
      options.signal,
    )) {
      for (const r of ((doc as { repositories?: unknown[] }).repositories ?? []) as unknown[])
        if (typeof r === 'string') out.push(r);
    }
    return out;
  }

  /**
   * Referrers of `digest` (OCI distribution 1.1 referrers API) as an OCI index document, or
   * undefined when the registry does not implement the API (404).
   */
  async referrers(
    repo: string,
    digest: string,
    options: { signal?: AbortSignal; artifactType?: string } = {},
  ): Promise<{ manifests: unknown[]; filtersApplied: boolean } | undefined> {
    const object = `referrers of ${this.registry}/${repo}@${digest}`;
    const q = options.artifactType ? `?artifactType=${encodeURIComponent(options.artifactType)}` : '';
    const res = await this.send({
      method: 'GET',
      path: this.repoUrl(repo, `referrers/${digest}${q}`),
      scopes: [pullScope(repo)],
      object,
      headers: { accept: 'application/vnd.oci.image.index.v1+json' },
      retry: true,
      follow: true,
      signal: options.signal,
    });
    if (res.status === 404 || res.status === 405) {
      await res.body.dump();
      return undefined;
    }
    if (res.status !== 200) return this.fail(res, object);
    const bytes = await readCapped(res.body, MAX_MANIFEST_SIZE, object);
    let doc: { manifests?: unknown };
    try {
      doc = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new RegistryError({ object, status: 200, detail: 'answer is not JSON' });
    }
    return {
      manifests: Array.isArray(doc.manifests) ? doc.manifests : [],
      filtersApplied: Boolean(header(res.headers, 'oci-filters-applied')),
    };
  }
}

interface OpenedBlob {
  res: Res;
  /** Total blob size from the response, -1 when unknown. */
  total: number;
  /** Bytes at the start of the body to drop (a server that ignored Range). */
  skip: number;
}

/**
 * The bytes of a blob GET from `start` on, resuming with a new ranged request (`reopen`) after a
 * connection reset, up to `retries` times; more bytes than `total`, or fewer at a clean end, fail
 * with SizeMismatchError. Push-based over the undici body: its 'data' events are pushed on (the
 * body is paused while this stream's buffer is full), so a chunk costs no async-iterator step.
 * A body we hold but may never read (the consumer can destroy the stream before the first read)
 * never raises an unhandled 'error' and is destroyed with the stream.
 */
class ResumingBlobStream extends Readable {
  private readonly o: {
    object: string;
    total: number;
    start: number;
    first: OpenedBlob;
    retries: number;
    signal: AbortSignal | undefined;
    canResume: (err: unknown) => boolean;
    reopen: (pos: number, attempt: number) => Promise<OpenedBlob>;
    mapError: (err: unknown) => ImageError;
  };
  private body: Res['body'] | undefined;
  private skip = 0;
  private pos: number;
  private resumes = 0;

  constructor(o: ResumingBlobStream['o']) {
    super({ highWaterMark: 1 << 16 });
    this.o = o;
    this.pos = o.start;
    this.attach(o.first);
  }

  private attach(b: OpenedBlob): void {
    const body = b.res.body;
    this.body = body;
    this.skip = b.skip;
    body.on('data', this.onData);
    body.on('end', this.onEnd);
    body.on('error', this.onError);
    // A body that failed before we listened (an abort between the response and this call)
    // emits nothing more.
    if (body.errored) process.nextTick(this.onError, body.errored);
    else if (body.destroyed && !body.readableEnded)
      process.nextTick(this.onError, Object.assign(new Error('aborted'), { code: 'UND_ERR_ABORTED' }));
  }

  /** Stops listening to the current body; `destroy` it when it was not read to its end. */
  private detach(destroy: boolean): void {
    const b = this.body;
    if (!b) return;
    this.body = undefined;
    b.off('data', this.onData);
    b.off('end', this.onEnd);
    b.off('error', this.onError);
    if (destroy) discard(b);
  }

  private readonly onData = (chunk: Buffer): void => {
    let c = chunk;
    if (this.skip > 0) {
      if (c.length <= this.skip) {
        this.skip -= c.length;
        return;
      }
      c = c.subarray(this.skip);
      this.skip = 0;
    }
    this.pos += c.length;
    const { total, object } = this.o;
    if (total >= 0 && this.pos > total) {
      this.destroy(new SizeMismatchError({ object, expected: total, actual: this.pos }));
      return;
    }
    if (!this.push(c)) this.body?.pause();
  };

  private readonly onEnd = (): void => {
    this.detach(false);
    const { total, object } = this.o;
    if (total >= 0 && this.pos < total) {
      this.destroy(new SizeMismatchError({ object, expected: total, actual: this.pos }));
    } else {
      this.push(null);
    }
  };

  private readonly onError = (err: unknown): void => {
    this.detach(true);
    if (this.destroyed) return;
    if (err instanceof ImageError) {
      this.destroy(err);
      return;
    }
    const { total, retries, signal } = this.o;
    if (
      this.o.canResume(err) &&
      !signal?.aborted &&
      this.resumes < retries &&
      total >= 0 &&
      this.pos < total
    ) {
      this.o.reopen(this.pos, this.resumes++).then(
        (next) => {
          if (this.destroyed) discard(next.res.body);
          else this.attach(next);
        },
        (e: unknown) => this.destroy(this.o.mapError(e)),
      );
      return;
    }
    this.destroy(this.o.mapError(err));
  };

  override _read(): void {
    this.body?.resume();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.detach(true);
    cb(err);
  }
}

/** Re-chunks a stream into pieces of exactly `size` bytes (the last may be shorter). */
async function* chunked(src: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let len = 0;
  for await (const c of src) {
    let chunk = c;
    while (len + chunk.length >= size) {
      const take = size - len;
      parts.push(chunk.subarray(0, take));
      yield Buffer.concat(parts, size);
      chunk = chunk.subarray(take);
      parts = [];
      len = 0;
    }
    if (chunk.length) {
      parts.push(chunk);
      len += chunk.length;
    }
  }
  if (len > 0) yield Buffer.concat(parts, len);
}
