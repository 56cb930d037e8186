/**
 * The benches' many-files image: an OCI layout whose one layer is this host's usr/share
 * (`tar -C / -c usr/share`, gzip level 6), shared by the copy and pull benchmarks.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

async function sha256File(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(p)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

async function writeBlob(layout: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  await writeFile(join(layout, 'blobs', 'sha256', digest.slice(7)), data);
  return { digest, size: data.length };
}

/** An OCI layout whose one layer is `tar -C / -c usr/share`, gzip level 6. */
export async function buildManyFilesLayout(work: string): Promise<string> {
  const layout = join(work, 'usr-share');
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  const rawTar = join(work, 'usr-share.tar');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('tar', ['-C', '/', '-cf', rawTar, 'usr/share'], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 || code === 1 ? resolve() : reject(new Error(`tar exited ${code}`)),
    );
  });
  const diffID = await sha256File(rawTar);
  const gz = join(work, 'usr-share.tar.gz');
  await pipeline(createReadStream(rawTar), createGzip({ level: 6 }), createWriteStream(gz));
  await rm(rawTar);
  const layerDigest = await sha256File(gz);
  const layerSize = (await stat(gz)).size;
  await rename(gz, join(layout, 'blobs', 'sha256', layerDigest.slice(7)));
  const config = await writeBlob(
    layout,
    Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffID] } }),
    ),
  );
  const manifest = await writeBlob(
    layout,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [
          { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layerSize },
        ],
      }),
    ),
  );
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': 'bench' },
        },
      ],
    }),
  );
  return layout;
}
