import { defaultSpec } from './defaults.js';
import type { Linux, Process, Spec, SpecOpt } from './types.js';

/**
 * Build a spec by applying `opts` in order to a deep copy of `base` (Podman's defaults when
 * `base` is undefined; see {@link defaultSpec}). `base` is never modified. A failing opt rejects
 * the returned promise with its error; no partial spec escapes.
 */
export async function generateSpec(base: Spec | undefined, ...opts: SpecOpt[]): Promise<Spec> {
  const spec = base ? structuredClone(base) : defaultSpec();
  for (const opt of opts) await opt(spec);
  return spec;
}

/** Compose several opts into one (applied in order). */
export function composeOpts(...opts: SpecOpt[]): SpecOpt {
  return async (spec) => {
    for (const opt of opts) await opt(spec);
  };
}

/** The spec's `process`, created with root and cwd `/` when absent. */
export function ensureProcess(spec: Spec): Process {
  spec.process ??= { user: { uid: 0, gid: 0 }, cwd: '/' };
  return spec.process;
}

/** The spec's `linux` section, created when absent. */
export function ensureLinux(spec: Spec): Linux {
  spec.linux ??= {};
  return spec.linux;
}
