import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { ContainerHasDependentsError, ContainerStateError, InvalidOptionsError } from '../errors.js';
import { isProcessAlive } from '../util/fs.js';
import type { Engine } from './engine.js';
import type { ContainerRecord } from './record.js';

/**
 * The two network modes that join a namespace someone else made (podman's `--network
 * container:<id|name>` and `--network ns:<path>`). Nothing here creates or removes a namespace:
 * the network package is not involved, and teardown has nothing to do.
 *
 *   container:<id>  the spec's network namespace is the target's, resolved at init (the target
 *                   must be running then); /etc/hosts and /etc/resolv.conf are the target's
 *                   files, bind-mounted, so they change with it (its peers, its dns options).
 *   ns:<path>       the spec's network namespace is the path (checked to be a netns at create);
 *                   hosts and resolv.conf are the container's own, as for `none`.
 */

const NSFS_MAGIC = 0x6e736673;

export type JoinedNetwork = { kind: 'container'; target: string } | { kind: 'ns'; path: string };

/** The joined mode of a `network` option or a record's NetworkMode; undefined for the others. */
export function joinedNetwork(mode: unknown): JoinedNetwork | undefined {
  if (typeof mode !== 'string') return undefined;
  if (mode.startsWith('container:')) return { kind: 'container', target: mode.slice('container:'.length) };
  if (mode.startsWith('ns:')) return { kind: 'ns', path: mode.slice('ns:'.length) };
  return undefined;
}

/**
 * Create-time check and normalisation: `container:<name>` becomes `container:<full id>` (the
 * target must exist: ContainerNotFoundError), `ns:<path>` must name a network namespace file
 * (an nsfs mount such as /run/netns/<name> or /proc/<pid>/ns/net): InvalidOptionsError.
 */
export async function normaliseJoinedNetwork(engine: Engine, network: string): Promise<string> {
  const j = joinedNetwork(network);
  if (!j) return network;
  if (j.kind === 'container') return `container:${(await engine.store.resolve(j.target)).id}`;
  const fs = await statfs(j.path).catch(() => undefined);
  if (fs?.type !== NSFS_MAGIC) {
    throw new InvalidOptionsError('container options', [
      {
        path: 'network',
        message: fs ? `${j.path} is not a network namespace (not an nsfs mount)` : `${j.path} does not exist`,
      },
    ]);
  }
  return network;
}

/** The target's hosts and resolv.conf (its userdata files), for the joiner's bind mounts. */
export function sharedEtcFiles(containerDir: string): { hosts: string; resolvConf: string } {
  return {
    hosts: join(containerDir, 'userdata', 'hosts'),
    resolvConf: join(containerDir, 'userdata', 'resolv.conf'),
  };
}

const LIVE = new Set(['created', 'running', 'paused']);

/**
 * Init-time: the path of the network namespace a `container:` joiner enters: the target's
 * netns file when the network package made one (bridge), else its process's namespace.
 * The target must have a live process (podman starts it first; we refuse with a typed error).
 */
export async function joinedNetnsPath(engine: Engine, r: ContainerRecord): Promise<string | undefined> {
  const j = joinedNetwork(r.hostConfig.NetworkMode);
  if (!j) return undefined;
  if (j.kind === 'ns') return j.path;
  const target = await engine.store.resolve(j.target);
  if (!LIVE.has(target.state.status) || !target.state.pid || !isProcessAlive(target.state.pid)) {
    throw new ContainerStateError(target.id, target.state.status, `join the network namespace of`);
  }
  return target.network?.netnsPath ?? `/proc/${target.state.pid}/ns/net`;
}

/**
 * The containers that joined `id`'s network namespace (`container:<id>`), podman's dependents:
 * `id` cannot be removed while one exists, in any state (ContainerHasDependentsError). Stopping
 * it is allowed (its joiners lose their network until it runs again, as with podman).
 */
export async function assertNoDependents(engine: Engine, id: string): Promise<void> {
  const dependents = await dependentsOf(engine, id);
  if (dependents.length) throw new ContainerHasDependentsError(id, dependents);
}

/** Full ids of the containers that joined `id`'s network namespace (reads every record). */
export async function dependentsOf(engine: Engine, id: string): Promise<string[]> {
  const mode = `container:${id}`;
  return (await engine.store.list())
    .filter((r) => r.id !== id && r.hostConfig.NetworkMode === mode)
    .map((r) => r.id);
}

/** The containers `r` depends on (inspect's `Dependencies`): the target of `container:<id>`. */
export function dependenciesOf(r: ContainerRecord): string[] {
  const j = joinedNetwork(r.hostConfig.NetworkMode);
  return j?.kind === 'container' ? [j.target] : [];
}
