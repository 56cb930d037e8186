import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { z } from 'zod';
import { InvalidOptionsError } from '../errors.js';
import { conmonExec, conmonExecAttached } from '../runtime/conmon.js';
import { type AttachSession, attachToSocket } from './attach.js';
import { resolveWorkdir } from '../spec/index.js';
import type { Engine } from './engine.js';
import { readAllLogLines, splitStreams } from './logs.js';
import { envList, parseOptions } from './options.js';
import type { ContainerRecord } from './record.js';
import { resolveUser } from '../spec/user.js';
import { cgroupParentOf } from '../runtime/conmon-cgroup.js';

export const ExecOptions = z
  .object({
    command: z.array(z.string()).min(1, 'a command is required'),
    env: z
      .union([z.record(z.string(), z.string()), z.array(z.string().regex(/^[^=]+=/, 'expected KEY=value'))])
      .optional(),
    user: z.string().optional(),
    workingDir: z.string().startsWith('/', 'must be absolute').optional(),
    tty: z.boolean().default(false),
    /**
     * The process's stdin: a stream piped in (ended when it ends), or `true` for `execStream` to
     * hand back a writable. Output then comes through conmon's attach socket.
     */
    stdin: z.union([z.boolean(), z.instanceof(Readable)]).default(false),
    /** Initial terminal size with `tty`. */
    consoleSize: z
      .object({ height: z.number().int().min(1).max(65535), width: z.number().int().min(1).max(65535) })
      .strict()
      .optional(),
    /** Return once the process started; its output goes to the session log, its exit is not awaited. */
    detach: z.boolean().default(false),
    signal: z.instanceof(AbortSignal).optional(),
  })
  .strict();
export type ExecOptions = z.input<typeof ExecOptions>;

export interface ExecResult {
  sessionId: string;
  pid: number;
  /** Undefined for detached sessions. */
  exitCode?: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a process in a running container through `conmon --exec`: conmon parents the process,
 * writes its output to the session's k8s-file log and reports the exit status on the sync pipe.
 * The session directory lives in the container's bundle, so container cleanup removes leftovers.
 */
interface PreparedSession {
  o: z.output<typeof ExecOptions>;
  sessionId: string;
  dir: string;
  logPath: string;
}

/** Writes the session's process.json (container's process, overridden by the options). */
async function prepareSession(
  engine: Engine,
  record: ContainerRecord,
  options: ExecOptions,
): Promise<PreparedSession> {
  const o = parseOptions(ExecOptions, 'exec options', options);
  const sessionId = randomBytes(6).toString('hex');
  const dir = engine.layout.execDir(record.id, sessionId);
  const base = ((await engine.store.readSpec(record.id)).process ?? {}) as Record<string, unknown> & {
    env?: string[];
    user?: { uid: number; gid: number };
  };
  const env = new Map<string, string>();
  for (const e of [...(base.env ?? []), ...envList(o.env)]) {
    const eq = e.indexOf('=');
    if (eq > 0) env.set(e.slice(0, eq), e.slice(eq + 1));
  }
  if (o.tty && !env.has('TERM')) env.set('TERM', 'xterm');
  // Same rules as the container's workdir: resolved inside the rootfs, /proc and /sys refused.
  const cwd =
    o.workingDir !== undefined
      ? await resolveWorkdir(record.rootfs, o.workingDir, { create: false })
      : undefined;
  // The same resolver as the container's user (inside the rootfs, supplementary groups included).
  const user =
    o.user !== undefined
      ? await resolveUser(record.rootfs, o.user).then(({ uid, gid, additionalGids }) => ({
          uid,
          gid,
          additionalGids,
        }))
      : base.user;
  const { consoleSize: _drop, ...baseRest } = base as Record<string, unknown>;
  const proc = {
    ...baseRest,
    args: o.command,
    env: [...env].map(([k, v]) => `${k}=${v}`),
    cwd: cwd ?? (base.cwd as string | undefined) ?? '/',
    terminal: o.tty,
    ...(o.tty && o.consoleSize ? { consoleSize: o.consoleSize } : {}),
    ...(user ? { user: { ...(base.user ?? {}), uid: user.uid, gid: user.gid } } : {}),
  };
  await mkdir(`${dir}/exits`, { recursive: true, mode: 0o700 });
  await writeFile(`${dir}/process.json`, JSON.stringify(proc), { mode: 0o600 });
  return { o, sessionId, dir, logPath: `${dir}/exec.log` };
}

function conmonOptions(engine: Engine, record: ContainerRecord, s: PreparedSession, stdin: boolean) {
  return {
    conmonPath: engine.conmonPath,
    runtime: engine.runtime,
    cgroupParent: cgroupParentOf(record.cgroupsPath),
    containerId: record.id,
    uuid: s.sessionId,
    name: record.name,
    bundle: s.dir,
    pidFile: `${s.dir}/pidfile`,
    exitDir: `${s.dir}/exits`,
    socketDir: engine.layout.socketDir,
    logDriver: `k8s-file:${s.logPath}`,
    terminal: s.o.tty,
    stdin,
    processSpecPath: `${s.dir}/process.json`,
    signal: s.o.signal,
  };
}

/** The session directory and conmon's `<socketDir>/<sessionId>` symlink to it. */
async function removeSession(engine: Engine, dir: string, sessionId: string): Promise<void> {
  await Promise.all([
    rm(dir, { recursive: true, force: true }),
    rm(`${engine.layout.socketDir}/${sessionId}`, { force: true }).catch(() => {}),
  ]);
}

/** A running exec session whose output streams as it comes. */
export interface ExecStream {
  sessionId: string;
  pid: number;
  /** The process's stdout (with `tty`: the terminal's output). Ends when the process exits. */
  stdout: Readable;
  /** The process's stderr (empty with `tty`: the terminal merges it into stdout). */
  stderr: Readable;
  /** The process's stdin when `stdin: true`; ending it closes the process's stdin. */
  stdin?: Writable;
  /** The exit status, once the process exited and its output was delivered. */
  exitCode: Promise<number>;
  /** Resizes the session's terminal (`tty` only). */
  resize(size: { height: number; width: number }): Promise<void>;
}

/**
 * Runs a process through `conmon --exec --exec-attach`: its stdio goes through the session's
 * attach socket (SOCK_SEQPACKET, as `attach`), connected before the process starts. The session
 * directory is removed once the exit status is known.
 */
export async function execStreamInContainer(
  engine: Engine,
  record: ContainerRecord,
  options: ExecOptions,
): Promise<ExecStream> {
  const s = await prepareSession(engine, record, options);
  if (s.o.detach) {
    await removeSession(engine, s.dir, s.sessionId);
    throw new InvalidOptionsError('exec options', [
      { path: 'detach', message: 'a streamed exec session cannot be detached' },
    ]);
  }
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdinSource = s.o.stdin === true ? new PassThrough() : s.o.stdin === false ? undefined : s.o.stdin;
  let session: AttachSession | undefined;
  try {
    const started = await conmonExecAttached(
      conmonOptions(engine, record, s, stdinSource !== undefined),
      async () => {
        session = await attachToSocket(s.dir, record.id, {
          stdout,
          stderr,
          ...(stdinSource ? { stdin: stdinSource } : {}),
          ...(s.o.signal ? { signal: s.o.signal } : {}),
        });
      },
    );
    const attached = session!;
    const exitCode = (async () => {
      try {
        const code = await started.execExit;
        // conmon flushes the output before it reports the exit; the socket closes when conmon exits.
        await Promise.race([attached.closed, new Promise((r) => setTimeout(r, 2000).unref())]);
        return code;
      } finally {
        attached.detach();
        stdout.end();
        stderr.end();
        await removeSession(engine, s.dir, s.sessionId);
      }
    })();
    exitCode.catch(() => {});
    return {
      sessionId: s.sessionId,
      pid: started.pid,
      stdout,
      stderr,
      ...(s.o.stdin === true ? { stdin: stdinSource as PassThrough } : {}),
      exitCode,
      resize: async ({ height, width }) => {
        if (!s.o.tty) return;
        // conmon's control fifo: "1 <rows> <cols>" resizes the terminal.
        await writeFile(`${s.dir}/ctl`, `1 ${height} ${width}\n`).catch(() => {});
      },
    };
  } catch (err) {
    session?.detach();
    await removeSession(engine, s.dir, s.sessionId);
    throw err;
  }
}

/**
 * Runs a process in a running container through `conmon --exec`: conmon parents the process,
 * writes its output to the session's k8s-file log and reports the exit status on the sync pipe.
 * The session directory lives in the container's bundle, so container cleanup removes leftovers.
 * With `stdin` or `tty` the session goes through the attach socket (`execStreamInContainer`) and
 * the output is collected from it.
 */
export async function execInContainer(
  engine: Engine,
  record: ContainerRecord,
  options: ExecOptions,
): Promise<ExecResult> {
  const parsed = parseOptions(ExecOptions, 'exec options', options);
  if (!parsed.detach && (parsed.tty || parsed.stdin !== false)) {
    const st = await execStreamInContainer(engine, record, {
      ...options,
      ...(parsed.stdin === true ? { stdin: false } : {}),
    });
    const collect = (r: Readable) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      return () => Buffer.concat(chunks).toString('utf8');
    };
    const out = collect(st.stdout);
    const err = collect(st.stderr);
    const exitCode = await st.exitCode;
    return { sessionId: st.sessionId, pid: st.pid, exitCode, stdout: out(), stderr: err() };
  }
  const s = await prepareSession(engine, record, options);
  const { o, sessionId, dir, logPath } = s;
  try {
    const started = await conmonExec(conmonOptions(engine, record, s, false));
    if (o.detach) {
      started.execExit?.catch(() => {});
      started.detachSync?.();
      return { sessionId, pid: started.pid, stdout: '', stderr: '' };
    }
    const exitCode = await started.execExit!;
    const { stdout, stderr } = splitStreams(await readAllLogLines(logPath));
    await removeSession(engine, dir, sessionId);
    return { sessionId, pid: started.pid, exitCode, stdout, stderr };
  } catch (err) {
    await removeSession(engine, dir, sessionId);
    throw err;
  }
}
