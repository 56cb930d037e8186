/**
 * Media types of the image formats this package reads and writes (OCI image-spec v1.1 and
 * Docker image manifest v2, schema 2). Schema 1 types are listed only so they can be recognised
 * and refused with a typed error.
 */
export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayout: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export type ManifestMediaType =
  | typeof MediaTypes.ociManifest
  | typeof MediaTypes.ociIndex
  | typeof MediaTypes.dockerManifest
  | typeof MediaTypes.dockerManifestList;

/** The manifest media types this package can parse, in the order a client prefers them. */
export const SUPPORTED_MANIFEST_MEDIA_TYPES: readonly ManifestMediaType[] = [
  MediaTypes.ociIndex,
  MediaTypes.dockerManifestList,
  MediaTypes.ociManifest,
  MediaTypes.dockerManifest,
];

export function isIndexMediaType(mt: string): boolean {
  return mt === MediaTypes.ociIndex || mt === MediaTypes.dockerManifestList;
}

export function isSingleManifestMediaType(mt: string): boolean {
  return mt === MediaTypes.ociManifest || mt === MediaTypes.dockerManifest;
}

export function isSchema1MediaType(mt: string): boolean {
  return mt === MediaTypes.dockerSchema1 || mt === MediaTypes.dockerSchema1Signed;
}

/** Layer compression as seen from the media type: what a destination must store or produce. */
export type LayerCompression = 'gzip' | 'zstd' | 'none';

export function compressionOfLayerMediaType(mt: string): LayerCompression | undefined {
  if (mt.endsWith('+gzip') || mt.endsWith('.tar.gzip')) return 'gzip';
  if (mt.endsWith('+zstd')) return 'zstd';
  if (mt === MediaTypes.ociLayout || mt === 'application/vnd.docker.image.rootfs.diff.tar') return 'none';
  return undefined;
}

/** Layer media type for a format (OCI or Docker schema 2) and a compression. */
export function layerMediaType(format: 'oci' | 'docker', compression: LayerCompression): string {
  if (format === 'docker') {
    if (compression === 'gzip') return MediaTypes.dockerLayerGzip;
    if (compression === 'none') return 'application/vnd.docker.image.rootfs.diff.tar';
    // Docker schema 2 has no zstd type; the OCI one is what docker and containers/image write.
    return MediaTypes.ociLayerZstd;
  }
  if (compression === 'gzip') return MediaTypes.ociLayerGzip;
  if (compression === 'zstd') return MediaTypes.ociLayerZstd;
  return MediaTypes.ociLayout;
}
