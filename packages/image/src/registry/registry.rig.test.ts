/**
 * Against the rig's real docker-registry: push and pull over TLS with basic and token auth and
 * over plain HTTP (insecure), multi-platform indexes, cross-repository mounts, tags, and interop
 * both ways with skopeo.
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import {
  buildBusyboxImage,
  buildMultiPlatformIndex,
  inspectWithSkopeo,
  makeTempDir,
  pushWithSkopeo,
  type RigRegistry,
  removeTempDir,
  skopeo,
  skopeoRegistryArgs,
  startRegistry,
} from '@libpod-ts/test-rig';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copy, copyWithProgress } from '../copy/copy.js';
import { inspectImage, listTags } from '../copy/inspect.js';
import { parseImageName } from '../transports/defaults.js';
import type { CopyProgressEvent, SystemContext } from '../types.js';
import { RegistryClient } from './client.js';

let tmp: string;
let image: Awaited<ReturnType<typeof buildBusyboxImage>>;

beforeAll(async () => {
  tmp = await makeTempDir('image-registry');
  image = await buildBusyboxImage({ dir: join(tmp, 'src'), tag: 'v1' });
});
afterAll(async () => {
  await removeTempDir(tmp);
});

function ctxFor(reg: RigRegistry, creds = true): SystemContext {
  return {
    certsDirs: reg.certsDir ? [reg.certsDir] : [],
    insecureRegistries: reg.tls ? [] : [reg.host],
    registriesConfPath: join(tmp, 'no-registries.conf'),
    authFilePath: join(tmp, 'no-auth.json'),
    dockerConfigPath: '',
    ...(creds && reg.auth !== 'none'
      ? { credentials: { username: reg.username, password: reg.password } }
      : {}),
  };
}

for (const mode of [
  { tls: true, auth: 'basic' as const },
  { tls: true, auth: 'token' as const },
  { tls: false, auth: 'none' as const },
]) {
  describe(`registry tls=${mode.tls} auth=${mode.auth}`, () => {
    let reg: RigRegistry;
    beforeAll(async () => {
      reg = await startRegistry(mode);
    });
    afterAll(async () => {
      await reg?.stop();
    });

    it('pushes; skopeo reads it; pulls back with the same digest; lists tags', async () => {
      const ctx = ctxFor(reg);
      const dest = parseImageName(`docker://${reg.host}/lib/busybox:v1`);
      const events: CopyProgressEvent[] = [];
      const pushed = await copy(parseImageName(image.reference), dest, {
        ctx,
        onProgress: (e) => events.push(e),
      });
      expect(pushed.manifestDigest).toBe(image.manifestDigest);
      expect(events.filter((e) => e.type === 'blob-done').length).toBe(2);
      const sk = await inspectWithSkopeo(`${reg.host}/lib/busybox:v1`, reg);
      expect(sk.Digest).toBe(image.manifestDigest);
      const back = parseImageName(`oci:${tmp}/pulled-${mode.auth}:v1`);
      const pulled = await copy(dest, back, { ctx });
      expect(pulled.manifestDigest).toBe(image.manifestDigest);
      const again = await copy(
        parseImageName(image.reference),
        parseImageName(`docker://${reg.host}/lib/busybox:v2`),
        {
          ctx,
          onProgress: (e) => events.push(e),
        },
      );
      expect(again.manifestDigest).toBe(image.manifestDigest);
      expect(events.filter((e) => e.type === 'blob-skipped').length).toBe(2);
      expect((await listTags(dest, { ctx })).sort()).toEqual(['v1', 'v2']);
      const info = await inspectImage(dest, { ctx });
      expect(info.digest).toBe(image.manifestDigest);
      expect(info.config?.rootfs.diff_ids).toEqual(image.config.rootfs.diff_ids);
    });

    it('mounts blobs across repositories of the same registry', async () => {
      const ctx = ctxFor(reg);
      const events: CopyProgressEvent[] = [];
      await copy(
        parseImageName(`docker://${reg.host}/lib/busybox:v1`),
        parseImageName(`docker://${reg.host}/other/copy:v1`),
        {
          ctx,
          onProgress: (e) => events.push(e),
        },
      );
      const skipped = events.filter((e) => e.type === 'blob-skipped');
      expect(skipped.map((e) => (e as { reason: string }).reason)).toEqual(['mounted', 'mounted']);
    });

    it('pushes and pulls a multi-platform index', async () => {
      const ctx = ctxFor(reg);
      const idx = await buildMultiPlatformIndex({ dir: join(tmp, `idx-${mode.auth}`), tag: 'multi' });
      const dest = parseImageName(`docker://${reg.host}/lib/multi:1`);
      const r = await copy(parseImageName(idx.reference), dest, { ctx, instances: 'all' });
      expect(r.manifestDigest).toBe(idx.indexDigest);
      const raw = await inspectWithSkopeo(`${reg.host}/lib/multi:1`, reg, { raw: true });
      expect((raw.manifests as unknown[]).length).toBe(3);
      const info = await inspectImage(dest, { ctx, platform: { os: 'linux', architecture: 'arm64' } });
      expect(info.platforms).toEqual(['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7']);
      expect(info.manifestDigest).toBe(idx.images[1]!.manifestDigest);
      const back = await copy(dest, parseImageName(`oci:${tmp}/multi-back-${mode.auth}:1`), {
        ctx,
        instances: 'all',
      });
      expect(back.manifestDigest).toBe(idx.indexDigest);
    });

    it('reads what skopeo pushed, and skopeo writes oci:/docker-archive: we read', async () => {
      const ctx = ctxFor(reg);
      await pushWithSkopeo(image.dir, 'v1', reg, { repo: 'sk/pushed' });
      const ref = parseImageName(`docker://${reg.host}/sk/pushed:v1`);
      expect((await inspectImage(ref, { ctx })).digest).toBe(image.manifestDigest);
      const ociDir = join(tmp, `sk-oci-${mode.auth}`);
      const archive = join(tmp, `sk-${mode.auth}.tar`);
      const src = `docker://${reg.host}/sk/pushed:v1`;
      await skopeo(['copy', '--quiet', ...skopeoRegistryArgs(reg, 'src'), src, `oci:${ociDir}:t`]);
      await skopeo([
        'copy',
        '--quiet',
        ...skopeoRegistryArgs(reg, 'src'),
        src,
        `docker-archive:${archive}:sk/img:t`,
      ]);
      const a = await inspectImage(parseImageName(`oci:${ociDir}:t`));
      const b = await inspectImage(parseImageName(`docker-archive:${archive}:sk/img:t`));
      expect(a.config?.rootfs.diff_ids).toEqual(image.config.rootfs.diff_ids);
      expect(b.config?.rootfs.diff_ids).toEqual(image.config.rootfs.diff_ids);
      // And back into the registry from the archive skopeo wrote; skopeo reads the result.
      await copy(
        parseImageName(`docker-archive:${archive}:sk/img:t`),
        parseImageName(`docker://${reg.host}/sk/from-archive:t`),
        { ctx },
      );
      const sk = await inspectWithSkopeo(`${reg.host}/sk/from-archive:t`, reg);
      expect(sk.Layers).toHaveLength(1);
      // docker-archive layers are uncompressed; a push gzips them (diffIDs verified on the way).
      const pushed = await inspectImage(parseImageName(`docker://${reg.host}/sk/from-archive:t`), { ctx });
      expect(pushed.manifest.layers[0]!.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
      expect(pushed.config?.rootfs.diff_ids).toEqual(image.config.rootfs.diff_ids);
    });

    it('uploads monolithically, streamed and in chunks; HEAD and GET agree', async () => {
      const client = new RegistryClient({ registry: reg.host, ctx: ctxFor(reg) });
      try {
        const data = randomBytes(300_000);
        const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
        const mono = await client.putBlob('up/x', Readable.from([data]), { digest, size: data.length });
        expect(mono).toEqual({ digest, size: data.length });
        const streamed = await client.putBlob(
          'up/y',
          Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
        );
        expect(streamed.digest).toBe(digest);
        const chunked = await client.putBlob('up/z', Readable.from([data]), { chunkSize: 64 * 1024 });
        expect(chunked.digest).toBe(digest);
        expect(await client.headBlob('up/z', digest)).toBe(data.length);
        const { stream } = await client.getBlob('up/z', digest, { offset: 100_000, size: data.length });
        const chunks: Buffer[] = [];
        for await (const c of stream) chunks.push(c as Buffer);
        expect(Buffer.concat(chunks).equals(data.subarray(100_000))).toBe(true);
        const wrong = `sha256:${'0'.repeat(64)}`;
        await expect(
          client.putBlob('up/w', Readable.from([data]), { digest: wrong, size: data.length }),
        ).rejects.toMatchObject({
          code: 'ERR_DIGEST_MISMATCH',
        });
        expect(await client.headBlob('up/w', wrong)).toBeUndefined();
        expect(await client.referrers('up/z', digest)).toBeUndefined();
      } finally {
        await client.close();
      }
    });

    it('reports progress as an async iterable', async () => {
      const events: string[] = [];
      const it = copyWithProgress(
        parseImageName(image.reference),
        parseImageName(`docker://${reg.host}/iter/img:1`),
        {
          ctx: ctxFor(reg),
        },
      );
      for await (const e of it) events.push(e.type);
      expect(events[0]).toBe('copy-start');
      expect(events.at(-1)).toBe('copy-done');
      expect((await it.result).manifestDigest).toBe(image.manifestDigest);
    });

    if (mode.auth !== 'none') {
      it('refuses wrong or missing credentials with ERR_UNAUTHORIZED', async () => {
        const ref = parseImageName(`docker://${reg.host}/lib/busybox:v1`);
        const bad = { ...ctxFor(reg), credentials: { username: reg.username, password: 'wrong' } };
        await expect(inspectImage(ref, { ctx: bad })).rejects.toMatchObject({ code: 'ERR_UNAUTHORIZED' });
        await expect(inspectImage(ref, { ctx: ctxFor(reg, false) })).rejects.toMatchObject({
          code: 'ERR_UNAUTHORIZED',
        });
      });

      it('reads credentials from containers-auth.json', async () => {
        const authFile = join(tmp, `auth-${mode.auth}.json`);
        const auth = Buffer.from(`${reg.username}:${reg.password}`).toString('base64');
        await writeFile(authFile, JSON.stringify({ auths: { [reg.host]: { auth } } }));
        const ctx = { ...ctxFor(reg, false), authFilePath: authFile };
        const info = await inspectImage(parseImageName(`docker://${reg.host}/lib/busybox:v1`), { ctx });
        expect(info.digest).toBe(image.manifestDigest);
      });
    }

    if (mode.auth === 'token') {
      it('reuses a token per scope', async () => {
        const client = new RegistryClient({ registry: reg.host, ctx: ctxFor(reg) });
        try {
          const before = reg.tokenRequests.length;
          for (let i = 0; i < 5; i++) await client.headManifest('lib/busybox', 'v1');
          await client.getManifest('lib/busybox', 'v1');
          expect(reg.tokenRequests.length - before).toBe(1);
          expect((await client.catalog()).length).toBeGreaterThan(0);
        } finally {
          await client.close();
        }
      });
    }
  });
}
