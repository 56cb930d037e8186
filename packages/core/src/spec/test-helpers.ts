/**
 * Test-only helpers (not exported by the package): the runtime-spec JSON schema validator and a
 * throwaway busybox rootfs.
 */
import { copyFile, mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { specSchemasDir } from '@libpod-ts/test-rig';

export { loadRuntimeSpecValidator, type RuntimeSpecValidate as Validate } from '@libpod-ts/test-rig';

export function runtimeSchemaDir(): string {
  return join(specSchemasDir(), 'runtime-spec');
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
