import { describe, expect, it } from 'vitest';
import { InvalidNetworkInputError, PortInUseError } from '../errors.js';
import { resolvePorts } from './ports.js';

describe('port mappings', () => {
  it('expands ranges and picks free ports', async () => {
    const r = await resolvePorts(
      [{ containerPort: 80 }, { containerPort: 53, protocol: 'udp', range: 3, hostIp: '127.0.0.1' }],
      [],
    );
    expect(r).toHaveLength(4);
    expect(r[0]!.hostPort).toBeGreaterThan(0);
    expect(r.slice(1).map((p) => p.containerPort)).toEqual([53, 54, 55]);
    expect(r[3]!.hostPort - r[1]!.hostPort).toBe(2);
  });
  it('refuses bad input and clashes with typed errors', async () => {
    await expect(resolvePorts([{ containerPort: 0 }], [])).rejects.toBeInstanceOf(InvalidNetworkInputError);
    await expect(resolvePorts([{ containerPort: 80, hostIp: 'localhost' }], [])).rejects.toBeInstanceOf(
      InvalidNetworkInputError,
    );
    await expect(resolvePorts([{ containerPort: 65535, range: 2 }], [])).rejects.toBeInstanceOf(
      InvalidNetworkInputError,
    );
    const taken = [{ hostIp: '', hostPort: 40999, containerPort: 80, protocol: 'tcp' as const }];
    await expect(
      resolvePorts([{ containerPort: 80, hostPort: 40999, hostIp: '127.0.0.1' }], taken),
    ).rejects.toBeInstanceOf(PortInUseError);
    // Same port, other protocol: fine.
    expect(await resolvePorts([{ containerPort: 80, hostPort: 40999, protocol: 'udp' }], taken)).toHaveLength(
      1,
    );
    await expect(
      resolvePorts(
        [
          { containerPort: 80, hostPort: 41000 },
          { containerPort: 81, hostPort: 41000 },
        ],
        [],
      ),
    ).rejects.toBeInstanceOf(PortInUseError);
  });
});
