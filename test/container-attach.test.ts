import { PassThrough } from 'node:stream';
import { Libpod } from '@libpod-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSkipReason, makeTestEnv, type TestEnv } from './container-fixtures.js';

const skip = containerSkipReason();
if (skip) console.warn(`skipping container attach tests: ${skip}`);

const collect = (s: PassThrough) => {
  let text = '';
  s.on('data', (d: Buffer) => {
    text += d.toString();
  });
  return () => text;
};

describe.skipIf(skip !== undefined)('attach through conmon (SOCK_SEQPACKET)', () => {
  let env: TestEnv;
  let lp: Libpod;

  beforeAll(async () => {
    env = await makeTestEnv('container-attach');
    lp = await Libpod.open({ root: env.root, runRoot: env.runRoot, storage: false });
  });
  afterAll(async () => {
    if (lp) {
      for (const c of await lp.containers.list({ all: true }).catch(() => []))
        await lp.containers.remove(c.Id, { force: true }).catch(() => {});
      await lp.close();
    }
    await env?.cleanup();
  });

  it('streams stdin in and stdout/stderr out, separately, until the container exits', async () => {
    const { id } = await lp.containers.create({
      rootfs: env.rootfs,
      stdin: true,
      command: ['sh', '-c', 'while read l; do echo "out:$l"; echo "err:$l" >&2; done; echo bye'],
    });
    await lp.containers.start(id);
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out = collect(stdout);
    const err = collect(stderr);
    // A long path: the bundle dir is deeper than sockaddr_un allows; attach goes through a dir fd.
    const session = await lp.containers.attach(id, { stdin, stdout, stderr });
    stdin.write('one\n');
    stdin.write('two\n');
    await new Promise((r) => setTimeout(r, 300));
    expect(out()).toBe('out:one\nout:two\n');
    expect(err()).toBe('err:one\nerr:two\n');
    stdin.end();
    await session.closed;
    expect(await lp.containers.wait(id)).toBe(0);
    expect(out()).toBe('out:one\nout:two\nbye\n');
    await lp.containers.remove(id);
  });

  it('detaches without stopping the container', async () => {
    const { id } = await lp.containers.create({
      rootfs: env.rootfs,
      command: ['sh', '-c', 'while true; do echo tick; sleep 0.1; done'],
    });
    await lp.containers.start(id);
    const stdout = new PassThrough();
    const out = collect(stdout);
    const ac = new AbortController();
    const session = await lp.containers.attach(id, { stdout, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 350));
    ac.abort();
    await session.closed;
    expect(out()).toContain('tick\n');
    expect((await lp.containers.inspect(id)).State.Status).toBe('running');
    await lp.containers.remove(id, { force: true });
  });
});
