import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findExitHook, Libpod } from '@libpod-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSkipReason, makeTestEnv, type TestEnv } from './container-fixtures.js';

const run = promisify(execFile);
const hook = findExitHook();
const skip =
  containerSkipReason() ??
  (hook ? undefined : 'the exit hook is not built (npm run build -w @libpod-ts/core)');
if (skip) console.warn(`skipping container survival tests: ${skip}`);

/** Runs a script in a separate Node process that uses the built package, then exits. */
async function inChild(script: string, env: TestEnv): Promise<string> {
  const code = `import { Libpod } from '@libpod-ts/core';
const lp = await Libpod.open({ root: ${JSON.stringify(env.root)}, runRoot: ${JSON.stringify(env.runRoot)} });
const rootfs = ${JSON.stringify(env.rootfs)};
${script}
await lp.close();
process.exit(0);`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], {
    cwd: join(__dirname, '..'),
  });
  return stdout.trim();
}

const readRecord = async (env: TestEnv, id: string) =>
  JSON.parse(await readFile(join(env.root, 'containers', id, 'container.json'), 'utf8')) as {
    state: { status: string; exitCode: number; restartCount: number };
  };

async function until<T>(fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(skip !== undefined)('containers outlive the program; the exit hook works alone', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await makeTestEnv('container-survive');
  });
  afterAll(async () => {
    if (env) {
      const lp = await Libpod.open({ root: env.root, runRoot: env.runRoot });
      for (const c of await lp.containers.list({ all: true }))
        await lp.containers.remove(c.Id, { force: true }).catch(() => {});
      await lp.close();
      await env.cleanup();
    }
  });

  it('a container started by a process that exited is seen and controlled by a new one', async () => {
    const id = await inChild(
      `const c = await lp.containers.create({ rootfs, name: 'survivor', command: ['sh', '-c', 'trap "exit 7" TERM; while true; do sleep 0.1; done'] });
await lp.containers.start(c.id);
console.log(c.id);`,
      env,
    );
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const lp = await Libpod.open({ root: env.root, runRoot: env.runRoot });
    try {
      const ins = await lp.containers.inspect('survivor');
      expect(ins.State.Status).toBe('running');
      expect(() => process.kill(ins.State.Pid, 0)).not.toThrow();
      // conmon left the starting program's cgroups for podman's <parent>/conmon (cgroupfs):
      // every v1 controller hierarchy, or the unified one on a v2-only host.
      const groups = (await readFile(`/proc/${ins.State.ConmonPid}/cgroup`, 'utf8')).trim().split('\n');
      const v1 = groups.filter((l) => /^\d+:[a-z_,]+:/.test(l) && !l.includes('name='));
      const expected = v1.length ? v1 : groups.filter((l) => l.startsWith('0::'));
      expect(expected.length).toBeGreaterThan(0);
      for (const l of expected) expect(l).toMatch(/:\/libpod_parent\/conmon$/);
      expect((await lp.containers.exec(id, { command: ['echo', 'hi'] })).stdout).toBe('hi\n');
      await lp.containers.stop(id);
      expect((await lp.containers.inspect(id)).State.ExitCode).toBe(7);
      await lp.containers.remove(id);
    } finally {
      await lp.close();
    }
  });

  it('the exit hook records the exit and the died event while no program runs', async () => {
    const id = await inChild(
      `const c = await lp.containers.create({ rootfs, command: ['sh', '-c', 'sleep 0.3; exit 4'] });
await lp.containers.start(c.id);
console.log(c.id);`,
      env,
    );
    // Read the record file directly: no library code runs in this process to reconcile it.
    const rec = await until(async () => {
      const r = await readRecord(env, id);
      return r.state.status === 'exited' ? r : undefined;
    });
    expect(rec.state.exitCode).toBe(4);
    const events = (await readFile(join(env.root, 'events', 'events.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.id === id);
    expect(events.map((e) => e.action)).toEqual(['create', 'init', 'start', 'died']);
    expect(events[3].attributes.exitCode).toBe('4');
    // runtime state deleted by the hook
    expect(existsSync(join(env.runRoot, 'runtime', id))).toBe(false);
    const lp = await Libpod.open({ root: env.root, runRoot: env.runRoot });
    await lp.containers.remove(id);
    await lp.close();
  });

  it('the exit hook removes rm containers', async () => {
    const id = await inChild(
      `const c = await lp.containers.create({ rootfs, rm: true, command: ['sh', '-c', 'sleep 0.2'] });
await lp.containers.start(c.id);
console.log(c.id);`,
      env,
    );
    await until(async () => (existsSync(join(env.root, 'containers', id)) ? undefined : true));
    expect(existsSync(join(env.runRoot, 'containers', id))).toBe(false);
  });

  it('restart policy on-failure:2 restarts twice through the hook, then stays exited', async () => {
    const id = await inChild(
      `const c = await lp.containers.create({ rootfs, restartPolicy: 'on-failure:2', command: ['sh', '-c', 'sleep 0.1; exit 1'] });
await lp.containers.start(c.id);
console.log(c.id);`,
      env,
    );
    const rec = await until(async () => {
      const r = await readRecord(env, id);
      return r.state.status === 'exited' && r.state.restartCount === 2 ? r : undefined;
    });
    expect(rec.state.exitCode).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect((await readRecord(env, id)).state.restartCount).toBe(2);
    const lp = await Libpod.open({ root: env.root, runRoot: env.runRoot });
    try {
      const starts: string[] = [];
      for await (const ev of lp.events.read({ container: [id], action: ['start', 'died', 'restart'] }))
        starts.push(ev.action);
      expect(starts).toEqual(['start', 'died', 'restart', 'start', 'died', 'restart', 'start', 'died']);
      expect((await lp.containers.inspect(id)).RestartCount).toBe(2);
      await lp.containers.remove(id);
    } finally {
      await lp.close();
    }
  });

  it('restart policy always restarts an exit but not a user stop', async () => {
    const lp = await Libpod.open({ root: env.root, runRoot: env.runRoot });
    try {
      const { id } = await lp.containers.create({
        rootfs: env.rootfs,
        restartPolicy: 'always',
        command: ['sh', '-c', 'sleep 0.2; exit 0'],
      });
      await lp.containers.start(id);
      await until(async () => ((await readRecord(env, id)).state.restartCount >= 1 ? true : undefined));
      await until(async () =>
        (await lp.containers.inspect(id)).State.Status === 'running' ? true : undefined,
      );
      await lp.containers.stop(id, { timeout: 0 });
      await new Promise((r) => setTimeout(r, 600));
      expect((await lp.containers.inspect(id)).State.Status).toBe('exited');
      await lp.containers.remove(id);
    } finally {
      await lp.close();
    }
  });
});
