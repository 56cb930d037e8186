import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { conmonExec } from '../runtime/conmon.js';
import { resolveWorkdir } from '../spec/index.js';
import type { Engine } from './engine.js';
import { readAllLogLines, splitStreams } from './logs.js';
import { envList, parseOptions } from './options.js';
import type { ContainerRecord } from './record.js';
import { resolveUser } from './user.js';

export const ExecOptions = z
  .object({
    command: z.array(z.string()).min(1, 'a command is required'),
    env: z
      .union([z.record(z.string(), z.string()), z.array(z.string().regex(/^[^=]+=/, 'expected KEY=value'))])
      .optional(),
    user: z.string().optional(),
    workingDir: z.string().startsWith('/', 'must be absolute').optional(),
    tty: z.boolean().default(false),
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
export async function execInContainer(
  engine: Engine,
  record: ContainerRecord,
  options: ExecOptions,
): Promise<ExecResult> {
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
  // Same rules as the container's workdir: resolved inside the rootfs, /proc and /sys refused.
  const cwd =
    o.workingDir !== undefined
      ? await resolveWorkdir(record.rootfs, o.workingDir, { create: false })
      : undefined;
  const user = o.user !== undefined ? await resolveUser(record.rootfs, o.user) : base.user;
  const proc = {
    ...base,
    args: o.command,
    env: [...env].map(([k, v]) => `${k}=${v}`),
    cwd: cwd ?? (base.cwd as string | undefined) ?? '/',
    terminal: o.tty,
    ...(user ? { user: { ...(base.user ?? {}), uid: user.uid, gid: user.gid } } : {}),
  };
  await mkdir(`${dir}/exits`, { recursive: true, mode: 0o700 });
  await writeFile(`${dir}/process.json`, JSON.stringify(proc), { mode: 0o600 });
  const logPath = `${dir}/exec.log`;
  try {
    const started = await conmonExec({
      conmonPath: engine.conmonPath,
      runtime: engine.runtime,
      containerId: record.id,
      uuid: sessionId,
      name: record.name,
      bundle: dir,
      pidFile: `${dir}/pidfile`,
      exitDir: `${dir}/exits`,
      socketDir: engine.layout.socketDir,
      logDriver: `k8s-file:${logPath}`,
      terminal: o.tty,
      stdin: false,
      processSpecPath: `${dir}/process.json`,
      signal: o.signal,
    });
    if (o.detach) {
      started.execExit?.catch(() => {});
      started.detachSync?.();
      return { sessionId, pid: started.pid, stdout: '', stderr: '' };
    }
    const exitCode = await started.execExit!;
    const { stdout, stderr } = splitStreams(await readAllLogLines(logPath));
    await rm(dir, { recursive: true, force: true });
    return { sessionId, pid: started.pid, exitCode, stdout, stderr };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
