/**
 * lp.images against real components: the rig registry (pull, push, read back with skopeo), the
 * offline image builder, archives read back by skopeo and loaded into a fresh store, and
 * containers (runc + conmon) that hold an image against removal.
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ImageArchiveError,
  ImageHasNamesError,
  ImageInUseError,
  ImageNotFoundError,
  ImageTagNotFoundError,
  InvalidImageNameError,
  InvalidOptionsError,
  Libpod,
} from '@libpod-ts/core';
import type { CopyProgressEvent, SystemContext } from '@libpod-ts/image';
import {
  type BuiltImage,
  buildBusyboxImage,
  inspectWithSkopeo,
  makeTempDir,
  pushWithSkopeo,
  type RigRegistry,
  removeTempDir,
  skopeo,
  startRegistry,
} from '@libpod-ts/test-rig';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerSkipReason, makeTestEnv, type TestEnv } from './container-fixtures.js';

const skip = containerSkipReason();
if (skip) console.warn(`skipping lp.images tests: ${skip}`);

describe.skipIf(skip !== undefined)('lp.images: pull, tag, push, save/load, inspect, remove', () => {
  let env: TestEnv;
  let lp: Libpod;
  let reg: RigRegistry;
  let built: BuiltImage;
  let remote: string;
  let driver: 'overlay' | 'vfs' = 'overlay';
  const others: Libpod[] = [];

  const ctx = (): SystemContext => ({
    insecureRegistries: [reg.host],
    registriesConfPath: join(env.dir, 'no-registries.conf'),
    authFilePath: join(env.dir, 'no-auth.json'),
    dockerConfigPath: '',
  });

  const open = async (name: string) => {
    const l = await Libpod.open({
      root: join(env.dir, name, 'root'),
      runRoot: join(env.dir, name, 'run'),
      storage: { driver },
      network: false,
    });
    others.push(l);
    return l;
  };

  beforeAll(async () => {
    env = await makeTestEnv('images-api');
    const opts = { root: env.root, runRoot: env.runRoot, network: false as const };
    try {
      lp = await Libpod.open({ ...opts, storage: { driver } });
      await lp.images.store();
    } catch (err) {
      console.warn(`overlay unavailable (${(err as Error).message}); using vfs`);
      await lp?.close();
      driver = 'vfs';
      lp = await Libpod.open({ ...opts, storage: { driver } });
    }
    built = await buildBusyboxImage({
      dir: join(env.dir, 'layout'),
      tag: 'v1',
      layers: [
        { kind: 'busybox', applets: ['bin/sh', 'bin/cat', 'bin/sleep', 'bin/true'] },
        { kind: 'files', files: [{ path: 'etc/motd', content: 'hello from the rig\n' }] },
      ],
      config: { env: ['FOO=bar'], cmd: ['cat', '/etc/motd'], labels: { 'org.example.kind': 'rig' } },
      author: 'rig author',
    });
    reg = await startRegistry({ tls: false, auth: 'none' });
    remote = await pushWithSkopeo(join(env.dir, 'layout'), 'v1', reg, { repo: 'rig/busybox' });
  });

  afterAll(async () => {
    for (const l of [lp, ...others]) {
      if (!l) continue;
      for (const c of await l.containers.list({ all: true }).catch(() => [])) {
        await l.containers.remove(c.Id, { force: true }).catch(() => {});
      }
      await l.close();
    }
    await reg?.stop();
    await env?.cleanup();
  });

  it('pulls from the registry with progress; inspect gives podman fields from the record and config', async () => {
    const events: CopyProgressEvent[] = [];
    const img = await lp.images.pull(remote, { ctx: ctx(), onProgress: (e) => events.push(e) });
    expect(img.names).toEqual([remote]);
    expect(events.filter((e) => e.type === 'blob-verified' && e.kind === 'layer').length).toBe(2);
    expect(events.at(-1)?.type).toBe('copy-done');

    const ins = await lp.images.inspect('rig/busybox:v1');
    expect(ins.Id).toBe(built.configDigest.slice('sha256:'.length));
    expect(ins.Digest).toBe(built.manifestDigest);
    expect(ins.RepoTags).toEqual([remote]);
    expect(ins.RepoDigests).toEqual([`${reg.host}/rig/busybox@${built.manifestDigest}`]);
    expect(ins.Created).toBe(built.config.created);
    expect(ins.Architecture).toBe('amd64');
    expect(ins.Os).toBe('linux');
    expect(ins.Author).toBe('rig author');
    expect(ins.Config.Env).toEqual(['FOO=bar']);
    expect(ins.Config.Cmd).toEqual(['cat', '/etc/motd']);
    expect(ins.Labels).toEqual({ 'org.example.kind': 'rig' });
    expect(ins.RootFS).toEqual({ Type: 'layers', Layers: built.config.rootfs.diff_ids });
    // Layers plus config and manifest, as containers/storage counts an image's size.
    const manifestSize = built.manifestDescriptor.size;
    const configSize = built.manifest.config.size;
    expect(ins.Size).toBe(built.layers.reduce((n, l) => n + l.tarSize, 0) + manifestSize + configSize);
    expect(ins.History.map((h) => h.created_by)).toEqual(built.config.history.map((h) => h.created_by));
    expect(ins.ManifestType).toBe(built.manifest.mediaType);
    expect(ins.GraphDriver.Name).toBe(driver);

    await expect(lp.images.inspect('localhost/nope')).rejects.toBeInstanceOf(ImageNotFoundError);
  });

  it('tags with podman normalisation and untags; bad names and unknown images are typed errors', async () => {
    let rec = await lp.images.tag(remote, 'mytest');
    expect(rec.names).toContain('localhost/mytest:latest');
    rec = await lp.images.tag('mytest', 'docker.io/rigcopy:2');
    expect(rec.names).toContain('docker.io/library/rigcopy:2');
    expect((await lp.images.get('localhost/mytest')).id).toBe(rec.id);

    for (const bad of ['UPPER/case', 'has space', `x@${built.manifestDigest}`, 'a'.repeat(64), '']) {
      const err = await lp.images.tag(remote, bad).catch((e) => e);
      expect(err, bad).toBeInstanceOf(InvalidImageNameError);
      expect(err.code).toBe('ERR_INVALID_IMAGE_NAME');
    }
    const missing = await lp.images.tag('localhost/nope:1', 'whatever').catch((e) => e);
    expect(missing).toBeInstanceOf(ImageNotFoundError);
    expect(missing.code).toBe('ERR_IMAGE_NOT_FOUND');

    rec = await lp.images.untag(rec.id, 'docker.io/rigcopy:2');
    expect(rec.names).not.toContain('docker.io/library/rigcopy:2');
    expect(await lp.images.exists('docker.io/library/rigcopy:2')).toBe(false);
    await expect(lp.images.untag(rec.id, 'rigcopy:2')).rejects.toBeInstanceOf(ImageTagNotFoundError);
    await expect(lp.images.untag('localhost/nope:1', 'x')).rejects.toBeInstanceOf(ImageNotFoundError);
    expect((await lp.images.get(remote)).names.sort()).toEqual([remote, 'localhost/mytest:latest'].sort());
  });

  it('pushes to the rig registry (compressed, with progress); skopeo reads the image back', async () => {
    const target = `${reg.host}/pushed/busybox:v2`;
    const events: CopyProgressEvent[] = [];
    const res = await lp.images.push('mytest', `docker://${target}`, {
      ctx: ctx(),
      onProgress: (e) => events.push(e),
    });
    expect(res.destination).toBe(`docker://${target}`);
    expect(events.some((e) => e.type === 'blob-done' && e.kind === 'layer')).toBe(true);

    const summary = await inspectWithSkopeo(target, reg);
    expect(summary.Digest).toBe(res.manifestDigest);
    expect(summary.Labels).toEqual({ 'org.example.kind': 'rig' });
    expect((summary.Layers as string[]).length).toBe(2);
    const config = await skopeo([
      'inspect',
      '--config',
      '--tls-verify=false',
      '--no-creds',
      `docker://${target}`,
    ]);
    const cfg = JSON.parse(config.stdout) as { rootfs: { diff_ids: string[] } };
    expect(cfg.rootfs.diff_ids).toEqual(built.config.rootfs.diff_ids);
    const raw = await inspectWithSkopeo(target, reg, { raw: true });
    expect((raw.layers as { mediaType: string }[]).map((l) => l.mediaType)).toEqual([
      'application/vnd.oci.image.layer.v1.tar+gzip',
      'application/vnd.oci.image.layer.v1.tar+gzip',
    ]);

    // Default destination: the name the reference resolves to; a bare name is a registry name.
    await lp.images.tag('mytest', `${reg.host}/default/busybox:v3`);
    const def = await lp.images.push(`${reg.host}/default/busybox:v3`, undefined, { ctx: ctx() });
    expect(def.destination).toBe(`docker://${reg.host}/default/busybox:v3`);
    expect((await inspectWithSkopeo(`${reg.host}/default/busybox:v3`, reg)).Digest).toBe(def.manifestDigest);
    await lp.images.untag('mytest', `${reg.host}/default/busybox:v3`);

    // A cancelled push rejects with the image package's typed error and writes no tag.
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    const aborted = await lp.images
      .push('mytest', `${reg.host}/pushed/busybox:aborted`, { ctx: ctx(), signal: ac.signal })
      .catch((e) => e);
    expect(aborted.code).toBe('ERR_ABORTED');
    await expect(inspectWithSkopeo(`${reg.host}/pushed/busybox:aborted`, reg)).rejects.toThrow();

    await expect(lp.images.push(built.configDigest.slice(7, 19))).rejects.toBeInstanceOf(InvalidOptionsError);
    await expect(lp.images.push('mytest', 'nope:///x', { ctx: ctx() })).rejects.toBeInstanceOf(
      InvalidImageNameError,
    );
  });

  it('saves a docker-archive of two names that skopeo reads; load into a fresh store restores names and content', async () => {
    const archive = join(env.dir, 'save', 'images.tar');
    await mkdir(join(env.dir, 'save'));
    const events: CopyProgressEvent[] = [];
    await lp.images.save([remote, 'mytest'], { output: archive, onProgress: (e) => events.push(e) });
    expect(statSync(archive).size).toBeGreaterThan(0);
    expect(events.filter((e) => e.type === 'copy-done').length).toBe(2);

    const viaSkopeo = JSON.parse(
      (await skopeo(['inspect', '--config', `docker-archive:${archive}:localhost/mytest:latest`])).stdout,
    ) as { rootfs: { diff_ids: string[] } };
    expect(viaSkopeo.rootfs.diff_ids).toEqual(built.config.rootfs.diff_ids);

    const fresh = await open('fresh');
    const loaded = await fresh.images.load(archive);
    expect(loaded).toEqual([remote, 'localhost/mytest:latest']);
    const ins = await fresh.images.inspect('localhost/mytest');
    expect(ins.Id).toBe(built.configDigest.slice(7));
    expect(ins.RepoTags.sort()).toEqual([remote, 'localhost/mytest:latest'].sort());
    expect(ins.RootFS.Layers).toEqual(built.config.rootfs.diff_ids);
    const r = await fresh.containers.run({ image: 'localhost/mytest', rm: true });
    expect(r.stdout).toBe('hello from the rig\n');

    // Nothing left beside the archive (staging and temp files removed).
    expect(await readdir(join(env.dir, 'save'))).toEqual(['images.tar']);
  });

  it('saves oci-archive and oci-dir (one image each) and loads the oci-archive by its ref name', async () => {
    const ociArchive = join(env.dir, 'one.oci.tar');
    await lp.images.save('mytest', { format: 'oci-archive', output: ociArchive });
    const idx = JSON.parse(
      (await skopeo(['inspect', '--config', `oci-archive:${ociArchive}:localhost/mytest:latest`])).stdout,
    ) as { config: { Env: string[] } };
    expect(idx.config.Env).toEqual(['FOO=bar']);
    const fresh = await open('fresh-oci');
    expect(await fresh.images.load(ociArchive)).toEqual(['localhost/mytest:latest']);
    expect((await fresh.images.get('mytest')).id).toBe(built.configDigest.slice(7));

    const dir = join(env.dir, 'one.oci-dir');
    await lp.images.save(built.configDigest, { format: 'oci-dir', output: dir });
    const man = await skopeo(['inspect', '--raw', `dir:${dir}`]);
    expect(JSON.parse(man.stdout).mediaType).toBe('application/vnd.oci.image.manifest.v1+json');

    const two = await lp.images
      .save([remote, 'mytest'], { format: 'oci-archive', output: join(env.dir, 'x') })
      .catch((e) => e);
    // Two names of one image are two entries; oci-archive holds one.
    expect(two).toBeInstanceOf(InvalidOptionsError);
    await expect(
      lp.images.save('mytest', { format: 'tarball' as 'oci-dir', output: join(env.dir, 'y') }),
    ).rejects.toBeInstanceOf(InvalidOptionsError);
    await expect(lp.images.save('mytest', { output: 'relative.tar' })).rejects.toBeInstanceOf(
      InvalidOptionsError,
    );

    const notTar = join(env.dir, 'not-a.tar');
    writeFileSync(notTar, 'hello, this is not a tar archive\n'.repeat(40));
    const bad = await fresh.images.load(notTar).catch((e) => e);
    expect(bad).toBeInstanceOf(ImageArchiveError);
    expect(bad.code).toBe('ERR_INVALID_IMAGE_ARCHIVE');
    expect(existsSync(join(env.dir, 'x'))).toBe(false);
  });

  it('cancelled save and load leave no output, no image and no temp files; push can write Docker schema 2', async () => {
    const tmpBefore = (await readdir(tmpdir())).filter((n) => n.startsWith('libpod-ts-docker-archive-'));
    const out = join(env.dir, 'cancelled.tar');
    const ac = new AbortController();
    const saveErr = await lp.images
      .save('mytest', {
        output: out,
        signal: ac.signal,
        onProgress: (e) => e.type === 'blob-start' && e.kind === 'layer' && ac.abort(new Error('user stop')),
      })
      .catch((e) => e);
    expect(saveErr.code).toBe('ERR_ABORTED');
    expect(existsSync(out)).toBe(false);

    const archive = join(env.dir, 'to-cancel.tar');
    await lp.images.save('mytest', { output: archive });
    const fresh = await open('cancelled-load');
    const ac2 = new AbortController();
    const loadErr = await fresh.images
      .load(archive, {
        signal: ac2.signal,
        // After the config (written first into the store), before any layer. Aborting while a
        // layer blob is being opened hits an unhandled stream error in @libpod-ts/image (see
        // docs/decisions/images-api.md), so the test does not abort there.
        onProgress: (e) => e.type === 'blob-done' && e.kind === 'config' && ac2.abort(new Error('user stop')),
      })
      .catch((e) => e);
    expect(loadErr.code).toBe('ERR_ABORTED');
    expect(await fresh.images.list()).toEqual([]);
    const store = await fresh.images.store();
    expect(await store.listLayers()).toEqual([]);
    expect((await store.check()).problems).toEqual([]);
    const tmpAfter = (await readdir(tmpdir())).filter((n) => n.startsWith('libpod-ts-docker-archive-'));
    expect(tmpAfter.filter((n) => !tmpBefore.includes(n))).toEqual([]);
    expect((await readdir(env.dir)).filter((n) => n.includes('.tmp-'))).toEqual([]);

    const target = `${reg.host}/pushed/busybox:v2s2`;
    await lp.images.push('mytest', target, { ctx: ctx(), format: 'docker' });
    const raw = await inspectWithSkopeo(target, reg, { raw: true });
    expect(raw.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
  });

  it.skipIf(!existsSync('/usr/bin/podman'))(
    'interoperates with podman save/load (private podman root, vfs)',
    async () => {
      // podman refuses a runroot longer than 50 characters: a short temp dir of its own.
      const pd = await makeTempDir('pd');
      const podman = (args: string[]) =>
        execa('podman', [
          '--root',
          join(pd, 'root'),
          '--runroot',
          join(pd, 'run'),
          '--tmpdir',
          join(pd, 'tmp'),
          '--storage-driver',
          'vfs',
          '--events-backend',
          'none',
          '--cgroup-manager',
          'cgroupfs',
          ...args,
        ]);
      try {
        // Ours -> podman load.
        const ours = join(env.dir, 'for-podman.tar');
        await lp.images.save(['mytest'], { output: ours });
        expect((await podman(['load', '-i', ours])).stdout).toContain('localhost/mytest:latest');
        const pin = JSON.parse((await podman(['image', 'inspect', 'localhost/mytest:latest'])).stdout)[0];
        const mine = await lp.images.inspect('mytest');
        expect(pin.Id).toBe(mine.Id);
        expect(pin.RootFS.Layers).toEqual(mine.RootFS.Layers);
        expect(pin.Config.Env).toEqual(mine.Config.Env);
        expect(pin.Labels).toEqual(mine.Labels);
        expect(pin.Architecture).toBe(mine.Architecture);
        expect(pin.Created).toBe(mine.Created);
        expect(pin.History).toEqual(mine.History);
        expect(pin.Config).toEqual(mine.Config);

        // podman save (docker-archive and oci-archive) -> our load.
        await podman(['tag', 'localhost/mytest:latest', 'podman/made:1']);
        const dockerArchive = join(env.dir, 'from-podman.tar');
        const ociArchive = join(env.dir, 'from-podman.oci.tar');
        await podman(['save', '--format', 'docker-archive', '-o', dockerArchive, 'localhost/podman/made:1']);
        await podman(['save', '--format', 'oci-archive', '-o', ociArchive, 'localhost/podman/made:1']);
        const fresh = await open('from-podman');
        expect(await fresh.images.load(dockerArchive)).toEqual(['localhost/podman/made:1']);
        expect((await fresh.images.inspect('podman/made:1')).Id).toBe(mine.Id);
        await fresh.images.remove('localhost/podman/made:1');
        const fromOci = await fresh.images.load(ociArchive);
        expect(fromOci).toHaveLength(1);
        expect((await fresh.images.inspect(fromOci[0]!)).Id).toBe(mine.Id);
      } finally {
        // Its own root only (vfs: no mounts); nothing of the host's podman state is touched.
        await removeTempDir(pd);
      }
    },
  );

  it('remove follows podman rmi: untag one of several names, refuse while a container uses it, force removes the container', async () => {
    const img = await lp.images.get(remote);
    expect(img.names.length).toBe(2);
    // By ID with several names: refused without force.
    await expect(lp.images.remove(img.id)).rejects.toBeInstanceOf(ImageHasNamesError);
    const { id: ctr } = await lp.containers.create({ image: 'mytest', command: ['sleep', '60'] });
    await lp.containers.start(ctr);

    // One of two names: only that name goes.
    const r1 = await lp.images.remove('mytest');
    expect(r1).toEqual({ untagged: ['localhost/mytest:latest'], deleted: [], removedContainers: [] });
    expect((await lp.images.get(img.id)).names).toEqual([remote]);

    // The last name, while a (running) container uses the image: refused, nothing changes.
    const err = await lp.images.remove(remote).catch((e) => e);
    expect(err).toBeInstanceOf(ImageInUseError);
    expect(err.code).toBe('ERR_IMAGE_IN_USE');
    expect(err.containers).toEqual([ctr]);
    expect(await lp.images.exists(remote)).toBe(true);
    expect((await lp.containers.inspect(ctr)).State.Running).toBe(true);

    // force: the container is killed and removed through lp.containers, then the image goes.
    const r2 = await lp.images.remove(remote, { force: true });
    expect(r2).toEqual({ untagged: [remote], deleted: [img.id], removedContainers: [ctr] });
    expect(await lp.containers.exists(ctr)).toBe(false);
    expect(await lp.images.exists(img.id)).toBe(false);
    const store = await lp.images.store();
    expect(await store.listContainers()).toEqual([]);
    expect(await store.listLayers()).toEqual([]);
    expect((await store.check()).problems).toEqual([]);
  });

  it('prune removes only unnamed images nobody uses', async () => {
    const fresh = await open('prune');
    await fresh.images.pull(remote, { ctx: ctx() });
    const kept = await fresh.images.pull(`oci:${join(env.dir, 'layout')}:v1`, { name: 'localhost/kept:1' });
    expect(kept.id).toBe(built.configDigest.slice(7));
    // Same image twice; make a second, different image and leave it unnamed.
    const other = await buildBusyboxImage({
      dir: join(env.dir, 'layout2'),
      config: { cmd: ['true'] },
      layers: [{ kind: 'busybox', applets: ['bin/true'] }],
    });
    const dangling = await fresh.images.pull(`oci:${join(env.dir, 'layout2')}:latest`, {
      name: 'localhost/gone:1',
    });
    expect(dangling.id).toBe(other.configDigest.slice(7));
    await fresh.images.untag(dangling.id);
    expect((await fresh.images.get(dangling.id)).names).toEqual([]);
    expect(await fresh.images.prune()).toEqual([dangling.id]);
    expect(await fresh.images.exists(dangling.id)).toBe(false);
    expect(await fresh.images.exists('localhost/kept:1')).toBe(true);
    expect(await fresh.images.prune()).toEqual([]);
  });

  it('image operations write podman-style image events (pull, tag, untag, push, save, loadfromarchive, remove)', async () => {
    const a = await open('events-a');
    const img = await a.images.pull(`oci:${join(env.dir, 'layout')}:v1`, { name: 'localhost/ev:1' });
    await a.images.tag('localhost/ev:1', 'ev:2');
    await a.images.untag(img.id, 'localhost/ev:2');
    await a.images.push('localhost/ev:1', `${reg.host}/rig/events:1`, { ctx: ctx() });
    const archive = join(env.dir, 'events.tar');
    await a.images.save('localhost/ev:1', { output: archive });
    await a.images.remove('localhost/ev:1');
    const b = await open('events-b');
    await b.images.load(archive);
    const seen = async (l: Libpod) => {
      const out: string[] = [];
      for await (const e of l.events.read({ type: ['image'] })) out.push(`${e.action} ${e.name} ${e.id}`);
      return out;
    };
    expect(await seen(a)).toEqual([
      `pull localhost/ev:1 ${img.id}`,
      `tag localhost/ev:2 ${img.id}`,
      `untag localhost/ev:2 ${img.id}`,
      `push docker://${reg.host}/rig/events:1 ${img.id}`,
      `save localhost/ev:1 ${img.id}`,
      `remove localhost/ev:1 ${img.id}`,
    ]);
    expect(await seen(b)).toEqual([`loadfromarchive ${archive} ${img.id}`]);
    // Filters: by image (ID prefix or name) and type; container filters match no image event.
    const byImage: string[] = [];
    for await (const e of a.events.read({ image: [img.id.slice(0, 12)], action: ['tag', 'untag'] }))
      byImage.push(e.action);
    expect(byImage).toEqual(['tag', 'untag']);
    const asContainer: string[] = [];
    for await (const e of a.events.read({ container: [img.id.slice(0, 12)] })) asContainer.push(e.action);
    expect(asContainer).toEqual([]);
  });
});
