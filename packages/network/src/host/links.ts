import { readdir } from 'node:fs/promises';
import { run } from '../util/exec.js';

/** Names of the host's network interfaces (from /sys, no subprocess). */
export async function hostLinks(): Promise<Set<string>> {
  return new Set(await readdir('/sys/class/net').catch(() => [] as string[]));
}

/** Deletes a host interface if it exists; true when one was deleted. */
export async function deleteLink(name: string, signal?: AbortSignal): Promise<boolean> {
  if (!(await hostLinks()).has(name)) return false;
  const r = await run('ip', ['link', 'del', name], { signal });
  return r.code === 0;
}
