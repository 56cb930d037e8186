/**
 * A token server in the test process that behaves like Docker Hub's auth service
 * (https://distribution.github.io/distribution/spec/auth/token/): the registry answers 401 with
 * `WWW-Authenticate: Bearer realm=...,service=...,scope=...`; the client GETs
 * `realm?service=...&scope=repository:<name>:<actions>` (Basic credentials optional) and receives
 * `{ token, access_token, expires_in, issued_at }`, a JWT signed RS256 whose header carries `x5c`
 * with the signing certificate, which the registry trusts through `auth.token.rootcertbundle`.
 */
import { createHash, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenRequestRecord {
  service: string | null;
  scopes: string[];
  account: string | null;
  /** Username from Basic credentials, or null when anonymous. */
  user: string | null;
  status: number;
  granted: AccessEntry[];
}

export interface TokenServerOptions {
  service: string;
  issuer: string;
  username: string;
  password: string;
  signingCertPath: string;
  signingKeyPath: string;
  /** When set, serve HTTPS with this key pair. */
  tls?: { certPath: string; keyPath: string };
  /** Grant `pull` to anonymous requests (Docker Hub does for public repos). Default false. */
  anonymousPull?: boolean;
  /** Token lifetime in seconds. Default 300. */
  ttlSeconds?: number;
}

export interface MintOptions {
  subject?: string;
  audience?: string;
  issuer?: string;
  /** Seconds from now; negative gives an expired token. */
  expiresIn?: number;
}

export interface TokenServer {
  realm: string;
  /** Every request the server answered, in order (tests assert on scopes and credentials). */
  requests: TokenRequestRecord[];
  /** Signs a token for the given access directly (for tests of expiry, audience, forgery). */
  mint(access: AccessEntry[], opts?: MintOptions): string;
  close(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** Parses `repository:name:pull,push` (the name may contain ':' only via a port in the first part). */
export function parseScope(scope: string): AccessEntry | null {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return null;
  const type = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter((a) => a !== '');
  return { type, name, actions };
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const keyPem = await readFile(opts.signingKeyPath, 'utf8');
  const certPem = await readFile(opts.signingCertPath, 'utf8');
  const key = createPrivateKey(keyPem);
  const der = Buffer.from(
    certPem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''),
    'base64',
  );
  const x5c = [der.toString('base64')];
  // Docker Hub puts a libtrust key id in `kid`; distribution accepts x5c alone, so this is informative.
  const kid = createHash('sha256').update(der).digest('hex').slice(0, 16);
  const ttl = opts.ttlSeconds ?? 300;
  const requests: TokenRequestRecord[] = [];

  const mint = (access: AccessEntry[], m: MintOptions = {}): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', kid, x5c };
    const claims = {
      iss: m.issuer ?? opts.issuer,
      sub: m.subject ?? '',
      aud: m.audience ?? opts.service,
      exp: now + (m.expiresIn ?? ttl),
      nbf: now - 5,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = sign('sha256', Buffer.from(input), key);
    return `${input}.${b64url(sig)}`;
  };

  const credentialsOf = (auth: string | undefined): { user: string; pass: string } | null | 'bad' => {
    if (!auth) return null;
    const m = /^Basic\s+(.+)$/i.exec(auth);
    if (!m) return 'bad';
    const raw = Buffer.from(m[1]!, 'base64').toString('utf8');
    const i = raw.indexOf(':');
    if (i < 0) return 'bad';
    return { user: raw.slice(0, i), pass: raw.slice(i + 1) };
  };

  const handler: http.RequestListener = (req, res) => {
    const u = new URL(req.url ?? '/', 'http://token.invalid');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (u.pathname !== '/token') return send(404, { details: 'not found' });
    const finish = (params: URLSearchParams) => {
      const scopes = params.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
      const rec: TokenRequestRecord = {
        service: params.get('service'),
        scopes,
        account: params.get('account') ?? params.get('username'),
        user: null,
        status: 200,
        granted: [],
      };
      requests.push(rec);
      let creds = credentialsOf(req.headers.authorization);
      // OAuth2 password grant (POST form) carries the credentials in the body.
      if (creds === null && params.get('grant_type') === 'password') {
        creds = { user: params.get('username') ?? '', pass: params.get('password') ?? '' };
      }
      if (creds === 'bad' || (creds && (creds.user !== opts.username || creds.pass !== opts.password))) {
        rec.status = 401;
        return send(401, { details: 'incorrect username or password' });
      }
      if (rec.service !== opts.service) {
        rec.status = 400;
        return send(400, { details: `unknown service ${String(rec.service)}` });
      }
      rec.user = creds ? creds.user : null;
      for (const s of scopes) {
        const a = parseScope(s);
        if (!a) continue;
        const actions = creds ? a.actions : opts.anonymousPull ? a.actions.filter((x) => x === 'pull') : [];
        rec.granted.push({ ...a, actions });
      }
      const token = mint(rec.granted, { subject: rec.user ?? '' });
      send(200, {
        token,
        access_token: token,
        expires_in: ttl,
        issued_at: new Date().toISOString(),
      });
    };
    if (req.method === 'GET') return finish(u.searchParams);
    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 64 * 1024) req.destroy();
        else chunks.push(c);
      });
      req.on('end', () => finish(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
      return;
    }
    send(405, { details: 'method not allowed' });
  };

  const server = opts.tls
    ? https.createServer(
        { cert: await readFile(opts.tls.certPath), key: await readFile(opts.tls.keyPath) },
        handler,
      )
    : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const realm = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}/token`;
  let closed: Promise<void> | undefined;
  return {
    realm,
    requests,
    mint,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
