import { type FSWatcher, watch } from 'node:fs';

/**
 * Resolves when `check()` returns a value other than undefined. Wakes on inotify events in
 * `dir` (conmon's exit files appear there) and at least every `pollMs`, so it also works when
 * the change comes from another process or a filesystem without inotify.
 */
export async function waitFor<T>(
  check: () => Promise<T | undefined>,
  opts: { dir?: string; pollMs?: number; signal?: AbortSignal; timeoutMs?: number; onTimeout?: () => Error },
): Promise<T> {
  const pollMs = opts.pollMs ?? 100;
  let wake: (() => void) | undefined;
  let watcher: FSWatcher | undefined;
  let dirty = false;
  // The watch is set up only once a check failed (often the first already succeeds: wait() on
  // an exited container), then the condition is checked again so nothing between is missed.
  let watching = !opts.dir;
  const startWatching = () => {
    watching = true;
    try {
      watcher = watch(opts.dir!, { persistent: false }, () => {
        dirty = true;
        wake?.();
      });
      watcher.on('error', () => {});
    } catch {}
  };
  const deadline = opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs;
  try {
    for (;;) {
      opts.signal?.throwIfAborted();
      dirty = false;
      const v = await check();
      if (v !== undefined) return v;
      if (!watching) {
        startWatching();
        continue;
      }
      if (deadline !== undefined && Date.now() >= deadline) {
        throw opts.onTimeout?.() ?? new Error('timed out');
      }
      if (dirty) continue;
      const remaining =
        deadline === undefined ? pollMs : Math.max(1, Math.min(pollMs, deadline - Date.now()));
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', done);
          wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, remaining);
        wake = done;
        opts.signal?.addEventListener('abort', done, { once: true });
      });
    }
  } finally {
    watcher?.close();
  }
}
