import { describe, expect, it } from 'vitest';
import { DEFAULT_RLIMITS } from './defaults.js';
import { generateSpec } from './generate.js';
import { clampRlimit, hostRlimits, parseProcLimits, withDefaultRlimits, withRlimits } from './rlimits.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max stack size            8388608              unlimited            bytes     
Max processes             96368                96368                processes 
Max open files            1024                 20000                files     
Max locked memory         8388608              8388608              bytes     
Max nice priority         0                    0                    
`;

describe('rlimits never exceed the host', () => {
  it('parses /proc/self/limits', () => {
    const m = parseProcLimits(LIMITS);
    expect(m.get('RLIMIT_NOFILE')).toEqual({ soft: 1024, hard: 20000 });
    expect(m.get('RLIMIT_NPROC')).toEqual({ soft: 96368, hard: 96368 });
    expect(m.get('RLIMIT_CPU')).toEqual({ soft: Number.POSITIVE_INFINITY, hard: Number.POSITIVE_INFINITY });
    expect(m.get('RLIMIT_NICE')).toEqual({ soft: 0, hard: 0 });
    expect(hostRlimits().get('RLIMIT_NOFILE')?.hard).toBeGreaterThan(0);
  });

  it("Podman's defaults (1048576) are clamped to the host's hard limits", async () => {
    const host = parseProcLimits(LIMITS);
    const spec = await generateSpec(undefined, withDefaultRlimits({ host }));
    expect(spec.process?.rlimits).toEqual([
      { type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 },
      { type: 'RLIMIT_NPROC', soft: 96368, hard: 96368 },
    ]);
    // Unlimited on the host: Podman's values as they are.
    const free = parseProcLimits(
      'x\nMax open files            unlimited            unlimited            files\n',
    );
    expect(clampRlimit(DEFAULT_RLIMITS[0]!, free)).toEqual(DEFAULT_RLIMITS[0]);
    // With this process's real limits: never above them.
    const real = await generateSpec(undefined, withDefaultRlimits());
    for (const r of real.process?.rlimits ?? []) {
      expect(r.hard).toBeLessThanOrEqual(hostRlimits().get(r.type)?.hard ?? Number.POSITIVE_INFINITY);
      expect(r.soft).toBeLessThanOrEqual(r.hard);
    }
  });

  it('explicit limits: kept when allowed, refused above the host, defaults fill the rest', async () => {
    const host = parseProcLimits(LIMITS);
    const spec = await generateSpec(
      undefined,
      withRlimits([{ name: 'nofile', soft: 512, hard: 4096 }], { host }),
      withDefaultRlimits({ host }),
    );
    expect(spec.process?.rlimits).toEqual([
      { type: 'RLIMIT_NOFILE', soft: 512, hard: 4096 },
      { type: 'RLIMIT_NPROC', soft: 96368, hard: 96368 },
    ]);
    await expect(
      generateSpec(undefined, withRlimits([{ name: 'RLIMIT_NOFILE', soft: 1, hard: 1048576 }], { host })),
    ).rejects.toMatchObject({ code: 'ERR_RLIMIT_EXCEEDS_HOST' });
    expect(() => withRlimits([{ name: 'nofiles', soft: 1, hard: 1 }])).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_SPEC_OPTION' }),
    );
    expect(() => withRlimits([{ name: 'nofile', soft: 2, hard: 1 }])).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_SPEC_OPTION' }),
    );
  });
});
