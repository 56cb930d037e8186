import { existsSync } from 'node:fs';
import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type PassThrough, Readable } from 'node:stream';
import { Libpod, LibpodClosedError } from '@libpod-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSkipReason, makeTestEnv, type TestEnv } from './container-fixtures.js';

const skip = containerSkipReason();
if (skip) console.warn(`skipping container exec tests: ${skip}`);

/** Resolves with the text read from `r` once `pred` holds (or rejects after `ms`). */
function readUntil(r: Readable, pred: (text: string) => boolean, ms = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      r.off('data', onData);
      reject(new Error(`timed out; read so far: ${JSON.stringify(text)}`));
    }, ms);
    const onData = (d: Buffer) => {
      text += d.toString();
      if (pred(text)) {
        clearTimeout(timer);
        r.off('data', onData);
        resolve(text);
      }
    };
    r.on('data', onData);
  });
}

describe.skipIf(skip !== undefined)('interactive exec and a closed Libpod', () => {
  let env: TestEnv;
  let lp: Libpod;
  let id: string;

  beforeAll(async () => {
    env = await makeTestEnv('container-exec');
    for (const applet of ['stty', 'tty']) await symlink('busybox', join(env.rootfs, 'bin', applet));
    lp = await Libpod.open({ root: env.root, runRoot: env.runRoot, storage: false, network: false });
    ({ id } = await lp.containers.create({ rootfs: env.rootfs, command: ['sleep', '1000'] }));
    await lp.containers.start(id);
  });
  afterAll(async () => {
    if (lp) {
      for (const c of await lp.containers.list({ all: true }).catch(() => []))
        await lp.containers.remove(c.Id, { force: true }).catch(() => {});
      await lp.close();
    }
    await env?.cleanup();
  });

  it('pipes a stream into exec and returns what the process wrote', async () => {
    const input = Readable.from([Buffer.from('hello\n'), Buffer.from('world\n')]);
    const r = await lp.containers.exec(id, { command: ['cat'], stdin: input });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('hello\nworld\n');
    expect(r.stderr).toBe('');
    // Larger than conmon's 8 KiB messages, binary-safe for text.
    const big = `${'x'.repeat(100_000)}\n`;
    const r2 = await lp.containers.exec(id, { command: ['wc', '-c'], stdin: Readable.from([big]) });
    expect(r2.stdout.trim()).toBe(String(big.length));
  });

  it('streams output while the process runs; stdin: true gives a writable; stderr separate', async () => {
    const st = await lp.containers.execStream(id, {
      command: ['sh', '-c', 'while read l; do echo "out:$l"; echo "err:$l" >&2; done; exit 3'],
      stdin: true,
    });
    expect(st.pid).toBeGreaterThan(0);
    const firstOut = readUntil(st.stdout, (t) => t.includes('out:one\n'));
    const firstErr = readUntil(st.stderr, (t) => t.includes('err:one\n'));
    st.stdin!.write('one\n');
    // Output arrives before the process exits.
    expect(await firstOut).toBe('out:one\n');
    expect(await firstErr).toBe('err:one\n');
    const rest = readUntil(st.stdout, (t) => t.includes('out:two\n'));
    st.stdin!.write('two\n');
    expect(await rest).toBe('out:two\n');
    st.stdin!.end();
    expect(await st.exitCode).toBe(3);
    const events: string[] = [];
    for await (const ev of lp.events.read({ container: [id] })) events.push(ev.action);
    expect(events.filter((a) => a === 'exec_died').length).toBeGreaterThan(0);
  });

  it('runs a tty session with a console size, resizes it, and reports the exit code', async () => {
    const r = await lp.containers.exec(id, {
      command: ['sh', '-c', 'tty; stty size; exit 5'],
      tty: true,
      consoleSize: { height: 30, width: 100 },
    });
    expect(r.exitCode).toBe(5);
    expect(r.stdout).toMatch(/^\/dev\/pts\/\d+\r\n30 100\r\n$/);

    const st = await lp.containers.execStream(id, {
      command: ['sh', '-c', 'read x; stty size'],
      tty: true,
      stdin: true,
      consoleSize: { height: 24, width: 80 },
    });
    let out = '';
    st.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await st.resize({ height: 40, width: 120 });
    await new Promise((r) => setTimeout(r, 200));
    st.stdin!.write('go\n');
    expect(await st.exitCode).toBe(0);
    expect(out).toContain('40 120');
  });

  it('exec of a missing command through the attach path is 127-class error or exit code', async () => {
    await expect(
      lp.containers.exec(id, { command: ['/no/such/thing'], stdin: Readable.from(['x']) }),
    ).rejects.toMatchObject({ exitCode: 127 });
  });

  it('an exited container leaves no runtime state and no cgroup (state removed in-process)', async () => {
    const r = await lp.containers.run({ rootfs: env.rootfs, command: ['true'], rm: true });
    expect(r.exitCode).toBe(0);
    expect(existsSync(join(env.runRoot, 'runtime', r.id))).toBe(false);
    for (const ctl of ['memory', 'pids', 'cpu', 'unified', 'systemd']) {
      expect(existsSync(`/sys/fs/cgroup/${ctl}/libpod_parent/libpod-${r.id}`)).toBe(false);
    }
    // Not rm: the record stays exited and can start again (the runtime state is created anew).
    const { id: again } = await lp.containers.create({ rootfs: env.rootfs, command: ['true'] });
    await lp.containers.start(again);
    expect(await lp.containers.wait(again)).toBe(0);
    await lp.containers.start(again);
    expect(await lp.containers.wait(again)).toBe(0);
    expect(existsSync(join(env.runRoot, 'runtime', again))).toBe(false);
    await lp.containers.remove(again);
  });

  it('after close(): typed errors on every facade, pending waits reject, follows end; idempotent', async () => {
    const lp2 = await Libpod.open({ root: env.root, runRoot: env.runRoot, storage: false, network: false });
    const { id: long } = await lp2.containers.create({ rootfs: env.rootfs, command: ['sleep', '1000'] });
    await lp2.containers.start(long);
    const pendingWait = lp2.containers.wait(long);
    const follow = (async () => {
      const lines: string[] = [];
      for await (const l of lp2.containers.logs(long, { follow: true })) lines.push(l.line);
      return lines;
    })();
    const sub = (async () => {
      let n = 0;
      for await (const _ of lp2.events.subscribe({ container: [long] })) n++;
      return n;
    })();
    await new Promise((r) => setTimeout(r, 100));
    await lp2.close();
    await lp2.close();
    await expect(pendingWait).rejects.toBeInstanceOf(LibpodClosedError);
    await expect(follow).resolves.toEqual([]);
    await expect(sub).resolves.toBe(0);
    await expect(lp2.containers.list()).rejects.toMatchObject({ code: 'ERR_LIBPOD_CLOSED' });
    await expect(lp2.containers.inspect(long)).rejects.toBeInstanceOf(LibpodClosedError);
    await expect(lp2.images.list()).rejects.toBeInstanceOf(LibpodClosedError);
    await expect(async () => {
      for await (const _ of lp2.events.read()) break;
    }).rejects.toBeInstanceOf(LibpodClosedError);
    await expect(async () => {
      for await (const _ of lp2.containers.logs(long)) break;
    }).rejects.toBeInstanceOf(LibpodClosedError);
    expect(() => lp2.networks).toThrow(LibpodClosedError);
    expect(lp2.isClosed).toBe(true);
    // The container outlives the closed instance; the other one still controls it.
    expect((await lp.containers.inspect(long)).State.Status).toBe('running');
    await lp.containers.remove(long, { force: true });
  });
});

describe.skipIf(skip !== undefined)('exec option and state checks', () => {
  it('refuses a detached stream, a bad console size and a container that is not running', async () => {
    const env = await makeTestEnv('container-exec-refuse');
    const lp = await Libpod.open({ root: env.root, runRoot: env.runRoot, storage: false, network: false });
    try {
      const { id } = await lp.containers.create({ rootfs: env.rootfs, command: ['sleep', '1000'] });
      await expect(lp.containers.execStream(id, { command: ['true'] })).rejects.toMatchObject({
        code: 'ERR_CONTAINER_NOT_RUNNING',
      });
      await lp.containers.start(id);
      await expect(lp.containers.execStream(id, { command: ['true'], detach: true })).rejects.toMatchObject({
        code: 'ERR_INVALID_OPTIONS',
      });
      await expect(
        lp.containers.exec(id, { command: ['true'], tty: true, consoleSize: { height: 0, width: 80 } }),
      ).rejects.toThrow(/consoleSize\.height/);
      // resize on a session without a terminal is a no-op; nothing is left in the bundle.
      const st = await lp.containers.execStream(id, { command: ['echo', 'hi'] });
      await st.resize({ height: 10, width: 10 });
      expect(await st.exitCode).toBe(0);
      expect(existsSync(join(env.runRoot, 'containers', id, 'exec', st.sessionId))).toBe(false);
      const r = await lp.containers.exec(id, { command: ['true'] });
      for (const sid of [st.sessionId, r.sessionId])
        expect(existsSync(join(env.runRoot, 'socket', sid))).toBe(false);
      await lp.containers.remove(id, { force: true });
    } finally {
      await lp.close();
      await env.cleanup();
    }
  });
});

describe.skipIf(skip !== undefined)('stdin stream type check', () => {
  it('rejects a non-stream stdin naming the field', async () => {
    const env = await makeTestEnv('container-exec-bad');
    const lp = await Libpod.open({ root: env.root, runRoot: env.runRoot, storage: false, network: false });
    try {
      const { id } = await lp.containers.create({ rootfs: env.rootfs, command: ['sleep', '1000'] });
      await lp.containers.start(id);
      await expect(
        lp.containers.exec(id, { command: ['cat'], stdin: 'text' as unknown as PassThrough }),
      ).rejects.toThrow(/stdin/);
      await lp.containers.remove(id, { force: true });
    } finally {
      await lp.close();
      await env.cleanup();
    }
  });
});
