import { describe, expect, it, vi } from 'vitest';
import {
  type ProbeResult,
  probeCriu,
  probeCrun,
  probeOverlay,
  probeRoot,
  probeRunc,
  skipUnless,
} from './index.js';

// The host's own answers, printed so a CI log shows what this machine can do.
const results = await Promise.all([probeRoot(), probeOverlay(), probeRunc(), probeCrun(), probeCriu()]);
for (const r of results) console.warn(`probe ${r.name}: ${r.ok ? 'ok' : `unavailable: ${r.reason}`}`);

// A probe that always fails, to show what a skip looks like.
const missing: ProbeResult = { name: 'unobtainium', ok: false, reason: 'no unobtainium driver on this host' };
const warnings: string[] = [];
const realWarn = console.warn.bind(console);
// Records what skipUnless prints and still prints it.
const spy = vi.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => {
  warnings.push(args.join(' '));
  realWarn(...args);
});
const gate = skipUnless({ name: 'root', ok: true, reason: '' }, missing);
spy.mockRestore();

describe('host capability probes', () => {
  it('answer with ok and a reason for every probe', () => {
    for (const r of results) {
      expect(typeof r.ok).toBe('boolean');
      expect(r.ok ? r.reason : r.reason.length > 0).toBe(r.ok ? '' : true);
    }
  });

  it('are cached per process', async () => {
    expect(await probeOverlay()).toBe(results[1]);
  });

  it('report why CRIU cannot be used when it cannot', async () => {
    const criu = await probeCriu();
    if (!criu.ok) expect(criu.reason).toMatch(/criu/);
  });

  it('skipUnless prints the reason of each failed probe and skips', () => {
    expect(gate.skip).toBe(true);
    expect(gate.reason).toBe('unobtainium: no unobtainium driver on this host');
    expect(warnings).toEqual([
      'skipping tests that need unobtainium: unobtainium: no unobtainium driver on this host',
    ]);
  });

  it('skipUnless does not skip or print when every probe is ok', () => {
    const log = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const g = skipUnless({ name: 'a', ok: true, reason: '' });
      expect(g.skip).toBe(false);
      expect(log).not.toHaveBeenCalled();
    } finally {
      log.mockRestore();
    }
  });
});

// Reported as one skipped test: the body would fail if it ran.
gate.describe('a suite gated on a missing capability', () => {
  it('is skipped, not run', () => {
    expect.fail('skipUnless() let a test run although its probe failed');
  });
});
