import { closeSync, openSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { OciRuntimeError } from '../errors.js';
import type { Engine } from './engine.js';
import type { ContainerRecord } from './record.js';

/**
 * conmon's attach socket is SOCK_SEQPACKET (one message per read, a 1-byte stream prefix on what
 * conmon sends: 2 = stdout, 3 = stderr (1 would be stdin); what we send is raw stdin). Node's `net` only speaks
 * SOCK_STREAM, so the socket comes from `node-unix-socket` (N-API, prebuilt binaries shipped in
 * its npm platform packages; nothing compiled or downloaded at install). It is loaded on first
 * attach only.
 */
const STDOUT = 2;
const STDERR = 3;

export interface AttachOptions {
  /** Sent to the container's stdin (the container must be created with `stdin: true`). */
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  /** Detaches (closes the socket) when aborted; the container keeps running. */
  signal?: AbortSignal;
}

export interface AttachSession {
  /** Resolves when conmon closes the socket (the container exited) or after detach(). */
  closed: Promise<void>;
  /** Closes our side; the container keeps running. */
  detach(): void;
}

interface SeqpacketSocketLike {
  on(ev: 'data', cb: (b: Buffer) => void): void;
  on(ev: 'end' | 'close' | 'connect', cb: () => void): void;
  on(ev: 'error', cb: (e: Error) => void): void;
  connect(path: string, cb?: () => void): void;
  write(buf: Buffer, offset?: number, length?: number, cb?: () => void): void;
  end(cb?: () => void): void;
  destroy(): void;
}

export function attachToContainer(
  engine: Engine,
  record: ContainerRecord,
  o: AttachOptions,
): Promise<AttachSession> {
  return attachToSocket(engine.layout.bundle(record.id), record.id, o);
}

/**
 * Connects to the attach socket conmon created in `dir` (a container bundle or an exec session
 * directory) and pumps stdin in and stdout/stderr out.
 */
export async function attachToSocket(
  dir: string,
  containerId: string,
  o: AttachOptions,
): Promise<AttachSession> {
  const record = { id: containerId };
  let mod: { SeqpacketSocket: new () => SeqpacketSocketLike };
  try {
    mod = (await import('node-unix-socket')) as unknown as typeof mod;
  } catch (err) {
    throw new OciRuntimeError(
      'attach needs the node-unix-socket package (SOCK_SEQPACKET) and its prebuilt binary',
      {
        containerId: record.id,
        cause: err,
      },
    );
  }
  // The socket path can exceed sockaddr_un's 108 bytes: connect through a directory fd, as podman does.
  const dirFd = openSync(dir, 'r');
  const sock = new mod.SeqpacketSocket();
  try {
    await new Promise<void>((resolve, reject) => {
      sock.on('error', reject);
      sock.connect(`/proc/self/fd/${dirFd}/attach`, () => resolve());
    });
  } catch (err) {
    sock.destroy();
    closeSync(dirFd);
    throw new OciRuntimeError(`cannot attach to ${record.id.slice(0, 12)}: ${(err as Error).message}`, {
      containerId: record.id,
      cause: err,
    });
  }
  closeSync(dirFd);
  let finished = false;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => {
    resolveClosed = r;
  });
  const finish = () => {
    if (finished) return;
    finished = true;
    o.stdin?.off('data', onStdin);
    o.stdin?.off('end', onStdinEnd);
    o.signal?.removeEventListener('abort', detach);
    resolveClosed();
  };
  const detach = () => {
    sock.destroy();
    finish();
  };
  sock.on('data', (buf: Buffer) => {
    if (buf.length < 1) return;
    const payload = buf.subarray(1);
    if (buf[0] === STDOUT) o.stdout?.write(payload);
    else if (buf[0] === STDERR) o.stderr?.write(payload);
  });
  sock.on('error', () => finish());
  sock.on('end', () => {
    sock.destroy();
    finish();
  });
  sock.on('close', finish);
  const onStdin = (chunk: Buffer | string) => {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    // conmon reads stdin in 8 KiB messages
    for (let i = 0; i < b.length; i += 8192) sock.write(b.subarray(i, i + 8192));
  };
  const onStdinEnd = () => sock.end();
  o.stdin?.on('data', onStdin);
  o.stdin?.on('end', onStdinEnd);
  o.signal?.addEventListener('abort', detach, { once: true });
  return { closed, detach };
}
