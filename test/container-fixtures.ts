import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBusyboxImage, makeTempDir, removeTempDir } from '@libpod-ts/test-rig';

export const BUSYBOX = '/bin/busybox';
const APPLETS = [
  'sh',
  'echo',
  'true',
  'false',
  'sleep',
  'cat',
  'ls',
  'ps',
  'id',
  'env',
  'kill',
  'pwd',
  'touch',
  'head',
  'dd',
  'yes',
  'hostname',
  'wc',
];

/** Why container tests cannot run here, or undefined when they can. */
export function containerSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'container tests need root';
  if (!existsSync(BUSYBOX)) return 'busybox-static (/bin/busybox) is not installed';
  for (const bin of ['runc', 'conmon']) {
    const found = (process.env.PATH ?? '')
      .split(':')
      .concat(['/usr/sbin', '/usr/bin'])
      .some((d) => existsSync(join(d, bin)));
    if (!found) return `${bin} is not installed`;
  }
  return undefined;
}

/** An exploded busybox rootfs: /bin/busybox + applet links, /etc/passwd and /etc/group. */
export async function makeBusyboxRootfs(dir: string): Promise<string> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  for (const d of ['etc', 'proc', 'sys', 'dev', 'tmp', 'home/app', 'data'])
    await mkdir(join(dir, d), { recursive: true });
  await copyFile(BUSYBOX, join(dir, 'bin', 'busybox'));
  for (const a of APPLETS) await symlink('busybox', join(dir, 'bin', a));
  await writeFile(
    join(dir, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
  );
  await writeFile(join(dir, 'etc', 'group'), 'root:x:0:\napp:x:1001:\nstaff:x:50:app\nnogroup:x:65534:\n');
  await writeFile(join(dir, 'etc', 'not-executable'), 'just text\n', { mode: 0o644 });
  return dir;
}

export interface TestEnv {
  dir: string;
  root: string;
  runRoot: string;
  rootfs: string;
  cleanup(): Promise<void>;
}

/** A temp dir with root, runRoot and a busybox rootfs; cleanup kills and removes everything left. */
export async function makeTestEnv(label = 'container'): Promise<TestEnv> {
  const dir = await makeTempDir(label);
  const root = join(dir, 'root');
  const runRoot = join(dir, 'run');
  const rootfs = await makeBusyboxRootfs(join(dir, 'rootfs'));
  return {
    dir,
    root,
    runRoot,
    rootfs,
    cleanup: async () => {
      // conmon processes (and exit hooks) of this env finish on their own once their container
      // exited; give them a moment, then kill what is left.
      const mine = () =>
        readdirSync('/proc')
          .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
          .filter((pid) => {
            try {
              return (
                readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir) &&
                !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')
              );
            } catch {
              return false;
            }
          })
          .map(Number);
      const runtimeRoot = join(runRoot, 'runtime');
      const runtimeDelete = () => {
        if (!existsSync(runtimeRoot)) return;
        for (const id of readdirSync(runtimeRoot)) {
          try {
            execFileSync('runc', ['--root', runtimeRoot, 'delete', '--force', id], { stdio: 'ignore' });
          } catch {}
        }
      };
      runtimeDelete();
      for (let i = 0; i < 60 && mine().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
      for (const pid of mine()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      runtimeDelete();
      const mounts = readFileSync('/proc/self/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[1] ?? '')
        .filter((m) => m.startsWith(`${dir}/`))
        .reverse();
      for (const m of mounts) {
        try {
          execFileSync('umount', ['-l', m], { stdio: 'ignore' });
        } catch {}
      }
      await removeTempDir(dir);
    },
  };
}

/**
 * Builds a busybox image (rig builder, OCI layout) and imports it into the Libpod's store
 * under `name`, layer by layer (until the image package's containers-storage transport lands).
 */
export async function importRigImage(
  // biome-ignore lint/suspicious/noExplicitAny: the store type comes from @libpod-ts/storage
  store: any,
  layoutDir: string,
  name: string,
  config: Parameters<typeof buildBusyboxImage>[0]['config'] = {},
): Promise<string> {
  const img = await buildBusyboxImage({ dir: layoutDir, config });
  let parent: string | undefined;
  for (const layer of img.layers) {
    const hex = layer.digest.replace(/^sha256:/, '');
    const res = await store.createLayer({
      parent,
      tar: createReadStream(join(layoutDir, 'blobs', 'sha256', hex)),
      expectedDiffID: layer.diffID,
    });
    parent = res.layer?.id ?? res.id;
  }
  const blob = (d: string) => readFileSync(join(layoutDir, 'blobs', 'sha256', d.replace(/^sha256:/, '')));
  const rec = await store.createImage({
    config: blob(img.configDigest),
    manifest: blob(img.manifestDigest),
    manifestMediaType: img.manifest.mediaType,
    topLayer: parent ?? null,
    names: [name],
  });
  return rec.id;
}
