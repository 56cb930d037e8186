/**
 * zod schemas for the JSON documents of OCI image-spec v1.1 and Docker image manifest v2 schema 2.
 * They validate structure only (permissive about unknown fields, as the specs require readers to
 * be); semantic checks (media type confusion, size caps, digests) live in `parse.ts`.
 */
import { z } from 'zod';

/** `algorithm:encoded` per image-spec descriptor.md; only sha256/sha512 are accepted. */
export const DigestSchema = z
  .string()
  .regex(
    /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/,
    'digest must be sha256:<64 hex> or sha512:<128 hex>',
  );
export type Digest = z.infer<typeof DigestSchema>;

const MediaTypeSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/,
    'invalid media type',
  );

const AnnotationsSchema = z.record(z.string(), z.string());

export const PlatformSchema = z.object({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
});
export type Platform = z.infer<typeof PlatformSchema>;

export const DescriptorSchema = z.object({
  mediaType: MediaTypeSchema,
  digest: DigestSchema,
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  urls: z.array(z.string()).optional(),
  annotations: AnnotationsSchema.optional(),
  data: z.string().optional(),
  artifactType: z.string().optional(),
  platform: PlatformSchema.optional(),
});
export type Descriptor = z.infer<typeof DescriptorSchema>;

export const OciManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.literal('application/vnd.oci.image.manifest.v1+json').optional(),
  artifactType: z.string().optional(),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
  subject: DescriptorSchema.optional(),
  annotations: AnnotationsSchema.optional(),
});
export type OciManifest = z.infer<typeof OciManifestSchema>;

export const OciIndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.literal('application/vnd.oci.image.index.v1+json').optional(),
  artifactType: z.string().optional(),
  manifests: z.array(DescriptorSchema),
  subject: DescriptorSchema.optional(),
  annotations: AnnotationsSchema.optional(),
});
export type OciIndex = z.infer<typeof OciIndexSchema>;

export const DockerManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.literal('application/vnd.docker.distribution.manifest.v2+json'),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
});
export type DockerManifest = z.infer<typeof DockerManifestSchema>;

export const DockerManifestListSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.literal('application/vnd.docker.distribution.manifest.list.v2+json'),
  manifests: z.array(DescriptorSchema.extend({ platform: PlatformSchema })),
});
export type DockerManifestList = z.infer<typeof DockerManifestListSchema>;

/** image-spec config.md; Docker's container config is a superset and parses with this schema. */
export const ImageConfigSchema = z.object({
  created: z.string().optional(),
  author: z.string().optional(),
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  config: z
    .object({
      User: z.string().optional(),
      ExposedPorts: z.record(z.string(), z.object({})).nullish(),
      Env: z.array(z.string()).nullish(),
      Entrypoint: z.array(z.string()).nullish(),
      Cmd: z.array(z.string()).nullish(),
      Volumes: z.record(z.string(), z.object({})).nullish(),
      WorkingDir: z.string().optional(),
      Labels: z.record(z.string(), z.string()).nullish(),
      StopSignal: z.string().optional(),
      ArgsEscaped: z.boolean().optional(),
    })
    .loose()
    .optional(),
  rootfs: z.object({
    type: z.literal('layers'),
    diff_ids: z.array(DigestSchema),
  }),
  history: z
    .array(
      z.object({
        created: z.string().optional(),
        author: z.string().optional(),
        created_by: z.string().optional(),
        comment: z.string().optional(),
        empty_layer: z.boolean().optional(),
      }),
    )
    .optional(),
});
export type ImageConfig = z.infer<typeof ImageConfigSchema>;

/** The `oci-layout` marker file of an OCI image layout. */
export const OciLayoutFileSchema = z.object({ imageLayoutVersion: z.string() });

/** Annotation naming a manifest inside an OCI layout's index.json (the "tag"). */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
