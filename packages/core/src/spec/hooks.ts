/**
 * OCI hooks from hooks.d directories, in the oci-hooks(5) 1.0.0 format:
 *
 *   { "version": "1.0.0",
 *     "hook": { "path": "/abs/exe", "args": [...], "env": [...], "timeout": 5 },
 *     "when": { "always": true, "annotations": { "key-regex": "value-regex" },
 *               "commands": ["regex on process.args[0]"], "hasBindMounts": true },
 *     "stages": ["prestart", "poststop", ...] }
 *
 * Directories are given in increasing precedence: a file in a later directory masks the file of
 * the same name in an earlier one (Podman: /usr/share/containers/oci/hooks.d, then
 * /etc/containers/oci/hooks.d). Hooks are injected in file-name order. `when` conditions are
 * ANDed (1.0.0; 0.1.0's "or" is not supported): every condition that is set must match, and at
 * least one must be set. A missing directory is skipped; an invalid file is an error naming it.
 */
import { readdirSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { HookConfigError } from '../errors.js';
import type { HookStage, Spec, SpecOpt } from './types.js';

export const DEFAULT_HOOKS_DIRS: readonly string[] = [
  '/usr/share/containers/oci/hooks.d',
  '/etc/containers/oci/hooks.d',
];

const STAGES = [
  'prestart',
  'createRuntime',
  'createContainer',
  'startContainer',
  'poststart',
  'poststop',
] as const;

export const HookDefinitionSchema = z.object({
  version: z.literal('1.0.0'),
  hook: z.object({
    path: z.string().refine((p) => path.isAbsolute(p), 'must be an absolute path'),
    args: z.array(z.string()).optional(),
    env: z.array(z.string().regex(/^[^=]+=/, 'must be KEY=VALUE')).optional(),
    timeout: z.number().int().min(1).optional(),
  }),
  when: z
    .object({
      always: z.boolean().optional(),
      annotations: z.record(z.string(), z.string()).optional(),
      commands: z.array(z.string()).optional(),
      hasBindMounts: z.boolean().optional(),
    })
    .refine(
      (w) =>
        w.always !== undefined ||
        w.annotations !== undefined ||
        w.commands !== undefined ||
        w.hasBindMounts !== undefined,
      'at least one condition must be set',
    ),
  stages: z.array(z.enum(STAGES)).min(1),
});
export type HookDefinition = z.infer<typeof HookDefinitionSchema>;

/** A hook definition with the file it came from. */
export interface LoadedHook {
  file: string;
  definition: HookDefinition;
}

function compile(file: string, re: string): RegExp {
  try {
    return new RegExp(re);
  } catch (err) {
    throw new HookConfigError(file, `invalid regular expression ${JSON.stringify(re)}`, { cause: err });
  }
}

/** Read every `*.json` of the directories; later directories mask earlier ones by file name. */
export async function loadHooks(dirs: readonly string[] = DEFAULT_HOOKS_DIRS): Promise<LoadedHook[]> {
  const byName = new Map<string, string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      // Inline: every create lists the (usually absent) default dirs; a pool round trip each
      // costs more than the syscall.
      names = readdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new HookConfigError(dir, 'cannot read the hooks directory', { cause: err });
    }
    for (const n of names) if (n.endsWith('.json')) byName.set(n, path.join(dir, n));
  }
  const out: LoadedHook[] = [];
  for (const name of [...byName.keys()].sort()) {
    const file = byName.get(name)!;
    let json: unknown;
    try {
      const text = await readFile(file, 'utf8');
      if (text.length > 1 << 20) throw new Error('larger than 1 MiB');
      json = JSON.parse(text);
    } catch (err) {
      throw new HookConfigError(file, 'cannot read or parse it', { cause: err });
    }
    const r = HookDefinitionSchema.safeParse(json);
    if (!r.success) {
      const i = r.error.issues[0];
      throw new HookConfigError(file, `${i?.path.join('.') || '(root)'}: ${i?.message}`, { cause: r.error });
    }
    for (const re of [
      ...Object.entries(r.data.when.annotations ?? {}).flat(),
      ...(r.data.when.commands ?? []),
    ]) {
      compile(file, re);
    }
    const st = await stat(r.data.hook.path).catch(() => undefined);
    if (!st?.isFile()) throw new HookConfigError(file, `hook path ${r.data.hook.path} is not a file`);
    out.push({ file, definition: r.data });
  }
  return out;
}

/** Whether a hook's `when` matches the spec (all set conditions must hold). */
export function hookMatches(def: HookDefinition, spec: Spec): boolean {
  const w = def.when;
  const checks: boolean[] = [];
  if (w.always !== undefined) checks.push(w.always);
  if (w.annotations !== undefined) {
    const ann = Object.entries(spec.annotations ?? {});
    checks.push(
      Object.entries(w.annotations).every(([kre, vre]) => {
        const k = new RegExp(kre);
        const v = new RegExp(vre);
        return ann.some(([ak, av]) => k.test(ak) && v.test(av));
      }),
    );
  }
  if (w.commands !== undefined) {
    const cmd = spec.process?.args?.[0] ?? '';
    checks.push(w.commands.some((re) => new RegExp(re).test(cmd)));
  }
  if (w.hasBindMounts !== undefined) {
    const has = (spec.mounts ?? []).some(
      (m) => m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind'),
    );
    checks.push(has === w.hasBindMounts);
  }
  return checks.length > 0 && checks.every(Boolean);
}

/**
 * Inject the matching hooks into the spec's hook lists (after any already there). Put it after
 * every opt that changes args, annotations or mounts: the conditions look at the spec as it is.
 */
export function withHooks(hooks: readonly LoadedHook[]): SpecOpt {
  return (spec) => {
    for (const { definition: d } of hooks) {
      if (!hookMatches(d, spec)) continue;
      spec.hooks ??= {};
      for (const stage of d.stages as HookStage[]) {
        const h: { path: string; args?: string[]; env?: string[]; timeout?: number } = { path: d.hook.path };
        if (d.hook.args) h.args = [...d.hook.args];
        if (d.hook.env) h.env = [...d.hook.env];
        if (d.hook.timeout) h.timeout = d.hook.timeout;
        const list = spec.hooks[stage] ?? [];
        list.push(h);
        spec.hooks[stage] = list;
      }
    }
  };
}

/** Load hooks from directories and inject the matching ones (see {@link loadHooks}). */
export function withHooksFromDirs(dirs: readonly string[] = DEFAULT_HOOKS_DIRS): SpecOpt {
  return async (spec) => {
    await withHooks(await loadHooks(dirs))(spec);
  };
}
