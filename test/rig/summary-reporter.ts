/**
 * Vitest reporter that ends the run with one machine-readable line, alone on its line:
 *   `N passed, N failed, N skipped`
 * CI reads it. "failed" counts failed tests, plus each test file that failed outside its tests
 * (a failing beforeAll/afterAll such as the leak check, or an import error) and each unhandled
 * error, so a run with a leak never reads "0 failed". "skipped" includes todo tests.
 */
import type { Reporter, TestModule } from 'vitest/node';

export function summarize(
  modules: ReadonlyArray<TestModule>,
  unhandledErrors: number,
): { passed: number; failed: number; skipped: number } {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const m of modules) {
    let failedHere = 0;
    for (const t of m.children.allTests()) {
      const state = t.result().state;
      if (state === 'passed') passed++;
      else if (state === 'failed') failedHere++;
      else if (state === 'skipped') skipped++;
    }
    if (failedHere === 0 && (m.state() === 'failed' || m.errors().length > 0)) failedHere = 1;
    failed += failedHere;
  }
  return { passed, failed: failed + unhandledErrors, skipped };
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    const s = summarize(modules, unhandledErrors.length);
    process.stdout.write(`\n${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped\n`);
  }
}
