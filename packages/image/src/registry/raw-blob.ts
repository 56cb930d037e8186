/**
 * Blob bodies without a Buffer per TLS record: a GET on its own connection whose socket reads
 * into one reused buffer (`onread`), with the body copied straight into buffers the consumer
 * hands in (`readInto`). Node's HTTP client allocates two ArrayBuffers per 16 KiB record (the
 * TLS read and the parser's copy of the body), and V8 frees them only when its young backing
 * stores reach 32 MiB, which is what kept copy()'s peak RSS above 120 MiB (docs/decisions/image.md).
 *
 * Deliberately narrow: only `200`/`206` answers with one Content-Length and no Transfer-Encoding
 * are read here; anything else (redirects, auth challenges, chunked bodies, errors) closes the
 * connection and resolves `undefined`, and the caller sends the request through the general
 * client. The response head is capped at 16 KiB; obsolete line folding is refused.
 */
import { connect as plainConnect, isIP, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { type SecureContext, connect as tlsConnect } from 'node:tls';
import { IDLE_TIMEOUT_CODE } from './http.js';

const SOCKET_BUFFER = 64 * 1024;
const MAX_HEAD = 16 * 1024;
/** Readable-mode reads (consumers that do not use readInto). */
const READ_CHUNK = 64 * 1024;

export interface RawBlobResponse {
  status: number;
  headers: Record<string, string>;
  /** Undefined when this reader does not handle the answer (the connection is closed then). */
  body: RawBody | undefined;
}

export interface RawBlobOptions {
  headers: Record<string, string>;
  secureContext: SecureContext;
  rejectUnauthorized: boolean;
  idleMs: number;
  signal?: AbortSignal | undefined;
}

function idleError(): Error {
  return Object.assign(new Error('no data within the idle timeout'), { code: IDLE_TIMEOUT_CODE });
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ABORT_ERR', cause: signal.reason });
}

function resetError(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

/** Parses a response head; undefined when it is not one this reader handles. */
function parseHead(head: string): { status: number; headers: Record<string, string> } | undefined {
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    if (line.startsWith(' ') || line.startsWith('\t')) return undefined;
    const i = line.indexOf(':');
    if (i <= 0) return undefined;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    if (name in headers) {
      if (name === 'content-length' && headers[name] !== value) return undefined;
      headers[name] = `${headers[name]}, ${value}`;
    } else headers[name] = value;
  }
  return { status: Number(m[1]), headers };
}

/**
 * Sends `GET url` on a new connection (closed after the body) and resolves with the response;
 * its body is undefined (and the connection closed) when this reader does not handle it, and
 * the whole result is undefined for a head it cannot parse. Rejects on a connection error, the
 * idle timeout (ERR_HTTP_IDLE_TIMEOUT) or abort before the head arrived.
 */
export function rawBlobGet(url: URL, o: RawBlobOptions): Promise<RawBlobResponse | undefined> {
  if (o.signal?.aborted) return Promise.reject(abortError(o.signal));
  for (const [k, v] of Object.entries(o.headers)) {
    if (/[\r\n:]/.test(k) || /[\r\n]/.test(v)) return Promise.reject(new Error(`invalid header ${k}`));
  }
  return new Promise<RawBlobResponse | undefined>((resolve, reject) => {
    const sockBuf = Buffer.allocUnsafe(SOCKET_BUFFER);
    const headParts: Buffer[] = [];
    let headLen = 0;
    let body: RawBody | undefined;
    let settled = false;
    const settle = (r: RawBlobResponse | undefined, err?: Error) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve(r);
    };
    const fail = (err: Error) => {
      cleanup();
      socket.destroy();
      if (body) body.fail(err);
      else settle(undefined, err);
    };
    const onAbort = () => fail(abortError(o.signal!));
    const cleanup = () => o.signal?.removeEventListener('abort', onAbort);
    const onread = (n: number, buf: Buffer): boolean => {
      if (body) return body.onSocketData(buf, n);
      headParts.push(Buffer.from(buf.subarray(0, n)));
      headLen += n;
      const all = Buffer.concat(headParts, headLen);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        if (headLen > MAX_HEAD) fail(new Error('response head too large'));
        return headLen <= MAX_HEAD;
      }
      const head = parseHead(all.toString('latin1', 0, end));
      const cl = head?.headers['content-length'];
      if (
        !head ||
        (head.status !== 200 && head.status !== 206) ||
        head.headers['transfer-encoding'] !== undefined ||
        cl === undefined ||
        !/^\d{1,15}$/.test(cl)
      ) {
        cleanup();
        socket.destroy();
        settle(head && { status: head.status, headers: head.headers, body: undefined });
        return false;
      }
      body = new RawBody(socket, Number(cl), () => {
        cleanup();
        socket.destroy();
      });
      settle({ status: head.status, headers: head.headers, body });
      const rest = all.subarray(end + 4);
      return rest.length > 0 ? body.onSocketData(rest, rest.length) : body.wantsData();
    };
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const common = { host, port, onread: { buffer: sockBuf, callback: onread } };
    const socket: Socket =
      url.protocol === 'https:'
        ? tlsConnect({
            ...common,
            secureContext: o.secureContext,
            rejectUnauthorized: o.rejectUnauthorized,
            ...(isIP(host) ? {} : { servername: host }),
          })
        : plainConnect(common);
    const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
    for (const [k, v] of Object.entries(o.headers)) lines.push(`${k}: ${v}`);
    lines.push('connection: close', '', '');
    socket.write(lines.join('\r\n'));
    socket.setTimeout(o.idleMs, () => fail(idleError()));
    socket.on('error', fail);
    // The server closed before the head, or before the whole body.
    socket.on('close', () => fail(resetError()));
    o.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The body of a rawBlobGet answer: exactly Content-Length bytes. Either pulled with `readInto`
 * (no allocation per read) or consumed as a Readable (64 KiB Buffers), not both. Fails with
 * code ECONNRESET when the connection ends early.
 */
export class RawBody extends Readable {
  private remaining: number;
  /** Copies of data that arrived while no reader had room (the socket buffer is reused). */
  private readonly overflow: Buffer[] = [];
  private target:
    | { buf: Buffer; filled: number; resolve: (n: number) => void; reject: (e: Error) => void }
    | undefined;
  private failure: Error | undefined;
  private done = false;

  constructor(
    private readonly socket: Socket,
    readonly contentLength: number,
    private readonly close: () => void,
  ) {
    super({ highWaterMark: READ_CHUNK });
    this.remaining = contentLength;
    if (contentLength === 0) this.finish();
  }

  /** True when the socket should keep reading. */
  wantsData(): boolean {
    return this.target !== undefined && !this.done;
  }

  /** Socket data (`n` bytes of `buf`, which is reused after this call). */
  onSocketData(buf: Buffer, n: number): boolean {
    if (this.done) return false;
    const take = Math.min(n, this.remaining);
    let off = 0;
    const t = this.target;
    if (t) {
      const k = Math.min(take, t.buf.length - t.filled);
      buf.copy(t.buf, t.filled, 0, k);
      t.filled += k;
      off = k;
    }
    if (off < take) this.overflow.push(Buffer.from(buf.subarray(off, take)));
    this.remaining -= take;
    if (this.remaining === 0) this.finish();
    else if (t && t.filled === t.buf.length) this.settleTarget();
    return this.wantsData();
  }

  private finish(): void {
    this.done = true;
    this.close();
    this.settleTarget();
  }

  private settleTarget(): void {
    const t = this.target;
    if (!t) return;
    this.target = undefined;
    t.resolve(t.filled);
  }

  /** Ends the body with `err` (connection error, idle timeout, abort, early close). */
  fail(err: Error): void {
    if (this.done || this.failure) return;
    this.failure = err;
    const t = this.target;
    this.target = undefined;
    // Bytes already copied are delivered; the next readInto reports the failure.
    if (t && t.filled > 0) t.resolve(t.filled);
    else if (t) t.reject(err);
    if (!this.readableEnded) this.destroy(err);
  }

  /**
   * Copies the next bytes of the body into `buf`; resolves with the count once `buf` is full or
   * the body ended (0: nothing left). One call at a time.
   */
  readInto(buf: Buffer): Promise<number> {
    if (this.failure) return Promise.reject(this.failure);
    let filled = 0;
    while (filled < buf.length && this.overflow.length > 0) {
      const head = this.overflow[0]!;
      const k = Math.min(head.length, buf.length - filled);
      head.copy(buf, filled, 0, k);
      filled += k;
      if (k === head.length) this.overflow.shift();
      else this.overflow[0] = head.subarray(k);
    }
    if (filled === buf.length || this.done) return Promise.resolve(filled);
    return new Promise<number>((resolve, reject) => {
      this.target = { buf, filled, resolve, reject };
      this.socket.resume();
    });
  }

  override _read(): void {
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    this.readInto(buf).then(
      (n) => {
        if (n > 0) this.push(n === buf.length ? buf : buf.subarray(0, n));
        if (this.done && this.overflow.length === 0 && !this.readableEnded) this.push(null);
      },
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.done) {
      this.done = true;
      this.close();
    }
    const t = this.target;
    this.target = undefined;
    if (t) t.reject(err ?? resetError());
    cb(err);
  }
}
