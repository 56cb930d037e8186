/**
 * The README demo: runs containers from a busybox root filesystem through conmon + runc.
 * Run it with `bash scripts/demo.sh` (as root; it sets up what is missing and builds first).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Libpod } from '@libpod-ts/core';
import { ImageError } from '@libpod-ts/image';

console.log('libpod-ts demo: packages load', typeof ImageError);

/** A tiny root filesystem: busybox-static and a few applet links. */
async function busyboxRootfs(dir: string): Promise<string> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await mkdir(join(dir, 'etc'), { recursive: true });
  await copyFile('/bin/busybox', join(dir, 'bin', 'busybox'));
  for (const a of ['sh', 'echo', 'sleep', 'cat', 'ps', 'id', 'hostname', 'uname'])
    await symlink('busybox', join(dir, 'bin', a));
  await writeFile(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await writeFile(join(dir, 'etc', 'group'), 'root:x:0:\n');
  return dir;
}

async function containers(): Promise<void> {
  if (process.getuid?.() !== 0 || !existsSync('/bin/busybox')) {
    console.log('containers: skipped (needs root and busybox-static)');
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'libpod-ts-demo-'));
  try {
    const rootfs = await busyboxRootfs(join(dir, 'rootfs'));
    await using lp = await Libpod.open({
      root: join(dir, 'root'),
      runRoot: join(dir, 'run'),
      storage: false,
    });

    // run: create + start + wait, output captured, container removed
    const hello = await lp.containers.run({
      rootfs,
      command: ['sh', '-c', 'echo "hello from $(hostname), $(uname -s)"; echo "a warning" >&2; exit 3'],
      rm: true,
    });
    console.log(
      `run: exit ${hello.exitCode}, stdout ${JSON.stringify(hello.stdout)}, stderr ${JSON.stringify(hello.stderr)}`,
    );

    // a long-running container: exec, logs, inspect, stats, stop
    const { id, name } = await lp.containers.create({
      rootfs,
      name: 'demo-web',
      labels: { app: 'demo' },
      command: ['sh', '-c', 'trap "echo bye; exit 0" TERM; while true; do echo tick; sleep 0.2; done'],
    });
    await lp.containers.start(id);
    const ex = await lp.containers.exec(id, { command: ['ps', '-o', 'pid,args'] });
    console.log(`exec ps in ${name} (exit ${ex.exitCode}):\n${ex.stdout.trimEnd()}`);
    const ins = await lp.containers.inspect(name);
    console.log(`inspect: ${ins.Name} ${ins.State.Status} pid ${ins.State.Pid} runtime ${ins.OCIRuntime}`);
    const st = await lp.containers.stats(id);
    console.log(
      `stats: cgroup v${st.cgroupVersion}, ${st.pids} pids, ${(st.memoryUsageBytes / 1024).toFixed(0)} KiB`,
    );
    console.log(
      'list:',
      (await lp.containers.list({ filters: { label: ['app=demo'] } })).map((c) => `${c.Names[0]} ${c.State}`),
    );
    await lp.containers.stop(id, { timeout: 5 });
    const lines: string[] = [];
    for await (const l of lp.containers.logs(id, { tail: 3 })) lines.push(`${l.stream}: ${l.line}`);
    console.log(
      `stopped with exit code ${(await lp.containers.inspect(id)).State.ExitCode}; last log lines:`,
      lines,
    );
    await lp.containers.remove(id);

    const actions: string[] = [];
    for await (const ev of lp.events.read({ container: ['demo-web'] })) actions.push(ev.action);
    console.log('events of demo-web:', actions.join(' -> '));
  } finally {
    // conmon may still be running the exit hook of the last container for a moment.
    await new Promise((r) => setTimeout(r, 300));
    await rm(dir, { recursive: true, force: true });
  }
}

await containers();
