import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import {
  CommandNotExecutableError,
  CommandNotFoundError,
  ContainerNameConflictError,
  ContainerNotFoundError,
  ContainerStateError,
  InvalidOptionsError,
  Libpod,
  type LibpodEvent,
} from '@libpod-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSkipReason, makeTestEnv, type TestEnv } from './container-fixtures.js';

const skip = containerSkipReason();
const readStat = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return '';
  }
};
if (skip) console.warn(`skipping container lifecycle tests: ${skip}`);

describe.skipIf(skip !== undefined)('container lifecycle (runc + conmon, busybox rootfs)', () => {
  let env: TestEnv;
  let lp: Libpod;

  beforeAll(async () => {
    env = await makeTestEnv('container-lifecycle');
    lp = await Libpod.open({ root: env.root, runRoot: env.runRoot });
  });

  afterAll(async () => {
    if (lp) {
      for (const c of await lp.containers.list({ all: true }).catch(() => [])) {
        await lp.containers.remove(c.Id, { force: true }).catch(() => {});
      }
      await lp.close();
      await lp.close();
    }
    await env?.cleanup();
  });

  const sh = (script: string, extra: Record<string, unknown> = {}) => ({
    rootfs: env.rootfs,
    command: ['sh', '-c', script],
    rm: true,
    ...extra,
  });

  it('returns the exit code and separates stdout from stderr', async () => {
    const ok = await lp.containers.run({ rootfs: env.rootfs, command: ['true'], rm: true });
    expect(ok.exitCode).toBe(0);
    const r = await lp.containers.run(sh('echo out1; echo err1 >&2; echo out2; exit 3'));
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toBe('out1\nout2\n');
    expect(r.stderr).toBe('err1\n');
    // rm: nothing left of it
    expect(await lp.containers.exists(r.id)).toBe(false);
  });

  it('maps a missing command to 127 and a non-executable one to 126, leaving nothing with rm', async () => {
    const e127 = await lp.containers
      .run({ rootfs: env.rootfs, command: ['/no/such/cmd'], rm: true })
      .catch((e) => e);
    expect(e127).toBeInstanceOf(CommandNotFoundError);
    expect(e127.exitCode).toBe(127);
    expect(e127.code).toBe('ERR_COMMAND_NOT_FOUND');
    const e126 = await lp.containers
      .run({ rootfs: env.rootfs, command: ['/etc/not-executable'], rm: true })
      .catch((e) => e);
    expect(e126).toBeInstanceOf(CommandNotExecutableError);
    expect(e126.exitCode).toBe(126);
    expect(await lp.containers.list({ all: true })).toEqual([]);
  });

  it('kills with SIGKILL: exit code 137; stop honours the stop signal, then the timeout', async () => {
    const { id } = await lp.containers.create({
      rootfs: env.rootfs,
      command: ['sleep', '100'],
      name: 'sleeper',
    });
    await lp.containers.start('sleeper');
    expect((await lp.containers.inspect(id)).State.Status).toBe('running');
    await lp.containers.kill('sleeper', 'SIGKILL');
    expect(await lp.containers.wait(id)).toBe(137);
    const ins = await lp.containers.inspect(id);
    expect(ins.State.Status).toBe('exited');
    expect(ins.State.ExitCode).toBe(137);
    expect(ins.State.FinishedAt).not.toBe('0001-01-01T00:00:00Z');
    await lp.containers.remove(id);

    // Handles SIGTERM: stops quickly with its own code.
    const polite = await lp.containers.create(
      sh('trap "exit 42" TERM; while true; do sleep 0.1; done', { rm: false, stopTimeout: 5 }),
    );
    await lp.containers.start(polite.id);
    let t0 = Date.now();
    await lp.containers.stop(polite.id);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect((await lp.containers.inspect(polite.id)).State.ExitCode).toBe(42);
    await lp.containers.remove(polite.id);

    // Ignores SIGTERM (pid 1 without a handler): SIGKILL after the timeout.
    const stubborn = await lp.containers.create({ rootfs: env.rootfs, command: ['sleep', '100'] });
    await lp.containers.start(stubborn.id);
    t0 = Date.now();
    await lp.containers.stop(stubborn.id, { timeout: 1 });
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(5000);
    expect((await lp.containers.inspect(stubborn.id)).State.ExitCode).toBe(137);
    await lp.containers.remove(stubborn.id);
  });

  it('pauses and unpauses; exec runs in the container with env, user, workdir and exit code', async () => {
    const { id } = await lp.containers.create({
      rootfs: env.rootfs,
      command: ['sleep', '100'],
      env: { FOO: 'bar' },
    });
    await lp.containers.start(id);
    await lp.containers.pause(id);
    expect((await lp.containers.inspect(id)).State.Status).toBe('paused');
    await expect(lp.containers.pause(id)).rejects.toBeInstanceOf(ContainerStateError);
    await lp.containers.unpause(id);
    expect((await lp.containers.inspect(id)).State.Status).toBe('running');

    const ex = await lp.containers.exec(id, {
      command: ['sh', '-c', 'echo $FOO $BAR; id -u; pwd; echo e >&2; exit 5'],
      env: { BAR: 'baz' },
      user: 'app',
      workingDir: '/tmp',
    });
    expect(ex.exitCode).toBe(5);
    expect(ex.stdout).toBe('bar baz\n1000\n/tmp\n');
    expect(ex.stderr).toBe('e\n');

    const top = await lp.containers.top(id);
    expect(top.Processes.some((p) => p.at(-1)?.includes('sleep 100'))).toBe(true);

    const stats = await lp.containers.stats(id);
    expect(stats.pids).toBeGreaterThanOrEqual(1);
    expect(stats.memoryUsageBytes).toBeGreaterThan(0);
    expect(stats.cpuNanos).toBeGreaterThan(0);

    await lp.containers.stop(id, { timeout: 0 });
    await expect(lp.containers.exec(id, { command: ['true'] })).rejects.toMatchObject({
      code: 'ERR_CONTAINER_NOT_RUNNING',
    });
    await lp.containers.remove(id);
  });

  it('follows logs until the container exits, with tail and stream selection', async () => {
    const { id } = await lp.containers.create(
      sh('for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done; echo bad >&2', { rm: false }),
    );
    await lp.containers.start(id);
    const seen: string[] = [];
    for await (const l of lp.containers.logs(id, { follow: true })) seen.push(`${l.stream}:${l.line}`);
    expect(seen).toEqual([
      'stdout:line1',
      'stdout:line2',
      'stdout:line3',
      'stdout:line4',
      'stdout:line5',
      'stderr:bad',
    ]);
    const tail: string[] = [];
    for await (const l of lp.containers.logs(id, { tail: 2, stderr: false })) tail.push(l.line);
    expect(tail).toEqual(['line4', 'line5']);
    // k8s-file: readable by other tools
    const raw = await readFile((await lp.containers.inspect(id)).LogPath, 'utf8');
    expect(raw.split('\n')[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+ stdout F line1$/);
    await lp.containers.remove(id);
  });

  it('inspects with Podman fields and lists with filters', async () => {
    const a = await lp.containers.create({
      rootfs: env.rootfs,
      command: ['sleep', '100'],
      name: 'web-1',
      labels: { app: 'web', tier: 'front' },
    });
    const b = await lp.containers.create({
      rootfs: env.rootfs,
      command: ['true'],
      name: 'db-1',
      labels: { app: 'db' },
    });
    await lp.containers.start(a.id);
    const ins = await lp.containers.inspect('web-1');
    expect(ins).toMatchObject({
      Id: a.id,
      Name: 'web-1',
      Path: 'sleep',
      Args: ['100'],
      State: { Status: 'running', Running: true, Paused: false, OOMKilled: false, ExitCode: 0 },
      Config: { Labels: { app: 'web', tier: 'front' }, StopSignal: 'SIGTERM' },
      HostConfig: { RestartPolicy: { Name: '', MaximumRetryCount: 0 } },
      OCIRuntime: 'runc',
    });
    expect(ins.State.Pid).toBeGreaterThan(0);
    expect(Date.parse(ins.Created)).not.toBeNaN();

    expect((await lp.containers.list()).map((c) => c.Names[0])).toEqual(['web-1']);
    const names = async (o: Parameters<typeof lp.containers.list>[0]) =>
      (await lp.containers.list(o)).map((c) => c.Names[0]).sort();
    expect(await names({ all: true })).toEqual(['db-1', 'web-1']);
    expect(await names({ filters: { status: ['configured'] } })).toEqual(['db-1']);
    expect(await names({ all: true, filters: { label: ['app=web'] } })).toEqual(['web-1']);
    expect(await names({ all: true, filters: { label: ['app'] } })).toEqual(['db-1', 'web-1']);
    expect(await names({ all: true, filters: { name: ['^db'] } })).toEqual(['db-1']);
    expect(await names({ all: true, filters: { id: [b.id.slice(0, 8)] } })).toEqual(['db-1']);
    expect(await names({ all: true, filters: { ancestor: ['busybox'] } })).toEqual([]);

    await expect(
      lp.containers.create({ rootfs: env.rootfs, command: ['true'], name: 'web-1' }),
    ).rejects.toBeInstanceOf(ContainerNameConflictError);
    await lp.containers.rename('db-1', 'db-2');
    expect(await lp.containers.exists('db-1')).toBe(false);
    await expect(lp.containers.rename('db-2', 'web-1')).rejects.toMatchObject({
      code: 'ERR_CONTAINER_NAME_CONFLICT',
    });
    await expect(lp.containers.remove('web-1')).rejects.toBeInstanceOf(ContainerStateError);
    await lp.containers.remove('web-1', { force: true });
    await lp.containers.remove('db-2');
    await expect(lp.containers.inspect('web-1')).rejects.toBeInstanceOf(ContainerNotFoundError);
  });

  it('rejects bad options with a message naming the field', async () => {
    const e = await lp.containers
      .create({ rootfs: env.rootfs, command: ['true'], name: '-bad name' })
      .catch((x) => x);
    expect(e).toBeInstanceOf(InvalidOptionsError);
    expect(e.message).toContain('name');
    const e2 = await lp.containers.create({ command: ['true'] } as never).catch((x) => x);
    expect(e2.code).toBe('ERR_INVALID_OPTIONS');
    const e3 = await lp.containers
      .create({ rootfs: env.rootfs, command: ['true'], restartPolicy: 'sometimes' })
      .catch((x) => x);
    expect(e3.message).toContain('restartPolicy');
    const e4 = await lp.containers
      .create({ rootfs: `${env.rootfs}/nope`, command: ['true'] })
      .catch((x) => x);
    expect(e4.message).toContain('rootfs');
    expect(await lp.containers.list({ all: true })).toEqual([]);
  });

  it('refuses hostile names, lookups and exec working dirs (CVE-2024-21626 class)', async () => {
    for (const name of ['../x', 'a/b', '.hidden', '', 'x'.repeat(300)]) {
      const e = await lp.containers.create({ rootfs: env.rootfs, command: ['true'], name }).catch((x) => x);
      expect(e.code).toBe('ERR_INVALID_OPTIONS');
    }
    await expect(lp.containers.inspect('../../../etc/passwd')).rejects.toBeInstanceOf(ContainerNotFoundError);
    await expect(lp.containers.inspect('names')).rejects.toBeInstanceOf(ContainerNotFoundError);
    const { id } = await lp.containers.create({ rootfs: env.rootfs, command: ['sleep', '100'] });
    await lp.containers.start(id);
    for (const workingDir of ['/proc/self/fd/7', '/proc/self/cwd', '/sys/fs']) {
      const e = await lp.containers.exec(id, { command: ['true'], workingDir }).catch((x) => x);
      expect(e.code).toBe('ERR_INVALID_WORKDIR');
    }
    const e2 = await lp.containers.exec(id, { command: [] }).catch((x) => x);
    expect(e2.code).toBe('ERR_INVALID_OPTIONS');
    await lp.containers.remove(id, { force: true });
    expect(await lp.containers.list({ all: true })).toEqual([]);
  });

  it('emits every transition in order, live and in the persistent log', async () => {
    const since = new Date();
    const ac = new AbortController();
    const live: LibpodEvent[] = [];
    const sub = (async () => {
      for await (const ev of lp.events.subscribe({ container: ['evented'] }, ac.signal)) {
        live.push(ev);
        if (ev.action === 'remove') ac.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    const { id } = await lp.containers.create({
      rootfs: env.rootfs,
      command: ['sleep', '100'],
      name: 'evented',
    });
    await lp.containers.start(id);
    await lp.containers.pause(id);
    await lp.containers.unpause(id);
    await lp.containers.exec(id, { command: ['true'] });
    await lp.containers.kill(id, 'SIGKILL');
    await lp.containers.wait(id);
    await lp.containers.remove(id);
    await sub;
    const expected = [
      'create',
      'init',
      'start',
      'pause',
      'unpause',
      'exec',
      'exec_died',
      'kill',
      'died',
      'remove',
    ];
    expect(live.map((e) => e.action)).toEqual(expected);
    const logged: string[] = [];
    for await (const ev of lp.events.read({ since, container: [id.slice(0, 12)] })) logged.push(ev.action);
    expect(logged).toEqual(expected);
    const died = live.find((e) => e.action === 'died');
    expect(died?.attributes.exitCode).toBe('137');
    const onlyStarts: string[] = [];
    for await (const ev of lp.events.read({ since, action: ['start'] })) onlyStarts.push(ev.name);
    expect(onlyStarts).toEqual(['evented']);
  });

  it('force-removes a container a crashed process left `configured` with its runtime container alive', async () => {
    // A process killed between `runc create` and recording `created` leaves exactly this behind.
    const c = await lp.containers.create({ rootfs: env.rootfs, command: ['sleep', '600'] });
    await lp.containers.init(c.id);
    const recordPath = `${env.root}/containers/${c.id}/container.json`;
    const record = JSON.parse(await readFile(recordPath, 'utf8'));
    const pids: number[] = [record.state.pid, record.state.conmonPid];
    expect(pids.every((p) => p > 0)).toBe(true);
    record.state.status = 'configured';
    await writeFile(recordPath, JSON.stringify(record));
    await lp.containers.remove(c.id, { force: true });
    expect(await lp.containers.exists(c.id)).toBe(false);
    // conmon exits once its exit command has run, shortly after the remove returns.
    const alive = () => pids.filter((p) => existsSync(`/proc/${p}`) && !/\) Z /.test(readStat(p)));
    for (let i = 0; i < 100 && alive().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toEqual([]);
  });
});
