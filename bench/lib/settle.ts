/**
 * Waits until no process with one of `names` (as /proc/<pid>/comm shows it) is left, so a timed
 * run does not share the host with background work the previous run left behind. podman's
 * conmon runs `podman container cleanup` after `podman run --rm` has returned; without this,
 * that cleanup lands in the next timed run, which in an A B A B bench is ours.
 */
import { readdirSync, readFileSync } from 'node:fs';

function running(names: ReadonlySet<string>): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (names.has(comm)) found.push(`${comm}[${pid}]`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Resolves once none of `names` runs (polling every 5 ms), or after `timeoutMs` with a warning. */
export async function settleProcesses(names: readonly string[], timeoutMs = 5000): Promise<void> {
  const set = new Set(names);
  const until = Date.now() + timeoutMs;
  for (;;) {
    const left = running(set);
    if (left.length === 0) return;
    if (Date.now() > until) {
      console.warn(`  settle: still running after ${timeoutMs} ms: ${left.join(', ')}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
