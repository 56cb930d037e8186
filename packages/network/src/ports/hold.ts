import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { PortInUseError } from '../errors.js';
import { parseIp } from '../ip/cidr.js';
import type { ResolvedPort } from './ports.js';

/**
 * Host ports held open while a container lives, as podman (rootful, CNI) does: the engine binds
 * every published host port itself (TCP listening, UDP bound; the portmap DNAT rules send the
 * traffic past these sockets to the container) and hands the sockets to the container's
 * long-lived parent (conmon), so no host process can take a published port from the running
 * container. The reservation lives as long as the process holding the file descriptors, not the
 * program that bound them.
 */
export interface HeldPorts {
  /** Raw file descriptors, one per held port, in `ports` order; for a child process's stdio. */
  readonly fds: readonly number[];
  readonly ports: readonly ResolvedPort[];
  /** Closes this process's copies (idempotent); a child that inherited them keeps holding. */
  close(): void;
}

/** The raw fd of a bound Node socket (libuv handle); undefined where Node does not expose it. */
function fdOf(s: Server | DgramSocket): number | undefined {
  const direct = (s as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof direct === 'number' && direct >= 0) return direct;
  for (const sym of Object.getOwnPropertySymbols(s)) {
    const v = (s as unknown as Record<symbol, { handle?: { fd?: unknown } } | undefined>)[sym];
    const fd = v?.handle?.fd;
    if (typeof fd === 'number' && fd >= 0) return fd;
  }
  return undefined;
}

function bindOne(p: ResolvedPort): Promise<Server | DgramSocket> {
  const host = p.hostIp || '0.0.0.0';
  return new Promise((resolve, reject) => {
    if (p.protocol === 'tcp') {
      const s = createServer();
      s.once('error', reject);
      s.listen({ host, port: p.hostPort, exclusive: true }, () => resolve(s));
    } else {
      const s = createSocket(parseIp(host)?.family === 6 ? 'udp6' : 'udp4');
      s.once('error', (e) => {
        s.close();
        reject(e);
      });
      s.bind({ address: host, port: p.hostPort, exclusive: true }, () => resolve(s));
    }
  });
}

/** Socket inodes bound to a local port (LISTEN for tcp), from /proc/net. */
async function inodesOf(port: number, protocol: 'tcp' | 'udp'): Promise<Set<string>> {
  const out = new Set<string>();
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const f of [protocol, `${protocol}6`]) {
    const text = await readFile(`/proc/net/${f}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length < 10 || !c[1]?.endsWith(`:${hex}`)) continue;
      if (protocol === 'tcp' && c[3] !== '0A') continue;
      out.add(c[9]!);
    }
  }
  return out;
}

/** The fd of `pid` holding one of `inodes`, if any. */
async function fdHolding(pid: number, inodes: Set<string>): Promise<number | undefined> {
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m && inodes.has(m[1]!)) return Number(fd);
  }
  return undefined;
}

/**
 * True when the port is held by one of `pids` (a container's previous conmon during a restart
 * from its exit hook, and the hook itself, which inherited conmon's descriptors).
 */
export async function heldByAny(p: ResolvedPort, pids: readonly number[]): Promise<boolean> {
  if (!pids.length) return false;
  const inodes = await inodesOf(p.hostPort, p.protocol);
  for (const pid of pids) if ((await fdHolding(pid, inodes)) !== undefined) return true;
  return false;
}

/**
 * Binds every port and keeps the sockets. A port another process holds fails the whole call with
 * PortInUseError (nothing stays bound) — unless one of `heldBy` holds it: then, if this process
 * is one of them (an exit hook that inherited conmon's descriptors), its descriptor is handed on;
 * otherwise the port is left to its holder (and not reserved for the new container).
 */
export async function holdPorts(
  ports: readonly ResolvedPort[],
  o: { heldBy?: readonly number[] } = {},
): Promise<HeldPorts> {
  const sockets: (Server | DgramSocket)[] = [];
  const fds: number[] = [];
  const kept: ResolvedPort[] = [];
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    for (const s of sockets) {
      try {
        s.close();
      } catch {}
    }
  };
  try {
    for (const p of ports) {
      let s: Server | DgramSocket;
      try {
        s = await bindOne(p);
      } catch (err) {
        if (o.heldBy?.length && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          const inodes = await inodesOf(p.hostPort, p.protocol);
          const own = o.heldBy.includes(process.pid) ? await fdHolding(process.pid, inodes) : undefined;
          if (own !== undefined) {
            fds.push(own);
            kept.push(p);
            continue;
          }
          if (await heldByAny(p, o.heldBy)) continue;
        }
        throw new PortInUseError(p.hostIp, p.hostPort, p.protocol, 'bound by a host process', { cause: err });
      }
      sockets.push(s);
      const fd = fdOf(s);
      // Without a descriptor (a Node that hides it) the port is probed, not reserved.
      if (fd !== undefined) {
        fds.push(fd);
        kept.push(p);
      }
    }
  } catch (err) {
    close();
    throw err;
  }
  return { fds, ports: kept, close };
}
