/**
 * Podman as a reference tool for benchmarks (never a dependency of the library). On this host
 * podman 4.3 needs two settings to run containers at all: no default ulimits (raising RLIMIT_NOFILE
 * needs CAP_SYS_RESOURCE, which is missing) and runc instead of crun (crun refuses hybrid cgroups).
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export const PODMAN_CONTAINERS_CONF = '/etc/containers/containers.conf';

export const PODMAN_REFERENCE_CONF = `# Written by libpod-ts's bench rig (test/rig/podman.ts) so podman can serve as a reference here:
# no default ulimits (CAP_SYS_RESOURCE is missing) and runc (crun refuses hybrid cgroups).
[containers]
default_ulimits = []

[engine]
runtime = "runc"
`;

/**
 * Writes the reference containers.conf if (and only if) no file exists at `path`; an existing
 * file, whatever it says, is left alone. Returns whether it wrote.
 */
export async function ensurePodmanReference(
  path = PODMAN_CONTAINERS_CONF,
): Promise<{ path: string; written: boolean }> {
  if (existsSync(path)) return { path, written: false };
  await mkdir(dirname(path), { recursive: true });
  try {
    await writeFile(path, PODMAN_REFERENCE_CONF, { flag: 'wx', mode: 0o644 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { path, written: false };
    throw err;
  }
  return { path, written: true };
}
