/**
 * On-disk layout of a store (every path below `root` / `runRoot` belongs to the store):
 *
 *   <root>/
 *     db/                  LevelDB with every record (records.ts); its LOCK file is the store's
 *                          inter-process lock (db.ts)
 *     <driver>/            the driver's home (`overlay/` or `vfs/`): layer files only
 *     images/<imageId>/    image blobs: `config` (the config JSON, digest = image ID) and
 *                          `manifest` (exact bytes); written before the record, removed after it
 *     tarsplit/<layerId>   what rebuilds the layer's original tar from its files (tarsplit.ts)
 *     tmp/                 staging for image blob directories (renamed into images/)
 *   <runRoot>/
 *     storage-boot         boot id at the last open: when it differs, every mount record is stale
 *                          (runRoot is normally a tmpfs, so after a reboot the file is simply gone)
 *     storage-probe-<drv>  boot id of the last successful driver probe (probed once per boot)
 *
 * Mount refcounts are records in the database stamped with the boot id, so they change
 * atomically with the other records and go stale at reboot without anyone cleaning them.
 */
import { join } from 'node:path';

export interface Layout {
  root: string;
  runRoot: string;
  db: string;
  driverHome: string;
  images: string;
  tmp: string;
  tarsplit: string;
  bootMarker: string;
}

export function layoutFor(root: string, runRoot: string, driver: string): Layout {
  return {
    root,
    runRoot,
    db: join(root, 'db'),
    driverHome: join(root, driver),
    images: join(root, 'images'),
    tmp: join(root, 'tmp'),
    tarsplit: join(root, 'tarsplit'),
    bootMarker: join(runRoot, 'storage-boot'),
  };
}

export function imageDir(layout: Layout, id: string): string {
  return join(layout.images, id);
}

export function tarSplitPath(layout: Layout, layerId: string): string {
  return join(layout.tarsplit, layerId);
}
