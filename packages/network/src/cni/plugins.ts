import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { PluginNotFoundError } from '../errors.js';

/** Where Debian (`containernetworking-plugins`) and upstream installs put the plugins. */
export const DEFAULT_PLUGIN_DIRS = ['/usr/lib/cni', '/opt/cni/bin', '/usr/libexec/cni', '/usr/local/lib/cni'];

const found = new Map<string, string>();

/** Finds a plugin binary by type; PluginNotFoundError names it and the package to install. */
export async function findPlugin(type: string, dirs: readonly string[]): Promise<string> {
  // A type is a file name, never a path: "../../bin/sh" must not be executable through a conflist.
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(type)) throw new PluginNotFoundError(type, [...dirs]);
  const key = `${dirs.join(':')}/${type}`;
  const hit = found.get(key);
  if (hit) return hit;
  for (const d of dirs) {
    const p = join(d, type);
    try {
      await access(p, constants.X_OK);
      found.set(key, p);
      return p;
    } catch {
      // next dir
    }
  }
  throw new PluginNotFoundError(type, [...dirs]);
}
