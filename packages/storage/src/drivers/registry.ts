/**
 * Driver construction by name. The table is a plain constant: importing registers nothing
 * globally and starts nothing; a driver only touches the host when its methods are called.
 */
import { StorageError } from '../errors.js';
import { OverlayDriver } from './overlay/driver.js';
import type { Driver, DriverName, DriverOptions } from './types.js';
import { VfsDriver } from './vfs/driver.js';

const FACTORIES: Readonly<Record<DriverName, (opts: DriverOptions) => Driver>> = {
  overlay: (opts) => new OverlayDriver(opts),
  vfs: (opts) => new VfsDriver(opts),
};

export const DRIVER_NAMES: readonly DriverName[] = ['overlay', 'vfs'];

/**
 * Create driver `name` rooted at `opts.home`. Does not probe: call `driver.probe()` to learn
 * whether it can run here (and why not) before using it.
 */
export function createDriver(name: DriverName, opts: DriverOptions): Driver {
  const f = FACTORIES[name];
  if (!f) throw new StorageError('ERR_UNKNOWN_DRIVER', `unknown storage driver ${JSON.stringify(name)}`);
  return f(opts);
}
