import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runBenchmark } from '../../bench/lib/harness.js';
import { makeTempDir, removeTempDir } from './index.js';

describe('bench harness', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTempDir('bench-harness');
  });
  afterAll(async () => {
    await removeTempDir(dir);
  });
  const quiet = () => vi.spyOn(console, 'log').mockImplementation(() => {});

  it('alternates ours and reference after the warm-up, preparing before every run', async () => {
    const order: string[] = [];
    const log = quiet();
    const resultsFile = join(dir, 'RESULTS.md');
    try {
      const r = await runBenchmark({
        name: 'order check',
        ours: async () => {
          order.push('A');
        },
        reference: async () => {
          order.push('B');
          await new Promise((res) => setTimeout(res, 5));
        },
        prepare: async () => {
          order.push('p');
        },
        rounds: 3,
        warmup: 1,
        dropCaches: false,
        hostLock: false,
        resultsFile,
        notes: 'unit test',
      });
      expect(order.join('')).toBe('pApB'.repeat(4));
      expect(r.ours.timesMs).toHaveLength(3);
      expect(r.reference.timesMs).toHaveLength(3);
      expect(r.reference.minMs).toBeGreaterThanOrEqual(4);
      expect(r.ratio).toBeLessThan(1);
      const md = await readFile(resultsFile, 'utf8');
      expect(md).toContain('## order check');
      expect(md).toMatch(/- command: `.*npx tsx /);
      expect(md).toMatch(/- date: \d{4}-\d\d-\d\dT/);
      expect(md).toMatch(/- host: .*(Debian|Linux)/);
      expect(md).toContain('| ours |');
      expect(md).toMatch(/ratio ours \/ reference \(medians\): \*\*\d+\.\d\d\*\*/);
    } finally {
      log.mockRestore();
    }
  });

  it('times a reference command and records a failing side instead of throwing', async () => {
    const log = quiet();
    const resultsFile = join(dir, 'RESULTS-2.md');
    try {
      const r = await runBenchmark({
        name: 'failure check',
        ours: async () => {
          throw new Error('ours broke');
        },
        reference: { cmd: ['sleep', '0.02'] },
        rounds: 2,
        warmup: 0,
        dropCaches: false,
        hostLock: false,
        resultsFile,
      });
      expect(r.ours.error).toBe('ours broke');
      expect(r.reference.timesMs).toHaveLength(2);
      expect(r.reference.minMs).toBeGreaterThanOrEqual(15);
      expect(Number.isNaN(r.ratio)).toBe(true);
      const md = await readFile(resultsFile, 'utf8');
      expect(md).toContain('| ours | FAILED |');
      expect(md).toContain('ours failed: ours broke');
      expect(md).toContain('`sleep 0.02`');
    } finally {
      log.mockRestore();
    }
  });
});
