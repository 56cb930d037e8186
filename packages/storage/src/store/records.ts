/**
 * Records kept in the metadata database, their zod schemas, and the key scheme.
 *
 * Keys (one LevelDB, string keys, JSON values):
 *   meta                          StoreMeta
 *   L/<layerId>                   LayerRecord
 *   Ld/<diffID>/<layerId>         '' index: complete layers by diffID
 *   Lc/<chainID>                  layerId of the complete layer with this chainID
 *   Lz/<blobDigest>/<layerId>     '' index: layers by the digest of a compressed blob they came from
 *   R/<layerId>/<holder>          '' a reference that keeps layerId alive; holder is
 *                                   `layer:<childId>`, `image:<imageId>` or `lease:<leaseId>`
 *   M/<layerId>                   MountRecord (mount refcount, stamped with the boot id)
 *   I/<imageId>                   ImageRecord
 *   In/<name>                     imageId owning this name (`docker.io/library/busybox:latest`)
 *   Id/<digest>/<imageId>         '' index: images by manifest digest
 *   C/<containerId>               ContainerRecord
 *   Cn/<name>                     containerId owning this name
 *   Ci/<imageId>/<containerId>    '' index: containers using an image
 *   E/<leaseId>                   LeaseRecord
 *   G/<layerId>                   '' garbage-collection mark: delete this layer and its unused
 *                                   ancestors once nothing holds it (set by image removal and
 *                                   lease release, so a crash mid-cascade is resumed by repair)
 *
 * Invariants kept by every transaction:
 * - a `complete` layer's files exist in the driver; `incomplete`/`deleting` layers name their
 *   owner and are removed (files, then record) once the owner is dead;
 * - every parent of a layer is complete, and holds `R/<parent>/layer:<child>`;
 * - an image's top layer is complete and holds `R/<top>/image:<imageId>`; the image's blob files
 *   are written before the record and deleted after it;
 * - every index entry points at an existing record.
 */
import { z } from 'zod';
import { OwnerSchema } from './owner.js';

export const STORE_VERSION = 1;

export const Hex64 = z.string().regex(/^[a-f0-9]{64}$/, 'expected 64 lowercase hex characters');
export const DigestSchema = z
  .string()
  .regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/, 'expected a digest');

export const StoreMetaSchema = z.object({
  version: z.number().int(),
  driver: z.enum(['overlay', 'vfs']),
  created: z.string(),
});
export type StoreMeta = z.infer<typeof StoreMetaSchema>;

export const LayerStateSchema = z.enum(['incomplete', 'complete', 'deleting']);

export const LayerRecordSchema = z.object({
  id: Hex64,
  parent: Hex64.nullable(),
  state: LayerStateSchema,
  /** The process writing or deleting the layer (absent when complete). */
  owner: OwnerSchema.optional(),
  /** `image` layers are content (pulled or committed); `container` layers are writable. */
  kind: z.enum(['image', 'container']),
  /** sha256 of the uncompressed tar, once written. Container layers have none. */
  diffID: DigestSchema.optional(),
  chainID: DigestSchema.optional(),
  /** Digest and size of the compressed blob the layer came from, when known. */
  compressedDigest: DigestSchema.optional(),
  compressedSize: z.number().int().nonnegative().optional(),
  /** Every verified compressed blob digest this layer's content came from (gzip, zstd, ...). */
  compressedDigests: z.array(DigestSchema).optional(),
  /** Uncompressed tar bytes. */
  uncompressedSize: z.number().int().nonnegative().optional(),
  /** Bytes of file content written (driver's count). */
  size: z.number().int().nonnegative().optional(),
  created: z.string(),
});
export type LayerRecord = z.infer<typeof LayerRecordSchema>;

export const MountRecordSchema = z.object({
  count: z.number().int().nonnegative(),
  boot: z.string(),
  path: z.string(),
});
export type MountRecord = z.infer<typeof MountRecordSchema>;

export const ImageRecordSchema = z.object({
  /** Config digest hex (the image ID). */
  id: Hex64,
  /** Normalised names `domain/path:tag`, unique across images. */
  names: z.array(z.string()),
  /** Repo digests `domain/path@sha256:...`. */
  digests: z.array(z.string()),
  manifestDigest: DigestSchema.optional(),
  manifestMediaType: z.string().optional(),
  topLayer: Hex64.nullable(),
  /** Layer IDs bottom to top (the top layer's parent chain plus itself). */
  layers: z.array(Hex64),
  /** Sum of the layers' uncompressed sizes. */
  size: z.number().int().nonnegative(),
  /** From the config's `created`, else the record's creation time. */
  created: z.string(),
  /** Blob files stored in `images/<id>/` (`manifest`, `config`). */
  blobs: z.array(z.enum(['manifest', 'config'])),
  /** Free-form JSON string the caller attached. */
  metadata: z.string().optional(),
});
export type ImageRecord = z.infer<typeof ImageRecordSchema>;

export const ContainerRecordSchema = z.object({
  id: Hex64,
  names: z.array(z.string()),
  imageId: Hex64.nullable(),
  layerId: Hex64,
  created: z.string(),
  metadata: z.string().optional(),
  /** Mounted with overlay `volatile` (a container removed after its run: nothing to keep). */
  volatile: z.boolean().optional(),
});
export type ContainerRecord = z.infer<typeof ContainerRecordSchema>;

export const LeaseRecordSchema = z.object({
  id: Hex64,
  owner: OwnerSchema,
  created: z.string(),
  /** Layers this lease holds (each also has `R/<layer>/lease:<id>`). */
  layers: z.array(Hex64),
});
export type LeaseRecord = z.infer<typeof LeaseRecordSchema>;

export const EmptySchema = z.unknown();
export const IdRefSchema = Hex64;

export const K = {
  meta: 'meta',
  layer: (id: string) => `L/${id}`,
  layerPrefix: 'L/',
  layerByDiff: (diffID: string, id: string) => `Ld/${diffID}/${id}`,
  layerByDiffPrefix: (diffID: string) => `Ld/${diffID}/`,
  layerByChain: (chainID: string) => `Lc/${chainID}`,
  layerByBlob: (digest: string, id: string) => `Lz/${digest}/${id}`,
  layerByBlobPrefix: (digest: string) => `Lz/${digest}/`,
  ref: (layerId: string, holder: string) => `R/${layerId}/${holder}`,
  refPrefix: (layerId: string) => `R/${layerId}/`,
  refsPrefix: 'R/',
  mount: (layerId: string) => `M/${layerId}`,
  mountPrefix: 'M/',
  image: (id: string) => `I/${id}`,
  imagePrefix: 'I/',
  imageName: (name: string) => `In/${name}`,
  imageNamePrefix: 'In/',
  imageDigest: (digest: string, id: string) => `Id/${digest}/${id}`,
  imageDigestPrefix: (digest: string) => `Id/${digest}/`,
  container: (id: string) => `C/${id}`,
  containerPrefix: 'C/',
  containerName: (name: string) => `Cn/${name}`,
  containerByImage: (imageId: string, id: string) => `Ci/${imageId}/${id}`,
  containerByImagePrefix: (imageId: string) => `Ci/${imageId}/`,
  lease: (id: string) => `E/${id}`,
  leasePrefix: 'E/',
  gc: (layerId: string) => `G/${layerId}`,
  gcPrefix: 'G/',
} as const;

export const holder = {
  layer: (id: string) => `layer:${id}`,
  image: (id: string) => `image:${id}`,
  lease: (id: string) => `lease:${id}`,
};
