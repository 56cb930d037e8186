/**
 * Loaded by vitest before every test file (vitest.config.ts `setupFiles`). Around each file it takes
 * the host test lock, snapshots the host, and after the file's own afterAll hooks ran, fails the
 * file naming every mount, netns, veth, process, runc state entry, iptables rule, CNI IP
 * reservation or rig temp dir that appeared and is still there (see leaks.ts).
 *
 * LIBPOD_TS_LEAK_CHECK=warn only prints the leaks; =off disables the check and the lock.
 * LIBPOD_TS_LEAK_LOCK=0 skips the host lock (for a vitest started by a test that holds it).
 */
import { afterAll, beforeAll } from 'vitest';
import { acquireHostLock, type HostLock, LOCK_PATH } from './host-lock.js';
import { findLeaks, formatLeaks, type HostSnapshot, snapshotHost } from './leaks.js';

const mode = process.env.LIBPOD_TS_LEAK_CHECK ?? 'fail';
// Long enough for another test file; a long benchmark holding the lock only turns this file's check into warnings.
const LOCK_WAIT_MS = 3 * 60_000;

let before: HostSnapshot | undefined;
let lock: HostLock | null = null;
let lockMissing = false;

if (mode !== 'off') {
  // Hooks from setup files wrap the file's own hooks: this beforeAll runs first, the afterAll last.
  beforeAll(async () => {
    if (process.env.LIBPOD_TS_LEAK_LOCK !== '0') {
      lock = await acquireHostLock(LOCK_WAIT_MS, () =>
        console.warn(
          `leak check: waiting for ${LOCK_PATH}: another test file or benchmark on this host holds it`,
        ),
      );
      lockMissing = lock === null;
    }
    if (lockMissing)
      console.warn(`leak check: could not take ${LOCK_PATH} in time; reporting leaks as warnings only`);
    before = await snapshotHost();
  }, LOCK_WAIT_MS + 30_000);

  afterAll(async () => {
    try {
      if (!before) return;
      const leaks = await findLeaks(before);
      if (leaks.length === 0) return;
      const msg = `this test file left ${leaks.length} thing(s) on the host:\n${formatLeaks(leaks)}`;
      if (mode === 'warn' || lockMissing) console.warn(`leak check: ${msg}`);
      else throw new Error(`leak check: ${msg}`);
    } finally {
      await lock?.release();
    }
  });
}
