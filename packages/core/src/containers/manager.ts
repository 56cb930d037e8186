import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import {
  ContainerNameConflictError,
  ContainerNotFoundError,
  ContainerStateError,
  CoreTimeoutError,
  InvalidOptionsError,
  type OciRuntimeError,
} from '../errors.js';
import { isProcessAlive } from '../util/fs.js';
import { type AttachOptions, type AttachSession, attachToContainer } from './attach.js';
import { conmonCreatePending } from '../runtime/conmon.js';
import {
  conmonOptionsFor,
  type Engine,
  emit,
  handleExit,
  initContainer,
  readExitCode,
  removeContainer,
} from './engine.js';
import {
  type ExecOptions,
  type ExecResult,
  type ExecStream,
  execInContainer,
  execStreamInContainer,
} from './exec.js';
import { type ContainerInspect, inspectRecord } from './inspect.js';
import { type ContainerSummary, ListOptions, listRecords } from './list.js';
import { type LogLine, LogsOptions, readAllLogLines, readLogs, splitStreams } from './logs.js';
import { newContainerId, randomName } from './names.js';
import { cancelPrelaunched, holdMount, holdPrelaunched, takeHeldMount } from './prelaunch.js';
import { assertNoDependents, dependentsOf, normaliseJoinedNetwork } from './netns-join.js';
import {
  ContainerCreateOptions,
  ContainerName,
  type ParsedCreateOptions,
  parseOptions,
  parseRestartPolicy,
} from './options.js';
import type { ContainerRecord, ContainerStatus } from './record.js';
import { type ContainerStats, readStats } from './stats.js';
import { type TopResult, top } from './top.js';
import { waitFor } from './wait.js';
import { cgroupsPathFor } from '../spec/opts/linux.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What a spec builder receives: the validated options, the rootfs, the new id. */
export interface SpecBuildInput {
  id: string;
  options: ParsedCreateOptions;
  rootfs: string;
  /** The image's OCI config (`config` of the image config JSON), for image containers. */
  imageConfig?: Record<string, unknown>;
  cgroupsPath: string;
  hostname: string;
}

/** Builds the OCI runtime config for a new container (seam to `@libpod-ts/core/spec`). */
export type SpecBuilder = (input: SpecBuildInput) => Promise<Record<string, unknown>>;

/** Creates the rootfs of an image container (seam to storage + image). */
export interface ImageProvider {
  /**
   * Resolves the image, creates the container's writable layer and returns its id, the image id
   * and config. MUST leave nothing behind when it throws.
   */
  createRootfs(
    image: string,
    containerId: string,
    /** volatile: the layer need not survive a crash (overlay `volatile`), for `rm` containers. */
    opts?: { volatile?: boolean },
  ): Promise<{ storageId: string; imageId: string; imageConfig: Record<string, unknown>; rootfs: string }>;
}

export interface RunResult {
  id: string;
  name: string;
  exitCode: number;
  stdout: string;
  stderr: string;
}

export type WaitCondition =
  | 'configured'
  | 'created'
  | 'running'
  | 'paused'
  | 'stopped'
  | 'exited'
  | 'removed';

const ACTIVE: readonly ContainerStatus[] = ['created', 'running', 'paused', 'stopped'];

/**
 * `lp.containers`: the container lifecycle. Every method takes a name, a full id or a unique id
 * prefix. State is re-read from disk and reconciled with conmon's exit files on each call, so
 * several programs (and the exit hook) can drive the same containers.
 */
export class Containers {
  constructor(
    private readonly engine: Engine,
    /** Builds the OCI runtime config; Libpod passes the spec generator (`specGeneratorBuilder`). */
    private readonly specBuilder: SpecBuilder,
    private readonly images?: ImageProvider,
    /** Aborted (reason: LibpodClosedError) when the Libpod closes: ends pending waits and follows. */
    private readonly closing?: AbortSignal,
  ) {}

  /** The caller's signal joined with the Libpod's closing signal. */
  private withClosing(signal: AbortSignal | undefined): AbortSignal | undefined {
    if (!this.closing) return signal;
    return signal ? AbortSignal.any([signal, this.closing]) : this.closing;
  }

  /** Records a new container (status `configured`); nothing runs until start/init. */
  async create(
    options: ContainerCreateOptions,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ id: string; name: string }> {
    return this.createInternal(options, opts.signal, undefined);
  }

  private async createInternal(
    options: ContainerCreateOptions,
    signal: AbortSignal | undefined,
    waiterPid: number | undefined,
    prelaunch = false,
  ): Promise<{ id: string; name: string }> {
    const o = parseOptions(ContainerCreateOptions, 'container options', options);
    o.network = await normaliseJoinedNetwork(this.engine, o.network);
    signal?.throwIfAborted();
    const id = newContainerId();
    const name = o.name ?? randomName();
    // run(): conmon loads while the spec and records are made (not with published ports: its
    // conmon also holds their sockets, bound only at init).
    const early = prelaunch && !(o.network === 'bridge' && (o.ports?.length ?? 0) > 0);
    if (early) await this.prelaunchConmon(id, name, o, waiterPid, signal);
    try {
      return await this.createParsed(o, id, name, waiterPid, prelaunch);
    } catch (err) {
      if (early) {
        await cancelPrelaunched(id);
        rmSync(this.engine.layout.containerDir(id), { recursive: true, force: true });
      }
      throw err;
    }
  }

  /**
   * Starts the container's conmon before it has a record, held on its start pipe (it runs nothing
   * until init releases it; init uses it only when its arguments match what the final record
   * gives). conmon opens the log file at start: the container directory must exist.
   */
  private async prelaunchConmon(
    id: string,
    name: string,
    o: ParsedCreateOptions,
    waiterPid: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const provisional = {
      id,
      name,
      logPath: this.engine.layout.logFile(id),
      tty: o.tty,
      stdin: o.stdin,
      autoRemove: o.rm,
      rootfsSource: o.rootfs !== undefined ? 'directory' : 'storage',
      state: { ...(waiterPid ? { waiterPid } : {}) },
    } as ContainerRecord;
    mkdirSync(this.engine.layout.containerDir(id), { recursive: true, mode: 0o700 });
    holdPrelaunched(id, conmonCreatePending(await conmonOptionsFor(this.engine, provisional, signal)));
  }

  private async createParsed(
    o: ParsedCreateOptions,
    id: string,
    initialName: string,
    waiterPid: number | undefined,
    /** run(): the rootfs stays mounted for the init that follows (see holdMount). */
    keepMounted = false,
  ): Promise<{ id: string; name: string }> {
    let name = initialName;
    const hostname = o.hostname ?? id.slice(0, 12);
    const cgroupsPath = cgroupsPathFor(id);
    let rootfs: string;
    let storage: Awaited<ReturnType<ImageProvider['createRootfs']>> | undefined;
    if (o.rootfs !== undefined) {
      rootfs = resolvePath(o.rootfs);
      const st = await stat(rootfs).catch(() => undefined);
      if (!st?.isDirectory()) {
        throw new InvalidOptionsError('container options', [
          { path: 'rootfs', message: `${rootfs} is not a directory` },
        ]);
      }
    } else {
      if (!this.images) {
        throw new InvalidOptionsError('container options', [
          { path: 'image', message: 'this Libpod has no image store; open it with storage, or pass rootfs' },
        ]);
      }
      // An `rm` container's layer goes after one run: mounted volatile, as podman does.
      storage = await this.images.createRootfs(o.image!, id, { volatile: o.rm });
      rootfs = storage.rootfs;
    }
    try {
      const spec =
        o.ociConfig !== undefined
          ? { ...o.ociConfig, root: { path: rootfs, readonly: o.readOnly } }
          : await this.specBuilder({
              id,
              options: o,
              rootfs,
              imageConfig: storage?.imageConfig,
              cgroupsPath,
              hostname,
            });
      const proc = (spec.process ?? {}) as { args?: string[]; env?: string[]; cwd?: string };
      const record: ContainerRecord = {
        version: 1,
        id,
        name,
        created: new Date().toISOString(),
        ...(o.image ? { image: o.image, imageId: storage?.imageId } : {}),
        rootfs,
        rootfsSource: storage ? 'storage' : 'directory',
        ...(storage ? { storageId: storage.storageId } : {}),
        command: o.command ?? [],
        entrypoint: o.entrypoint ?? [],
        env: proc.env ?? [],
        workingDir: proc.cwd ?? '/',
        user: o.user ?? '',
        hostname,
        tty: o.tty,
        stdin: o.stdin,
        labels: o.labels,
        annotations: o.annotations,
        stopSignal: o.stopSignal === undefined ? 'SIGTERM' : String(o.stopSignal),
        stopTimeout: o.stopTimeout,
        restartPolicy: parseRestartPolicy(o.restartPolicy),
        autoRemove: o.rm,
        logPath: this.engine.layout.logFile(id),
        runtime: this.engine.runtime.path,
        args: ((spec.process ?? {}) as { args?: string[] }).args ?? [],
        cgroupsPath: ((spec.linux ?? {}) as { cgroupsPath?: string }).cgroupsPath ?? '',
        readonlyRootfs: Boolean((spec.root as { readonly?: boolean } | undefined)?.readonly),
        hostConfig: { NetworkMode: o.network, ReadonlyRootfs: o.readOnly },
        ...(o.network === 'bridge'
          ? {
              network: {
                mode: 'bridge',
                networks: o.networks,
                ports: o.ports,
                addHosts: o.addHosts,
                ...(o.dns || o.dnsSearch || o.dnsOptions
                  ? {
                      dns: {
                        ...(o.dns ? { dns: o.dns } : {}),
                        ...(o.dnsSearch ? { dnsSearch: o.dnsSearch } : {}),
                        ...(o.dnsOptions ? { dnsOptions: o.dnsOptions } : {}),
                      },
                    }
                  : {}),
              },
            }
          : {}),
        state: {
          status: 'configured',
          pid: 0,
          conmonPid: 0,
          exitCode: 0,
          oomKilled: false,
          restartCount: 0,
          stoppedByUser: false,
          execSessions: {},
          ...(waiterPid ? { waiterPid } : {}),
        },
      };
      for (let attempt = 0; ; attempt++) {
        try {
          await this.engine.store.claimName(record.name, id);
          break;
        } catch (err) {
          // A generated name that happens to be taken: draw another.
          if (o.name !== undefined || attempt >= 20 || !(err instanceof ContainerNameConflictError))
            throw err;
          record.name = randomName();
        }
      }
      name = record.name;
      try {
        // The spec first: a record is only visible with everything it points at.
        await this.engine.store.writeSpec(id, spec);
        await this.engine.store.write(record);
      } catch (err) {
        await this.engine.store.releaseName(record.name, id);
        await this.engine.store.delete(id).catch(() => {});
        throw err;
      }
      if (storage && keepMounted) holdMount(id);
      else if (storage && this.engine.integrations.unmountRootfs) {
        // Mounted for the spec generator (users, workdir); init mounts it again.
        await this.engine.integrations.unmountRootfs(record).catch(() => {});
      }
      await emit(this.engine, record, 'create');
      return { id, name };
    } catch (err) {
      // Nothing half-made: userdata files, spec, name claim (released above) and the layer
      // (a prelaunched conmon first: it holds the log file open).
      await cancelPrelaunched(id);
      await rm(this.engine.layout.containerDir(id), { recursive: true, force: true });
      if (storage && this.engine.integrations.removeRootfs) {
        await this.engine.integrations
          .removeRootfs({ storageId: storage.storageId } as ContainerRecord)
          .catch(() => {});
      }
      throw err;
    }
  }

  /** The record with its status reconciled against conmon's exit file and process liveness. */
  private async current(nameOrId: string): Promise<ContainerRecord> {
    const r = await this.engine.store.resolve(nameOrId);
    return this.refresh(r);
  }

  private async refresh(r: ContainerRecord): Promise<ContainerRecord> {
    if (
      r.state.status === 'exited' &&
      r.autoRemove &&
      r.state.waiterPid &&
      !isProcessAlive(r.state.waiterPid) &&
      !(await dependentsOf(this.engine, r.id)).length
    ) {
      // The run() that owned this `rm` container died before removing it.
      await removeContainer(this.engine, r.id, { force: true, keepExitFile: true });
      throw new ContainerNotFoundError(r.id);
    }
    if (!ACTIVE.includes(r.state.status)) return r;
    if ((await readExitCode(this.engine, r.id)) !== undefined) {
      await handleExit(this.engine, r.id, { applyPolicies: true });
      const again = await this.engine.store.read(r.id);
      if (!again) throw new ContainerNotFoundError(r.id);
      return again;
    }
    if (r.state.conmonPid && !isProcessAlive(r.state.conmonPid) && r.state.status !== 'stopped') {
      // conmon died without writing an exit file (killed): the container has no parent to report it.
      const updated = await this.engine.store.update(r.id, async (cur) => {
        if (!ACTIVE.includes(cur.state.status) || (await readExitCode(this.engine, r.id)) !== undefined)
          return undefined;
        if (isProcessAlive(cur.state.pid)) return undefined;
        await this.engine.runtime.delete(r.id, true).catch(() => {});
        return {
          ...cur,
          state: {
            ...cur.state,
            status: 'exited',
            pid: 0,
            exitCode: -1,
            error: 'conmon exited without recording an exit code',
            finishedAt: new Date().toISOString(),
          },
        };
      });
      return updated ?? r;
    }
    return r;
  }

  /** Runtime create through conmon (Podman's `init`): the container exists but has not started. */
  async init(nameOrId: string, { signal }: { signal?: AbortSignal } = {}): Promise<void> {
    const r = await this.current(nameOrId);
    let did = false;
    await this.engine.store.update(r.id, async (cur) => {
      if (cur.state.status !== 'configured' && cur.state.status !== 'exited') {
        if (cur.state.status === 'created') return undefined;
        throw new ContainerStateError(cur.id, cur.state.status, 'init');
      }
      did = true;
      return this.initLocked(cur, signal);
    });
    if (did) await emit(this.engine, r, 'init');
  }

  private async initLocked(cur: ContainerRecord, signal?: AbortSignal): Promise<ContainerRecord> {
    try {
      return await initContainer(this.engine, cur, signal);
    } catch (err) {
      // Podman leaves the container, not running, with the error: record it, then rethrow.
      await this.engine.store
        .write({ ...cur, state: { ...cur.state, error: (err as Error).message } })
        .catch(() => {});
      throw err;
    }
  }

  /** Starts the container (initialising it first when needed). Starting a running one is a no-op. */
  async start(nameOrId: string, { signal }: { signal?: AbortSignal } = {}): Promise<void> {
    const r = await this.current(nameOrId);
    let inited = false;
    let started = false;
    await this.engine.store.update(r.id, async (cur) => {
      if (cur.state.status === 'running') return undefined;
      if (
        cur.state.status === 'paused' ||
        cur.state.status === 'removing' ||
        cur.state.status === 'stopped'
      ) {
        throw new ContainerStateError(cur.id, cur.state.status, 'start');
      }
      let next = cur;
      if (cur.state.status !== 'created') {
        next = await this.initLocked(cur, signal);
        inited = true;
      }
      try {
        await this.engine.runtime.start(cur.id);
      } catch (err) {
        await this.engine.runtime.delete(cur.id, true).catch(() => {});
        await this.engine.store
          .write({
            ...next,
            state: { ...next.state, status: 'exited', pid: 0, error: (err as Error).message },
          })
          .catch(() => {});
        throw err;
      }
      started = true;
      return {
        ...next,
        state: {
          ...next.state,
          status: 'running',
          startedAt: new Date().toISOString(),
          stoppedByUser: false,
        },
      };
    });
    if (inited) await emit(this.engine, r, 'init');
    if (started) await emit(this.engine, r, 'start');
  }

  /**
   * Waits for a condition; for `stopped`/`exited` (the default) returns the exit code.
   * For a container removed with `rm`, the exit code comes from the exit file conmon wrote.
   */
  async wait(
    nameOrId: string,
    opts: { condition?: WaitCondition | WaitCondition[]; timeout?: number; signal?: AbortSignal } = {},
  ): Promise<number> {
    const conditions = opts.condition === undefined ? ['exited', 'stopped'] : [opts.condition].flat();
    const wantsExit = conditions.includes('exited') || conditions.includes('stopped');
    const first = await this.engine.store.resolve(nameOrId);
    const id = first.id;
    return waitFor(
      async () => {
        const code = await readExitCode(this.engine, id);
        const rec = await this.engine.store.read(id);
        if (!rec) {
          if (conditions.includes('removed')) return code ?? 0;
          if (wantsExit && code !== undefined) return code;
          throw new ContainerNotFoundError(nameOrId);
        }
        let r = rec;
        if (code !== undefined && ACTIVE.includes(r.state.status)) {
          const outcome = await handleExit(this.engine, id, { applyPolicies: true });
          if (wantsExit && (outcome === 'restarted' || outcome === 'removed' || outcome === 'recorded'))
            return code;
          const again = await this.engine.store.read(id);
          if (!again) return wantsExit ? code : undefined;
          r = again;
        }
        if (conditions.includes(r.state.status)) return r.state.exitCode;
        if (wantsExit && r.state.status === 'exited') return r.state.exitCode;
        return undefined;
      },
      {
        dir: this.engine.layout.exitDir,
        pollMs: 100,
        signal: this.withClosing(opts.signal),
        timeoutMs: opts.timeout,
        onTimeout: () =>
          new CoreTimeoutError(
            `container ${nameOrId} did not reach ${conditions.join('|')} in ${opts.timeout} ms`,
          ),
      },
    );
  }

  /**
   * Create + start + wait; returns the exit code and the captured stdout/stderr (from the log).
   * With `rm` the container is removed afterwards, also when start fails (126/127 errors).
   */
  async run(options: ContainerCreateOptions, { signal }: { signal?: AbortSignal } = {}): Promise<RunResult> {
    const rm = (options as { rm?: boolean }).rm === true;
    const { id, name } = await this.createInternal(options, signal, rm ? process.pid : undefined, true);
    try {
      await this.start(id, { signal });
    } catch (err) {
      // Init takes the prelaunched conmon and the kept mount; what is left, init never got to.
      await cancelPrelaunched(id);
      if (takeHeldMount(id)) await this.releaseKeptMount(id);
      if (rm) await this.removeAfterRun(id);
      throw err as OciRuntimeError;
    }
    // Another process may have started it first (then its init mounted): ours goes.
    if (takeHeldMount(id)) await this.releaseKeptMount(id);
    // conmon drains the output before writing the exit file: once it exists the log is complete,
    // so the log is read while the exit is being recorded.
    await waitFor(async () => ((await readExitCode(this.engine, id)) !== undefined ? true : undefined), {
      dir: this.engine.layout.exitDir,
      pollMs: 100,
      signal: this.withClosing(signal),
    });
    const [exitCode, lines] = await Promise.all([
      this.wait(id, { signal }),
      readAllLogLines(this.engine.layout.logFile(id)),
    ]);
    const { stdout, stderr } = splitStreams(lines);
    if (rm) await this.removeAfterRun(id);
    return { id, name, exitCode, stdout, stderr };
  }

  /** The rootfs mount run()'s create kept, when init never took it (a remove releases it too). */
  private async releaseKeptMount(id: string): Promise<void> {
    const r = await this.engine.store.read(id).catch(() => undefined);
    if (r?.rootfsSource === 'storage') await this.engine.integrations.unmountRootfs?.(r).catch(() => {});
  }

  /** run's `rm`: best effort, and never a container others joined (it stays, exited). */
  private async removeAfterRun(id: string): Promise<void> {
    if ((await dependentsOf(this.engine, id).catch(() => [])).length) return;
    await removeContainer(this.engine, id, { force: true }).catch(() => {});
  }

  /** Sends the stop signal, waits `timeout` seconds (default: the container's), then SIGKILL. */
  async stop(nameOrId: string, opts: { timeout?: number; signal?: AbortSignal } = {}): Promise<void> {
    const r = await this.current(nameOrId);
    if (r.state.status !== 'running' && r.state.status !== 'paused') {
      if (r.state.status === 'created') await this.kill(r.id, 'KILL').catch(() => {});
      return;
    }
    await this.engine.store.update(r.id, (cur) => ({ ...cur, state: { ...cur.state, stoppedByUser: true } }));
    const timeoutMs = (opts.timeout ?? r.stopTimeout) * 1000;
    const exited = async () => ((await readExitCode(this.engine, r.id)) !== undefined ? true : undefined);
    if (r.state.status === 'paused') {
      await this.engine.runtime.kill(r.id, 'KILL', true).catch(() => {});
      await this.engine.runtime.resume(r.id).catch(() => {});
    } else {
      await this.engine.runtime.kill(r.id, r.stopSignal).catch(() => {});
    }
    try {
      await waitFor(exited, { dir: this.engine.layout.exitDir, pollMs: 50, timeoutMs, signal: opts.signal });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      await this.engine.runtime.kill(r.id, 'KILL', true).catch(() => {});
      await waitFor(exited, {
        dir: this.engine.layout.exitDir,
        pollMs: 50,
        timeoutMs: 10_000,
        signal: opts.signal,
      });
    }
    await handleExit(this.engine, r.id, { applyPolicies: true });
    await emit(this.engine, r, 'stop');
  }

  /** Sends a signal (name like `SIGHUP`/`HUP` or number) to the container's init process. */
  async kill(nameOrId: string, signal: string | number = 'SIGKILL'): Promise<void> {
    const r = await this.current(nameOrId);
    if (r.state.status !== 'running' && r.state.status !== 'paused' && r.state.status !== 'created') {
      throw new ContainerStateError(r.id, r.state.status, 'kill');
    }
    await this.engine.runtime.kill(r.id, signal);
    await emit(this.engine, r, 'kill', { signal: String(signal) });
  }

  async pause(nameOrId: string): Promise<void> {
    const r = await this.current(nameOrId);
    if (r.state.status !== 'running') throw new ContainerStateError(r.id, r.state.status, 'pause');
    await this.engine.store.update(r.id, async (cur) => {
      await this.engine.runtime.pause(cur.id);
      return { ...cur, state: { ...cur.state, status: 'paused' } };
    });
    await emit(this.engine, r, 'pause');
  }

  async unpause(nameOrId: string): Promise<void> {
    const r = await this.current(nameOrId);
    if (r.state.status !== 'paused') throw new ContainerStateError(r.id, r.state.status, 'unpause');
    await this.engine.store.update(r.id, async (cur) => {
      await this.engine.runtime.resume(cur.id);
      return { ...cur, state: { ...cur.state, status: 'running' } };
    });
    await emit(this.engine, r, 'unpause');
  }

  async restart(nameOrId: string, opts: { timeout?: number; signal?: AbortSignal } = {}): Promise<void> {
    const r = await this.current(nameOrId);
    await this.stop(r.id, opts);
    await this.start(r.id, opts);
    await emit(this.engine, r, 'restart');
  }

  /**
   * Removes the container; a running one only with `force` (killed first); never one that
   * other containers joined (`container:<id>`): ContainerHasDependentsError.
   */
  async remove(nameOrId: string, opts: { force?: boolean } = {}): Promise<void> {
    const r = await this.current(nameOrId);
    await assertNoDependents(this.engine, r.id);
    if ((r.state.status === 'running' || r.state.status === 'paused') && !opts.force) {
      throw new ContainerStateError(r.id, r.state.status, 'remove (without force)');
    }
    if (r.state.status === 'running' || r.state.status === 'paused') {
      await this.engine.store.update(r.id, (cur) => ({
        ...cur,
        state: { ...cur.state, stoppedByUser: true },
      }));
    }
    await removeContainer(this.engine, r.id, { force: true });
  }

  async rename(nameOrId: string, newName: string): Promise<void> {
    const parsed = parseOptions(ContainerName, 'container name', newName);
    const r = await this.engine.store.resolve(nameOrId);
    const name = String(parsed);
    if (name === r.name) return;
    await this.engine.store.claimName(name, r.id);
    try {
      await this.engine.store.update(r.id, (cur) => ({ ...cur, name }));
    } catch (err) {
      await this.engine.store.releaseName(name, r.id);
      throw err;
    }
    await this.engine.store.releaseName(r.name, r.id);
    await emit(this.engine, { ...r, name }, 'rename', { oldName: r.name });
  }

  /** Runs a process in a running container (through conmon `--exec`). */
  async exec(nameOrId: string, options: ExecOptions): Promise<ExecResult> {
    const r = await this.current(nameOrId);
    if (r.state.status !== 'running') throw new ContainerStateError(r.id, r.state.status, 'exec in');
    await emit(this.engine, r, 'exec', { execCommand: (options.command ?? []).join(' ') });
    const res = await execInContainer(this.engine, r, options);
    if (res.exitCode !== undefined)
      await emit(this.engine, r, 'exec_died', { exitCode: String(res.exitCode) });
    return res;
  }

  /**
   * Runs a process in a running container with its stdio streamed through conmon's attach
   * socket: `stdout`/`stderr` as they come, `stdin` (with `stdin: true`) or a piped stream,
   * a terminal with `tty` (resizable). `exitCode` resolves once the process exited and its output
   * was delivered.
   */
  async execStream(nameOrId: string, options: ExecOptions): Promise<ExecStream> {
    const r = await this.current(nameOrId);
    if (r.state.status !== 'running') throw new ContainerStateError(r.id, r.state.status, 'exec in');
    await emit(this.engine, r, 'exec', { execCommand: (options.command ?? []).join(' ') });
    const st = await execStreamInContainer(this.engine, r, options);
    st.exitCode.then((code) => emit(this.engine, r, 'exec_died', { exitCode: String(code) })).catch(() => {});
    return st;
  }

  /**
   * Attaches to a running container's stdio through conmon's attach socket: output from now on
   * to `stdout`/`stderr`, `stdin` to the container (created with `stdin: true`).
   */
  async attach(nameOrId: string, options: AttachOptions = {}): Promise<AttachSession> {
    const r = await this.current(nameOrId);
    if (r.state.status !== 'running' && r.state.status !== 'created')
      throw new ContainerStateError(r.id, r.state.status, 'attach to');
    const session = await attachToContainer(this.engine, r, options);
    await emit(this.engine, r, 'attach');
    return session;
  }

  /** The container's output from its k8s-file log. */
  async *logs(nameOrId: string, options: LogsOptions = {}, signal?: AbortSignal): AsyncGenerator<LogLine> {
    const o = parseOptions(LogsOptions, 'logs options', options);
    const r = await this.engine.store.resolve(nameOrId);
    const isRunning = async () => {
      const cur = await this.engine.store.read(r.id);
      if (!cur) return false;
      if ((await readExitCode(this.engine, r.id)) !== undefined) return false;
      return (
        cur.state.status === 'running' || cur.state.status === 'paused' || cur.state.status === 'created'
      );
    };
    yield* readLogs(r.logPath, o, isRunning, this.withClosing(signal));
  }

  async inspect(nameOrId: string): Promise<ContainerInspect> {
    return inspectRecord(await this.current(nameOrId), this.engine);
  }

  async exists(nameOrId: string): Promise<boolean> {
    try {
      await this.engine.store.resolve(nameOrId);
      return true;
    } catch (err) {
      if (err instanceof ContainerNotFoundError) return false;
      throw err;
    }
  }

  /** Containers, running only unless `all`; filters as Podman's `ps --filter`. */
  async list(options: ListOptions = {}): Promise<ContainerSummary[]> {
    const o = parseOptions(ListOptions, 'list options', options);
    const records = await this.engine.store.list();
    const fresh = await Promise.all(
      records.map(async (r) => {
        if (!ACTIVE.includes(r.state.status)) return r;
        const hasExit = existsSync(this.engine.layout.exitFile(r.id));
        return hasExit ? this.refresh(r).catch(() => undefined) : r;
      }),
    );
    return listRecords(
      fresh.filter((r): r is ContainerRecord => r !== undefined),
      o,
    );
  }

  /** Processes in the container. */
  async top(nameOrId: string): Promise<TopResult> {
    const r = await this.current(nameOrId);
    if (r.state.status !== 'running' && r.state.status !== 'paused')
      throw new ContainerStateError(r.id, r.state.status, 'top');
    return top(this.engine, r);
  }

  /** Resource usage from the container's cgroup (v1 or v2). */
  async stats(nameOrId: string): Promise<ContainerStats> {
    const r = await this.current(nameOrId);
    if (r.state.status !== 'running' && r.state.status !== 'paused')
      throw new ContainerStateError(r.id, r.state.status, 'stats');
    return readStats(r);
  }
}
