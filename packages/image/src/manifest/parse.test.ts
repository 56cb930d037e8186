import { describe, expect, it } from 'vitest';
import { MediaTypes } from './media-types.js';
import {
  convertManifest,
  detectManifestMediaType,
  parseManifest,
  selectPlatform,
  type ParsedIndex,
} from './parse.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const oci = {
  schemaVersion: 2,
  mediaType: MediaTypes.ociManifest,
  config: { mediaType: MediaTypes.ociConfig, digest: D('a'), size: 10 },
  layers: [{ mediaType: MediaTypes.ociLayerGzip, digest: D('b'), size: 20 }],
  annotations: { x: 'y' },
};
const enc = (o: unknown) => Buffer.from(JSON.stringify(o));

describe('manifest parsing', () => {
  it('parses and converts OCI <-> Docker schema 2', () => {
    const m = parseManifest(enc(oci), MediaTypes.ociManifest);
    expect(m.kind).toBe('manifest');
    if (m.kind !== 'manifest') return;
    const docker = JSON.parse(Buffer.from(convertManifest(m, MediaTypes.dockerManifest)).toString());
    expect(docker.mediaType).toBe(MediaTypes.dockerManifest);
    expect(docker.config.mediaType).toBe(MediaTypes.dockerConfig);
    expect(docker.layers[0].mediaType).toBe(MediaTypes.dockerLayerGzip);
    expect(docker.annotations).toBeUndefined();
    const d = parseManifest(enc(docker), MediaTypes.dockerManifest);
    if (d.kind !== 'manifest') throw new Error('kind');
    const back = JSON.parse(Buffer.from(convertManifest(d, MediaTypes.ociManifest)).toString());
    expect(back.config.mediaType).toBe(MediaTypes.ociConfig);
    expect(back.layers[0].mediaType).toBe(MediaTypes.ociLayerGzip);
  });
  it('refuses zstd layers in Docker schema 2', () => {
    const z = { ...oci, layers: [{ mediaType: MediaTypes.ociLayerZstd, digest: D('c'), size: 1 }] };
    const m = parseManifest(enc(z), MediaTypes.ociManifest);
    if (m.kind !== 'manifest') throw new Error('kind');
    expect(() => convertManifest(m, MediaTypes.dockerManifest)).toThrowError(
      expect.objectContaining({ code: 'ERR_UNSUPPORTED' }),
    );
  });
  it('detects the type from content when the server is vague', () => {
    expect(detectManifestMediaType(enc({ schemaVersion: 2, manifests: [] }), 'application/json', 'm')).toBe(
      MediaTypes.ociIndex,
    );
    const { mediaType: _drop, ...noType } = oci;
    expect(detectManifestMediaType(enc(noType), '', 'm')).toBe(MediaTypes.ociManifest);
  });
  it('validates descriptors (bad digests, negative sizes)', () => {
    for (const bad of [
      { ...oci, config: { ...oci.config, digest: 'sha256:xyz' } },
      { ...oci, layers: [{ ...oci.layers[0], size: -1 }] },
      { ...oci, schemaVersion: 3 },
    ]) {
      expect(() => parseManifest(enc(bad), MediaTypes.ociManifest)).toThrowError(
        expect.objectContaining({ code: 'ERR_INVALID_MANIFEST' }),
      );
    }
  });
});

describe('selectPlatform', () => {
  const idx: ParsedIndex = {
    kind: 'index',
    format: 'oci',
    mediaType: MediaTypes.ociIndex,
    manifests: [
      {
        mediaType: MediaTypes.ociManifest,
        digest: D('1'),
        size: 1,
        platform: { os: 'linux', architecture: 'amd64' },
      },
      {
        mediaType: MediaTypes.ociManifest,
        digest: D('2'),
        size: 1,
        platform: { os: 'linux', architecture: 'arm', variant: 'v6' },
      },
      {
        mediaType: MediaTypes.ociManifest,
        digest: D('3'),
        size: 1,
        platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
      },
      {
        mediaType: MediaTypes.ociManifest,
        digest: D('4'),
        size: 1,
        platform: { os: 'linux', architecture: 'arm64' },
      },
      {
        mediaType: MediaTypes.ociManifest,
        digest: D('5'),
        size: 1,
        platform: { os: 'unknown', architecture: 'unknown' },
      },
    ],
  };
  it('matches os/arch/variant, with arm64 "" == v8 and arm defaulting to v7', () => {
    expect(selectPlatform(idx, { os: 'linux', architecture: 'arm', variant: 'v6' })?.digest).toBe(D('2'));
    expect(selectPlatform(idx, { os: 'linux', architecture: 'arm' })?.digest).toBe(D('3'));
    expect(selectPlatform(idx, { os: 'linux', architecture: 'arm64', variant: 'v8' })?.digest).toBe(D('4'));
    expect(selectPlatform(idx, { os: 'linux', architecture: 'arm', variant: 'v5' })).toBeUndefined();
    expect(selectPlatform(idx, { os: 'windows', architecture: 'amd64' })).toBeUndefined();
  });
});
