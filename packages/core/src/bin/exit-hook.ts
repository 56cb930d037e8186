/**
 * The exit hook: conmon runs it (as `--exit-command`) when a container's process exits, so a
 * container is cleaned up even when no program has the store open. Not a user CLI.
 *
 *   node exit-hook.js --root R --run-root RR --runtime RUNTIME --conmon CONMON <container-id>
 *
 * It records the exit code and OOM flag, deletes the runtime state, unmounts, tears down
 * networking, writes the `died` event, then removes `rm` containers or applies the restart
 * policy. Everything is idempotent with the program doing the same (see handleExit).
 * Always exits 0: conmon ignores the status and a failure is recorded in the container's state.
 */
import { handleExit } from '../containers/engine.js';
import { createEngine } from '../engine-factory.js';

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function main(argv: string[]): Promise<void> {
  const id = argv[argv.length - 1];
  const root = arg(argv, '--root');
  const runRoot = arg(argv, '--run-root');
  if (!id || !/^[0-9a-f]{64}$/.test(id) || !root || !runRoot) return;
  const storageRoot = arg(argv, '--storage-root');
  const storageRunRoot = arg(argv, '--storage-run-root');
  const driver = arg(argv, '--storage-driver');
  const networkRoot = arg(argv, '--network-root');
  const networkRunRoot = arg(argv, '--network-run-root');
  const defaultNetwork = arg(argv, '--network-default');
  const engine = await createEngine({
    ...(networkRoot && networkRunRoot
      ? {
          network: {
            root: networkRoot,
            runRoot: networkRunRoot,
            ...(defaultNetwork ? { defaultNetwork: JSON.parse(defaultNetwork) } : {}),
          },
        }
      : {}),
    root,
    runRoot,
    runtime: arg(argv, '--runtime'),
    conmon: arg(argv, '--conmon'),
    ...(storageRoot && storageRunRoot && (driver === 'overlay' || driver === 'vfs')
      ? { storage: { root: storageRoot, runRoot: storageRunRoot, driver } }
      : {}),
  });
  try {
    await handleExit(engine, id, { applyPolicies: true });
  } finally {
    engine.spawner?.close();
    await engine.storage?.close();
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`libpod-ts exit hook: ${(err as Error)?.stack ?? err}\n`);
    process.exit(0);
  },
);
