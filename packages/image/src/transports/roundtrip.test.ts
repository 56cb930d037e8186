/**
 * One suite for every on-disk transport: an image built by the rig goes through oci -> X -> oci
 * and must come back with the same config and diffIDs; layouts we write validate against the OCI
 * schemas, and umoci unpacks one.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildBusyboxImage,
  buildMultiPlatformIndex,
  loadImageSpecValidator,
  makeTempDir,
  removeTempDir,
  skopeo,
} from '@libpod-ts/test-rig';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copy } from '../copy/copy.js';
import { inspectImage } from '../copy/inspect.js';
import type { CopyProgressEvent } from '../types.js';
import { parseImageName } from './defaults.js';
import { DockerArchiveWriter } from './docker-archive/transport.js';

let tmp: string;
let srcRef: string;
let built: Awaited<ReturnType<typeof buildBusyboxImage>>;

beforeAll(async () => {
  tmp = await makeTempDir('image-roundtrip');
  built = await buildBusyboxImage({ dir: join(tmp, 'src'), tag: 'v1' });
  srcRef = built.reference;
});
afterAll(async () => {
  await removeTempDir(tmp);
});

const targets: [string, (d: string) => string][] = [
  ['oci', (d) => `oci:${d}/layout:t1`],
  ['dir', (d) => `dir:${d}/dirimg`],
  ['oci-archive', (d) => `oci-archive:${d}/img.oci.tar:t1`],
  ['docker-archive', (d) => `docker-archive:${d}/img.docker.tar:example.com/a/b:t1`],
];

describe('round trips through every transport', () => {
  for (const [name, mk] of targets) {
    it(`oci -> ${name} -> oci keeps config and diffIDs`, async () => {
      const mid = parseImageName(mk(tmp));
      const events: CopyProgressEvent[] = [];
      await copy(parseImageName(srcRef), mid, { onProgress: (e) => events.push(e) });
      expect(events.at(0)?.type).toBe('copy-start');
      expect(events.at(-1)?.type).toBe('copy-done');
      expect(events.some((e) => e.type === 'blob-verified')).toBe(true);
      const back = parseImageName(`oci:${tmp}/back-${name}:x`);
      await copy(mid, back);
      const a = await inspectImage(parseImageName(srcRef));
      const b = await inspectImage(back);
      expect(b.config?.rootfs.diff_ids).toEqual(a.config?.rootfs.diff_ids);
      expect(b.manifest.config.digest).toBe(a.manifest.config.digest);
      if (name !== 'docker-archive') expect(b.digest).toBe(a.digest);
    });
  }

  it('a second copy into the same oci layout skips every blob', async () => {
    const dest = parseImageName(`oci:${tmp}/layout:t2`);
    const events: CopyProgressEvent[] = [];
    await copy(parseImageName(srcRef), dest, { onProgress: (e) => events.push(e) });
    expect(events.filter((e) => e.type === 'blob-skipped').length).toBe(2);
    expect(events.some((e) => e.type === 'blob-start')).toBe(false);
    const index = JSON.parse(await readFile(join(tmp, 'layout', 'index.json'), 'utf8'));
    const names = index.manifests.map(
      (m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'],
    );
    expect(names.sort()).toEqual(['t1', 't2']);
    expect((await readdir(join(tmp, 'layout', 'blobs', 'sha256'))).filter((f) => f.startsWith('.'))).toEqual(
      [],
    );
  });

  it('writes layouts that validate against the OCI image-spec schemas', async (ctx) => {
    const v = loadImageSpecValidator();
    if ('missing' in v) {
      console.log(`skipping schema validation: ${v.missing}`);
      ctx.skip();
      return;
    }
    const root = join(tmp, 'layout');
    expect(v.validate('layout', JSON.parse(await readFile(join(root, 'oci-layout'), 'utf8')))).toEqual([]);
    const index = JSON.parse(await readFile(join(root, 'index.json'), 'utf8'));
    expect(v.validate('index', index)).toEqual([]);
    for (const m of index.manifests) {
      const man = JSON.parse(await readFile(join(root, 'blobs', 'sha256', m.digest.slice(7)), 'utf8'));
      expect(v.validate('manifest', man)).toEqual([]);
      const cfg = JSON.parse(
        await readFile(join(root, 'blobs', 'sha256', man.config.digest.slice(7)), 'utf8'),
      );
      expect(v.validate('config', cfg)).toEqual([]);
    }
  });

  it('umoci unpacks a layout we wrote', async (ctx) => {
    const umoci = await execa('umoci', ['--version'], { reject: false });
    if (umoci.exitCode !== 0) {
      console.log('skipping: umoci not installed');
      ctx.skip();
      return;
    }
    const bundle = join(tmp, 'bundle');
    await execa('umoci', ['unpack', '--rootless', '--image', `${tmp}/layout:t1`, bundle]);
    expect((await stat(join(bundle, 'rootfs', 'bin', 'busybox'))).isFile()).toBe(true);
  });

  it('skopeo reads the oci:, oci-archive:, docker-archive: and dir: images we wrote', async () => {
    for (const name of [
      `oci:${tmp}/layout:t1`,
      `oci-archive:${tmp}/img.oci.tar:t1`,
      `docker-archive:${tmp}/img.docker.tar`,
      `dir:${tmp}/dirimg`,
    ]) {
      const { stdout } = await skopeo(['inspect', name]);
      const info = JSON.parse(stdout) as { Layers: string[] };
      expect(info.Layers.length).toBe(1);
      await skopeo(['copy', '--quiet', name, `oci:${tmp}/via-skopeo:x`]);
    }
  });

  it('recompresses to zstd and back to gzip, verifying diffIDs', async () => {
    const z = parseImageName(`oci:${tmp}/zstd:z`);
    await copy(parseImageName(srcRef), z, { compression: 'zstd' });
    const zi = await inspectImage(z);
    expect(zi.manifest.layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    const g = parseImageName(`oci:${tmp}/zstd:g`);
    await copy(z, g, { compression: 'gzip' });
    const gi = await inspectImage(g);
    expect(gi.manifest.layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    expect(gi.config?.rootfs.diff_ids).toEqual(built.config.rootfs.diff_ids);
    const u = parseImageName(`oci:${tmp}/zstd:u`);
    await copy(g, u, { compression: 'none' });
    const ui = await inspectImage(u);
    expect(ui.manifest.layers[0]!.digest).toBe(built.layers[0]!.diffID);
  });

  it('writes several images into one docker-archive and reads each back', async () => {
    const w = await DockerArchiveWriter.create(join(tmp, 'multi.tar'));
    try {
      await copy(parseImageName(srcRef), w.reference('one:1'));
      await copy(parseImageName(srcRef), w.reference('quay.io/two/x:2'));
      await w.commit();
    } finally {
      await w.close();
    }
    const one = await inspectImage(parseImageName(`docker-archive:${tmp}/multi.tar:one:1`));
    const two = await inspectImage(parseImageName(`docker-archive:${tmp}/multi.tar:@1`));
    expect(one.config?.rootfs.diff_ids).toEqual(two.config?.rootfs.diff_ids);
    await expect(inspectImage(parseImageName(`docker-archive:${tmp}/multi.tar`))).rejects.toMatchObject({
      code: 'ERR_INVALID_LAYOUT',
    });
    const repos = JSON.parse((await execa('tar', ['-xOf', join(tmp, 'multi.tar'), 'repositories'])).stdout);
    expect(Object.keys(repos).sort()).toEqual(['one', 'quay.io/two/x']);
  });

  it('copies a multi-platform index (all instances, or one platform)', async () => {
    const idx = await buildMultiPlatformIndex({ dir: join(tmp, 'multi-src'), tag: 'm' });
    const all = parseImageName(`oci:${tmp}/multi-all:m`);
    const r = await copy(parseImageName(idx.reference), all, { instances: 'all' });
    expect(r.manifestDigest).toBe(idx.indexDigest);
    const one = parseImageName(`oci:${tmp}/multi-one:arm`);
    const r1 = await copy(parseImageName(idx.reference), one, {
      platform: { os: 'linux', architecture: 'arm64' },
    });
    expect(r1.manifestDigest).toBe(idx.images[1]!.manifestDigest);
    const info = await inspectImage(all, { platform: { os: 'linux', architecture: 'arm', variant: 'v7' } });
    expect(info.platforms).toEqual(['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7']);
    expect(info.manifestDigest).toBe(idx.images[2]!.manifestDigest);
    await expect(
      copy(parseImageName(idx.reference), parseImageName(`oci:${tmp}/x:y`), {
        platform: { os: 'linux', architecture: 's390x' },
      }),
    ).rejects.toMatchObject({ code: 'ERR_NO_MATCHING_PLATFORM' });
    await expect(
      copy(parseImageName(idx.reference), parseImageName(`docker-archive:${tmp}/no.tar`), {
        instances: 'all',
      }),
    ).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED' });
  });
});
