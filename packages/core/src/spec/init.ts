/** Finding an init binary to run as PID 1 (`--init`). */
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { InitNotFoundError } from '../errors.js';

/** Where Podman's packages and distributions put catatonit and tini; catatonit first (Podman's default). */
export const INIT_CANDIDATES: readonly string[] = [
  '/usr/libexec/podman/catatonit',
  '/usr/libexec/catatonit/catatonit',
  '/usr/bin/catatonit',
  '/usr/local/bin/catatonit',
  '/usr/bin/tini-static',
  '/usr/bin/tini',
  '/sbin/tini',
  '/usr/local/bin/tini',
];

/**
 * The first executable init binary: `explicit` when given (it must exist), else the candidates,
 * then catatonit/tini on PATH. Static binaries are preferred by the order above; a dynamically
 * linked one only works if the image has its libraries.
 */
export async function findInitBinary(explicit?: string): Promise<string> {
  const pathDirs = (process.env.PATH ?? '').split(':').filter((d) => path.isAbsolute(d));
  const candidates = explicit
    ? [explicit]
    : [
        ...INIT_CANDIDATES,
        ...pathDirs.flatMap((d) => [
          path.join(d, 'catatonit'),
          path.join(d, 'tini-static'),
          path.join(d, 'tini'),
        ]),
      ];
  for (const c of candidates) {
    if (!path.isAbsolute(c)) continue;
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {}
  }
  throw new InitNotFoundError(explicit ? [explicit] : INIT_CANDIDATES);
}
