import { existsSync } from 'node:fs';
import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Engine, Integrations } from './containers/engine.js';
import { ContainerStore } from './containers/store.js';
import { EventLog } from './events/events.js';
import { findBinary } from './runtime/binaries.js';
import { Layout } from './runtime/layout.js';
import { OciRuntime } from './runtime/oci-runtime.js';
import { ProcessSpawner } from './runtime/spawner.js';
import { NetworkIntegration, type NetworkSettings } from './network-integration.js';
import { StorageIntegration, type StorageSettings } from './storage-integration.js';

export interface EngineOptions {
  root: string;
  runRoot: string;
  /** OCI runtime name or path (default `runc`). */
  runtime?: string;
  /** conmon name or path (default `conmon`). */
  conmon?: string;
  /**
   * The exit hook conmon runs when a container exits: `true` (default) finds the hook shipped in
   * this package (dist/bin/exit-hook.js, run with this Node), `false` disables it (the program
   * then records exits itself when it looks), or an explicit argv prefix (the id is appended).
   */
  exitHook?: boolean | string[];
  integrations?: Integrations;
  /** Image store for containers from images (see StorageIntegration); absent: rootfs directories only. */
  storage?: StorageSettings;
  /** Bridge networking (see NetworkIntegration); absent: `bridge` containers are refused at init. */
  network?: NetworkSettings;
}

function moduleDir(): string | undefined {
  try {
    return dirname(fileURLToPath(import.meta.url));
  } catch {
    return typeof __dirname === 'string' ? __dirname : undefined;
  }
}

/** The built exit hook: next to the bundle (dist/index.js -> dist/bin/), or the package's dist from sources. */
export function findExitHook(): string | undefined {
  const dir = moduleDir();
  if (!dir) return undefined;
  const candidates = [
    join(dir, 'bin', 'exit-hook.js'),
    join(dir, '..', 'bin', 'exit-hook.js'),
    join(dir, '..', 'dist', 'bin', 'exit-hook.js'),
  ];
  return candidates.find((c) => existsSync(c));
}

/** Builds the lifecycle engine; shared by Libpod.open and the exit hook so both act alike. */
export async function createEngine(
  o: EngineOptions,
): Promise<Engine & { storage?: StorageIntegration; network?: NetworkIntegration }> {
  const layout = new Layout(o.root, o.runRoot);
  await Promise.all([
    mkdir(o.root, { recursive: true, mode: 0o700 }),
    mkdir(o.runRoot, { recursive: true, mode: 0o700 }),
  ]);
  const runtime = new OciRuntime(o.runtime ?? 'runc', layout.runtimeRoot);
  const conmonPath = findBinary(o.conmon ?? 'conmon');
  const store = new ContainerStore(layout);
  const events = new EventLog(layout.eventsFile);
  await Promise.all([
    store.init(),
    events.init(),
    mkdir(layout.runtimeRoot, { recursive: true, mode: 0o700 }),
  ]);
  let exitCommand: Engine['exitCommand'];
  if (Array.isArray(o.exitHook)) {
    const prefix = o.exitHook;
    exitCommand = (r) => [...prefix, r.id];
  } else if (o.exitHook !== false) {
    const hook = findExitHook();
    if (hook) {
      const storageArgs = o.storage
        ? [
            '--storage-root',
            o.storage.root,
            '--storage-run-root',
            o.storage.runRoot,
            '--storage-driver',
            o.storage.driver,
          ]
        : [];
      const networkArgs = o.network
        ? [
            '--network-root',
            o.network.root,
            '--network-run-root',
            o.network.runRoot,
            ...(o.network.defaultNetwork
              ? ['--network-default', JSON.stringify(o.network.defaultNetwork)]
              : []),
          ]
        : [];
      exitCommand = (r) => [
        process.execPath,
        hook,
        '--root',
        o.root,
        '--run-root',
        o.runRoot,
        '--runtime',
        runtime.path,
        '--conmon',
        conmonPath,
        ...(r.rootfsSource === 'storage' ? storageArgs : []),
        ...(r.network?.mode === 'bridge' ? networkArgs : []),
        r.id,
      ];
    }
  }
  const storage = o.storage ? new StorageIntegration(o.storage) : undefined;
  const network = o.network ? new NetworkIntegration(o.network) : undefined;
  const integrations: Integrations = {
    ...(storage?.integrations ?? {}),
    ...(network?.integrations ?? {}),
    ...(o.integrations ?? {}),
  };
  const engine = {
    layout,
    store,
    runtime,
    conmonPath,
    events,
    exitCommand,
    integrations,
    spawner: new ProcessSpawner(join(o.runRoot, 'spawn')),
    storage,
    network,
  };
  network?.bindEngine(engine);
  return engine;
}

/**
 * Exit files of containers removed with `rm` stay a while so a waiter can still read the exit
 * code (as Podman keeps exit codes of removed containers); older ones are pruned here.
 */
export async function pruneExitFiles(engine: Engine, maxAgeMs = 5 * 60_000): Promise<void> {
  const names = await readdir(engine.layout.exitDir).catch(() => [] as string[]);
  const now = Date.now();
  await Promise.all(
    names.map(async (id) => {
      if (existsSync(engine.layout.recordFile(id))) return;
      const st = await stat(join(engine.layout.exitDir, id)).catch(() => undefined);
      if (st && now - st.mtimeMs > maxAgeMs) await unlink(join(engine.layout.exitDir, id)).catch(() => {});
    }),
  );
}
