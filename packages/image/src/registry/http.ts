/**
 * The registry client's HTTP transport: node:http / node:https with keep-alive agents.
 *
 * This replaced undici (see docs/decisions/image.md, "Peak RSS"): undici parses HTTP with llhttp
 * compiled to WebAssembly, and V8 tiers that module up with TurboFan in the background during
 * the first large download; the optimizing compile of the parser's state machine allocates
 * ~33 MiB of compiler zone memory in a worker thread's malloc arena, which stays in the RSS.
 * Importing undici also cost ~20 MiB. Node's own client uses the native llhttp. Its body path
 * costs two ArrayBuffers and a call into JS per TLS record, so blob bodies do not take it: they
 * are read by raw-blob.ts whenever the registry answers a blob GET directly.
 *
 * Semantics kept from the undici version: no global agent is touched; responses carry status,
 * lower-case headers (a repeated header as an array) and the body as a stream; `idleMs` bounds
 * connecting, waiting for the headers and every pause in the body (socket inactivity), and
 * fails with code ERR_HTTP_IDLE_TIMEOUT; an aborted `signal` destroys the request and its body.
 */
import { Agent as PlainAgent, request as plainRequest, type IncomingMessage } from 'node:http';
import { Agent as TlsAgent, request as tlsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { SecureContext } from 'node:tls';

export const IDLE_TIMEOUT_CODE = 'ERR_HTTP_IDLE_TIMEOUT';

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: IncomingMessage;
}

/** Keep-alive agents for one set of TLS settings, created on first use per scheme. */
export class HttpAgents {
  private tls: TlsAgent | undefined;
  private plain: PlainAgent | undefined;

  constructor(
    private readonly opts: {
      secureContext: SecureContext;
      rejectUnauthorized: boolean;
      maxSockets: number;
    },
  ) {}

  forUrl(url: URL): PlainAgent {
    if (url.protocol === 'https:') {
      this.tls ??= new TlsAgent({
        keepAlive: true,
        maxSockets: this.opts.maxSockets,
        secureContext: this.opts.secureContext,
        rejectUnauthorized: this.opts.rejectUnauthorized,
      });
      return this.tls;
    }
    this.plain ??= new PlainAgent({ keepAlive: true, maxSockets: this.opts.maxSockets });
    return this.plain;
  }

  /** Closes every socket, idle or in use. */
  destroy(): void {
    this.tls?.destroy();
    this.plain?.destroy();
  }
}

function idleError(): Error {
  return Object.assign(new Error('no data within the idle timeout'), { code: IDLE_TIMEOUT_CODE });
}

/**
 * Sends one request and resolves with the response once its headers arrived. The body must be
 * read to its end, dumped (`dump`) or destroyed, or the connection stays taken.
 */
export function httpRequest(
  url: URL,
  opts: {
    agents: HttpAgents;
    method: string;
    headers: Record<string, string>;
    body?: Buffer | Readable | undefined;
    signal?: AbortSignal | undefined;
    idleMs: number;
  },
): Promise<HttpResponse> {
  const signal = opts.signal;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise<HttpResponse>((resolve, reject) => {
    const send = url.protocol === 'https:' ? tlsRequest : plainRequest;
    let res: IncomingMessage | undefined;
    let socket: Socket | undefined;
    let settled = false;
    const fail = (err: Error) => {
      // Destroying the response first makes its body fail with `err`, not "aborted".
      if (res && !res.complete) res.destroy(err);
      req.destroy(err);
    };
    const onTimeout = () => fail(idleError());
    const onAbort = () => fail(abortError(signal!));
    const release = () => {
      signal?.removeEventListener('abort', onAbort);
      if (!socket) return;
      socket.off('timeout', onTimeout);
      socket.setTimeout(0);
      socket = undefined;
    };
    const req = send(url, { method: opts.method, headers: opts.headers, agent: opts.agents.forUrl(url) });
    signal?.addEventListener('abort', onAbort, { once: true });
    // Socket inactivity covers connecting, sending, waiting for the headers and the body.
    req.on('socket', (s: Socket) => {
      socket = s;
      s.setTimeout(opts.idleMs);
      s.on('timeout', onTimeout);
    });
    req.on('error', (err) => {
      release();
      if (!settled) {
        settled = true;
        reject(err);
      }
    });
    req.on('close', () => {
      if (!res || res.complete || res.destroyed) release();
    });
    req.on('response', (r: IncomingMessage) => {
      res = r;
      // Before Node's keep-alive hands the socket to the next request ('end'), or on any close.
      r.once('end', release);
      r.once('close', release);
      settled = true;
      resolve({ status: r.statusCode ?? 0, headers: distinctHeaders(r), body: r });
    });
    const body = opts.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      body.on('error', (err) => req.destroy(err));
      body.pipe(req);
    }
  });
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ABORT_ERR', cause: signal.reason });
}

/** Headers as undici gave them: one value as a string, a repeated header as an array. */
function distinctHeaders(r: IncomingMessage): HttpResponse['headers'] {
  const out: HttpResponse['headers'] = {};
  for (const [k, v] of Object.entries(r.headersDistinct)) {
    if (v) out[k] = v.length === 1 ? v[0] : v;
  }
  return out;
}

/**
 * Reads and drops a body we do not need (keeps the connection reusable); a body over `limit`
 * bytes is destroyed instead. Resolves in every case, also when the body fails.
 */
export function dump(body: Readable, limit = 128 * 1024): Promise<void> {
  if (body.readableEnded || body.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    let n = 0;
    const done = () => {
      body.off('data', onData);
      body.off('end', done);
      body.off('close', done);
      resolve();
    };
    const onData = (c: Buffer) => {
      n += c.length;
      if (n > limit) body.destroy();
    };
    body.on('data', onData);
    body.on('end', done);
    body.on('close', done);
    // An error after this point has no one else to hear it.
    body.on('error', () => {});
    body.resume();
  });
}
