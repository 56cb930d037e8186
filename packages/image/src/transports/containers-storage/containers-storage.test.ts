/**
 * containers-storage: against real components: the rig registry (pull into the store, layers
 * extracted while they download, second pull skipped), the store's overlay/vfs drivers (the
 * pulled rootfs mounts with /bin/busybox), and an oci: layout round trip out of the store that
 * umoci/skopeo-compatible readers accept (config and diffIDs unchanged).
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { openStore, type Store } from '@libpod-ts/storage';
import {
  buildBusyboxImage,
  makeTempDir,
  pushWithSkopeo,
  type RigRegistry,
  removeTempDir,
  skopeo,
  startRegistry,
} from '@libpod-ts/test-rig';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { copy } from '../../copy/copy.js';
import { createTransportRegistry } from '../registry.js';
import { defaultTransports } from '../defaults.js';
import type { CopyProgressEvent, SystemContext, TransportRegistry } from '../../types.js';
import { containersStorageTransport } from './transport.js';

let tmp: string;
let reg: RigRegistry;
let image: Awaited<ReturnType<typeof buildBusyboxImage>>;
let remote: string;

beforeAll(async () => {
  tmp = await makeTempDir('cs-transport');
  image = await buildBusyboxImage({
    dir: join(tmp, 'src'),
    tag: 'v1',
    layers: [
      { kind: 'busybox' },
      { kind: 'files', files: [{ path: 'etc/motd', content: 'hello from layer 2\n' }] },
      { kind: 'random', bytes: 300_000, path: 'data/blob' },
    ],
  });
  reg = await startRegistry({ tls: false, auth: 'none' });
  remote = await pushWithSkopeo(join(tmp, 'src'), 'v1', reg, { repo: 'rig/busybox' });
});
afterAll(async () => {
  await reg?.stop();
  await removeTempDir(tmp);
});

const ctx = (): SystemContext => ({
  insecureRegistries: [reg.host],
  registriesConfPath: join(tmp, 'no-registries.conf'),
  authFilePath: join(tmp, 'no-auth.json'),
  dockerConfigPath: '',
});

describe.each(['overlay', 'vfs'] as const)('containers-storage on %s', (driver) => {
  let dir: string;
  let store: Store;
  let transports: TransportRegistry;
  const mounted: string[] = [];

  beforeEach(async () => {
    dir = await makeTempDir(`cs-${driver}`);
    store = await openStore({ root: join(dir, 'root'), runRoot: join(dir, 'run'), driver });
    transports = createTransportRegistry([...defaultTransports(), containersStorageTransport(store)]);
  });
  afterEach(async () => {
    for (const c of mounted.splice(0)) await store.unmount(c, { force: true }).catch(() => undefined);
    await store.close();
    await removeTempDir(dir);
  });

  it('pulls from the registry into the store; the rootfs mounts with /bin/busybox; a second pull skips every layer', async () => {
    const events: CopyProgressEvent[] = [];
    const res = await copy(
      transports.parseImageName(`docker://${remote}`),
      transports.parseImageName(`containers-storage:${remote}`),
      {
        ctx: ctx(),
        onProgress: (e) => events.push(e),
      },
    );
    expect(res.manifestDigest).toBe(image.manifestDigest);
    const img = await store.lookupImage(remote);
    expect(`sha256:${img.id}`).toBe(image.configDigest);
    expect(img.names).toEqual([remote]);
    expect(img.digests).toEqual([`${remote.replace(/:v1$/, '')}@${image.manifestDigest}`]);
    expect(img.layers.length).toBe(3);
    const layers = await Promise.all(img.layers.map((l) => store.getLayer(l)));
    expect(layers.map((l) => l.diffID)).toEqual(image.config.rootfs.diff_ids);
    expect(layers.map((l) => l.compressedDigest)).toEqual(image.manifest.layers.map((l) => l.digest));
    expect((await store.lookupImage(image.manifestDigest)).id).toBe(img.id);

    const c = await store.createContainer({ image: remote, name: 'pulled' });
    const root = await store.mount('pulled');
    mounted.push('pulled');
    expect((await stat(join(root, 'bin/busybox'))).isFile()).toBe(true);
    expect(await readFile(join(root, 'etc/motd'), 'utf8')).toBe('hello from layer 2\n');
    await store.unmount('pulled');
    mounted.pop();
    await store.deleteContainer(c.id);

    const again: CopyProgressEvent[] = [];
    await copy(
      transports.parseImageName(`docker://${remote}`),
      transports.parseImageName(`containers-storage:${remote}`),
      {
        ctx: ctx(),
        onProgress: (e) => again.push(e),
      },
    );
    const layerEvents = again.filter((e) => 'kind' in e && e.kind === 'layer');
    expect(layerEvents.map((e) => e.type)).toEqual(['blob-skipped', 'blob-skipped', 'blob-skipped']);
    expect((await store.check()).problems).toEqual([]);
  });

  it('copies out of the store to an oci: layout with the same config and diffIDs; skopeo reads it', async () => {
    await copy(
      transports.parseImageName(`docker://${remote}`),
      transports.parseImageName(`containers-storage:${remote}`),
      { ctx: ctx() },
    );
    const out = join(dir, 'out');
    const res = await copy(
      transports.parseImageName(`containers-storage:${remote}`),
      transports.parseImageName(`oci:${out}:back`),
      {
        ctx: ctx(),
        compression: 'gzip',
      },
    );
    const manifest = JSON.parse(Buffer.from(res.manifest).toString('utf8')) as {
      config: { digest: string };
      layers: Array<{ mediaType: string }>;
    };
    expect(manifest.config.digest).toBe(image.configDigest);
    expect(manifest.layers.every((l) => l.mediaType.endsWith('+gzip'))).toBe(true);
    // skopeo verifies every blob (and the config) when copying the layout.
    await skopeo(['copy', '--quiet', `oci:${out}:back`, `oci:${join(dir, 'skopeo-copy')}:x`]);
    // Push to the registry (gzip), as podman push does; skopeo pulls it back and verifies it.
    const pushed = `${reg.host}/rig/pushed-${driver}:1`;
    await copy(
      transports.parseImageName(`containers-storage:${remote}`),
      transports.parseImageName(`docker://${pushed}`),
      {
        ctx: ctx(),
        compression: 'gzip',
      },
    );
    await skopeo([
      'copy',
      '--quiet',
      '--src-tls-verify=false',
      `docker://${pushed}`,
      `oci:${join(dir, 'skopeo-pull')}:x`,
    ]);
    // And back into a second store: same image ID, a rootfs with busybox.
    const dir2 = await makeTempDir(`cs-${driver}-2`);
    const store2 = await openStore({ root: join(dir2, 'root'), runRoot: join(dir2, 'run'), driver });
    try {
      const t2 = createTransportRegistry([...defaultTransports(), containersStorageTransport(store2)]);
      await copy(
        t2.parseImageName(`oci:${out}:back`),
        t2.parseImageName('containers-storage:localhost/back:1'),
        { ctx: ctx() },
      );
      const img2 = await store2.lookupImage('back:1');
      expect(`sha256:${img2.id}`).toBe(image.configDigest);
    } finally {
      await store2.close();
      await removeTempDir(dir2);
    }
  });

  it('a layer whose content does not match its diffID is refused and removed; close() wakes waiting blobs', async () => {
    const src = await transports.parseImageName(`docker://${remote}`).newSource(ctx());
    const dest = await transports.parseImageName(`containers-storage:${remote}`).newDestination();
    const cfg = image.manifest.config;
    const [l0, l1] = image.manifest.layers as [
      (typeof image.manifest.layers)[0],
      (typeof image.manifest.layers)[0],
    ];
    let waiting: Promise<unknown> | undefined;
    try {
      await dest.putBlob(
        (await src.getBlob(cfg)).stream,
        { mediaType: cfg.mediaType, digest: cfg.digest, size: cfg.size },
        { isConfig: true },
      );
      // Layer 1's bytes announced as layer 0: extracted, hashed, refused.
      await expect(
        dest.putBlob(
          (await src.getBlob(l1)).stream,
          { mediaType: l1.mediaType, digest: l1.digest, size: l1.size },
          {
            diffID: image.config.rootfs.diff_ids[0],
          },
        ),
      ).rejects.toMatchObject({ code: 'ERR_DIFFID_MISMATCH' });
      // Layer 2 waits for its parent (position 1), which never comes.
      const l2 = image.manifest.layers[2]!;
      waiting = dest
        .putBlob(
          (await src.getBlob(l2)).stream,
          { mediaType: l2.mediaType, digest: l2.digest, size: l2.size },
          {
            diffID: image.config.rootfs.diff_ids[2],
          },
        )
        .catch((e: unknown) => e);
      void l0;
    } finally {
      await dest.close();
      await src.close();
    }
    expect(await waiting).toMatchObject({ code: expect.stringMatching(/^ERR_/) });
    expect(await store.listImages()).toEqual([]);
    expect(await store.listLayers()).toEqual([]);
    expect((await store.check()).problems).toEqual([]);
  });

  it('two store users pulling the same image at once share the layers and both commit', async () => {
    const other = await openStore({ root: join(dir, 'root'), runRoot: join(dir, 'run'), driver });
    try {
      const t2 = createTransportRegistry([...defaultTransports(), containersStorageTransport(other)]);
      const [a, b] = await Promise.all([
        copy(
          transports.parseImageName(`docker://${remote}`),
          transports.parseImageName(`containers-storage:${remote}`),
          {
            ctx: ctx(),
          },
        ),
        copy(
          t2.parseImageName(`docker://${remote}`),
          t2.parseImageName('containers-storage:localhost/second:1'),
          {
            ctx: ctx(),
          },
        ),
      ]);
      expect(a.manifestDigest).toBe(b.manifestDigest);
      const img = await store.lookupImage(remote);
      expect(img.names.sort()).toEqual([remote, 'localhost/second:1'].sort());
      expect((await store.listLayers()).length).toBe(3);
      expect((await other.check()).problems).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('an image repeating a layer (same blob twice) gets both chain positions', async () => {
    const layout = join(dir, 'dup');
    const same = { kind: 'files' as const, files: [{ path: 'etc/same', content: 'same\n' }] };
    const dup = await buildBusyboxImage({ dir: layout, tag: 'd', layers: [{ kind: 'busybox' }, same, same] });
    expect(dup.manifest.layers[1]!.digest).toBe(dup.manifest.layers[2]!.digest);
    await copy(
      transports.parseImageName(`oci:${layout}:d`),
      transports.parseImageName('containers-storage:localhost/dup:1'),
      {
        ctx: ctx(),
      },
    );
    const img = await store.lookupImage('dup:1');
    expect(img.layers.length).toBe(3);
    expect(new Set(img.layers).size).toBe(3);
    const layers = await Promise.all(img.layers.map((l) => store.getLayer(l)));
    expect(layers.map((l) => l.diffID)).toEqual(dup.config.rootfs.diff_ids);
    expect((await store.check()).problems).toEqual([]);
  });

  it('parses references: names normalised, IDs, store specs for this store only', async () => {
    const t = containersStorageTransport(store);
    expect(t.parseReference('busybox').toString()).toContain('docker.io/library/busybox:latest');
    const id = 'a'.repeat(64);
    expect((t.parseReference(`sha256:${id}`) as unknown as { id: string }).id).toBe(id);
    expect(() => t.parseReference('[vfs@/elsewhere]busybox')).toThrow(/another store/);
    expect(
      t.parseReference(`[${driver}@${store.root}+${store.runRoot}]busybox:1`).dockerReference()?.toString(),
    ).toBe('docker.io/library/busybox:1');
  });
});
