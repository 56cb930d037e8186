import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { z } from 'zod';
import { InvalidNetworkInputError, PortInUseError } from '../errors.js';
import { parseIp } from '../ip/cidr.js';
import { heldByAny } from './hold.js';

export const PortMappingSchema = z.object({
  /** Host address to listen on; '' or absent means every address. */
  hostIp: z.string().default(''),
  /** 0 or absent: a free port (or run of `range` ports) is chosen and reported. */
  hostPort: z.number().int().min(0).max(65535).default(0),
  containerPort: z.number().int().min(1).max(65535),
  protocol: z.enum(['tcp', 'udp']).default('tcp'),
  /** Number of consecutive ports mapped, starting at hostPort/containerPort. */
  range: z.number().int().min(1).max(65535).default(1),
});
export type PortMapping = z.input<typeof PortMappingSchema>;

/** One host port -> container port rule, as reported and as passed to the portmap plugin. */
export interface ResolvedPort {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

/** The portmap plugin's runtimeConfig entry form. */
export function toCniPortMappings(ports: ResolvedPort[]): Record<string, unknown>[] {
  return ports.map((p) => ({
    hostPort: p.hostPort,
    containerPort: p.containerPort,
    protocol: p.protocol,
    hostIP: p.hostIp,
  }));
}

/** Tries to bind the port the way a server would; true when nobody holds it. */
function canBind(hostIp: string, port: number, protocol: 'tcp' | 'udp'): Promise<boolean> {
  const host = hostIp || (parseIp(hostIp)?.family === 6 ? '::' : '0.0.0.0');
  return new Promise((resolve) => {
    if (protocol === 'tcp') {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
    } else {
      const s = createSocket(parseIp(host)?.family === 6 ? 'udp6' : 'udp4');
      s.once('error', () => {
        s.close();
        resolve(false);
      });
      s.bind({ address: host, port, exclusive: true }, () => s.close(() => resolve(true)));
    }
  });
}

function freePort(hostIp: string, protocol: 'tcp' | 'udp'): Promise<number> {
  const host = hostIp || '0.0.0.0';
  return new Promise((resolve, reject) => {
    if (protocol === 'tcp') {
      const s = createServer();
      s.once('error', reject);
      s.listen({ host, port: 0, exclusive: true }, () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    } else {
      const s = createSocket(parseIp(host)?.family === 6 ? 'udp6' : 'udp4');
      s.once('error', reject);
      s.bind({ address: host, port: 0, exclusive: true }, () => {
        const port = s.address().port;
        s.close(() => resolve(port));
      });
    }
  });
}

const key = (p: { hostIp: string; hostPort: number; protocol: string }) => `${p.protocol}/${p.hostPort}`;

/**
 * Validates mappings, expands ranges, picks free host ports for hostPort 0, and refuses a host
 * port that another attachment maps (`taken`) or that a host socket holds (PortInUseError).
 * Two mappings conflict when protocol and port match and either host IP is the wildcard or both
 * are equal.
 */
export async function resolvePorts(
  input: PortMapping[],
  taken: ResolvedPort[],
  /** Processes whose hold on a port does not count (see holdPorts). */
  o: { heldBy?: readonly number[] } = {},
): Promise<ResolvedPort[]> {
  const out: ResolvedPort[] = [];
  const clashes = (p: ResolvedPort, list: ResolvedPort[]) =>
    list.find((q) => key(q) === key(p) && (q.hostIp === '' || p.hostIp === '' || q.hostIp === p.hostIp));
  for (const [i, raw] of input.entries()) {
    const r = PortMappingSchema.safeParse(raw);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new InvalidNetworkInputError(
        `portMappings.${i}.${issue?.path.join('.') ?? ''}`,
        issue?.message ?? 'invalid',
        { cause: r.error },
      );
    }
    const m = r.data;
    if (m.hostIp !== '' && !parseIp(m.hostIp)) {
      throw new InvalidNetworkInputError(
        `portMappings.${i}.hostIp`,
        `${JSON.stringify(m.hostIp)} is not an IP address`,
      );
    }
    if (m.containerPort + m.range - 1 > 65535 || (m.hostPort && m.hostPort + m.range - 1 > 65535)) {
      throw new InvalidNetworkInputError(`portMappings.${i}.range`, 'range runs past port 65535');
    }
    let base = m.hostPort;
    if (base === 0) {
      for (let attempt = 0; attempt < 20 && base === 0; attempt++) {
        const cand = await freePort(m.hostIp, m.protocol);
        if (cand + m.range - 1 > 65535) continue;
        let ok = true;
        for (let k = 0; k < m.range && ok; k++) {
          const p = { hostIp: m.hostIp, hostPort: cand + k, containerPort: 0, protocol: m.protocol };
          ok =
            !clashes(p, [...taken, ...out]) && (k === 0 || (await canBind(m.hostIp, cand + k, m.protocol)));
        }
        if (ok) base = cand;
      }
      if (base === 0)
        throw new PortInUseError(m.hostIp, 0, m.protocol, `no free run of ${m.range} port(s) found`);
    } else {
      for (let k = 0; k < m.range; k++) {
        const p: ResolvedPort = {
          hostIp: m.hostIp,
          hostPort: base + k,
          containerPort: m.containerPort + k,
          protocol: m.protocol,
        };
        const c = clashes(p, [...taken, ...out]);
        if (c)
          throw new PortInUseError(
            m.hostIp,
            p.hostPort,
            m.protocol,
            'mapped by another container or mapping',
          );
        if (!(await canBind(m.hostIp, p.hostPort, m.protocol)) && !(await heldByAny(p, o.heldBy ?? []))) {
          throw new PortInUseError(m.hostIp, p.hostPort, m.protocol, 'bound by a host process');
        }
      }
    }
    for (let k = 0; k < m.range; k++) {
      out.push({
        hostIp: m.hostIp,
        hostPort: base + k,
        containerPort: m.containerPort + k,
        protocol: m.protocol,
      });
    }
  }
  return out;
}
