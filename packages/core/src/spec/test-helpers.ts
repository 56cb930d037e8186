/**
 * Test-only helpers (not exported by the package): the runtime-spec JSON schema validator and a
 * throwaway busybox rootfs.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import Ajv04Import from 'ajv-draft-04';
import { specSchemasDir } from '@libpod-ts/test-rig';

// ajv-draft-04 is CJS with `exports.default`; under NodeNext the default import is the module.
const Ajv04 = ((Ajv04Import as unknown as { default?: unknown }).default ?? Ajv04Import) as new (
  opts: object,
) => {
  addSchema(schema: object, key: string): void;
  getSchema(
    key: string,
  ): ((v: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null };
};

export function runtimeSchemaDir(): string {
  return join(specSchemasDir(), 'runtime-spec');
}

function dropIds(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropIds);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === 'id' && typeof x === 'string') continue;
      out[k] = dropIds(x);
    }
    return out;
  }
  return v;
}

export type Validate = (config: unknown) => string[];

/** A validator for `config-schema.json`, or the reason it cannot be built (folder absent). */
export function loadRuntimeSpecValidator(dir = runtimeSchemaDir()): Validate | { missing: string } {
  if (!existsSync(join(dir, 'config-schema.json')))
    return { missing: `runtime-spec schemas not found in ${dir}` };
  const ajv = new Ajv04({ strict: false, allErrors: true, validateFormats: false });
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    ajv.addSchema(dropIds(JSON.parse(readFileSync(join(dir, f), 'utf8'))) as object, f);
  }
  const fn = ajv.getSchema('config-schema.json');
  return (config) =>
    fn(config) ? [] : (fn.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'invalid'}`);
}

/** /bin/busybox plus applet symlinks in `<dir>/bin`, and the usual mount points. */
export async function makeBusyboxRootfs(
  rootfs: string,
  applets: readonly string[] = ['sh', 'true', 'id', 'cat', 'ls', 'pwd'],
) {
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  // Mount points exist, as in real images: a root mapped by a user namespace cannot create them.
  for (const d of ['etc', 'proc', 'sys', 'dev', 'run', 'tmp'])
    await mkdir(join(rootfs, d), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  for (const a of applets) await symlink('busybox', join(rootfs, 'bin', a));
}
