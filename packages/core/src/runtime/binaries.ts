import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { BinaryNotFoundError } from '../errors.js';

/** Debian packages that provide the binaries the lifecycle drives. */
const DEBIAN_PACKAGE: Record<string, string> = { runc: 'runc', crun: 'crun', conmon: 'conmon' };

/** Where distributions put these binaries when PATH does not list them (podman looks in the same places). */
const USUAL_DIRS = [
  '/usr/local/bin',
  '/usr/local/sbin',
  '/usr/bin',
  '/usr/sbin',
  '/bin',
  '/sbin',
  '/usr/libexec/podman',
  '/usr/lib/podman',
];

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds an executable by name on PATH, then in the usual system directories; an absolute or
 * relative path is checked as given. Throws BinaryNotFoundError naming the Debian package.
 */
export function findBinary(nameOrPath: string, env: NodeJS.ProcessEnv = process.env): string {
  if (nameOrPath.includes('/')) {
    if (isExecutableFile(nameOrPath))
      return isAbsolute(nameOrPath) ? nameOrPath : join(process.cwd(), nameOrPath);
    throw new BinaryNotFoundError(nameOrPath, DEBIAN_PACKAGE[baseName(nameOrPath)] ?? baseName(nameOrPath), [
      nameOrPath,
    ]);
  }
  const dirs = [...(env.PATH ?? '').split(delimiter).filter(Boolean), ...USUAL_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, nameOrPath);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new BinaryNotFoundError(nameOrPath, DEBIAN_PACKAGE[nameOrPath] ?? nameOrPath, USUAL_DIRS);
}

function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}
