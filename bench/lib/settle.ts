/**
 * Waits until no live process with one of `names` (as /proc/<pid>/comm shows it; zombies do not
 * count) is left, so a timed run never shares the host with background work the previous run
 * of the other side left behind (conmon runs an exit command after the container exits, which
 * may outlive the command that was timed). A guard: in the runs recorded in RESULTS.md it found
 * nothing to wait for (podman's cleanup had finished when `podman run --rm` returned).
 */
import { readdirSync, readFileSync } from 'node:fs';

function running(names: ReadonlySet<string>): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // "pid (comm) state ...": comm may hold spaces or parentheses, so split at the last ')'.
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const state = stat.slice(close + 2, close + 3);
      if (names.has(comm) && state !== 'Z') found.push(`${comm}[${pid}]`);
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
