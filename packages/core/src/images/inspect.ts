/**
 * `lp.images.inspect()`: Podman's `podman image inspect` document, from the store's record and
 * the stored config and manifest. Field names and shapes are Podman's (users port scripts that
 * read them); what the store does not keep is given as Podman shows it when absent (`Parent`
 * '', `NamesHistory` []).
 */
import type { ImageRecord, Store } from '@libpod-ts/storage';
import { z } from 'zod';
import { repoOf } from './names.js';

/** The OCI image config's `config` section, as Podman prints it (Go field names). */
export interface ImageInspectConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  [key: string]: unknown;
}

export interface ImageHistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageInspect {
  /** The image ID: hex of the config digest. */
  Id: string;
  /** Digest of the manifest the image was stored with ('' when stored without one). */
  Digest: string;
  /** Names with a tag (`domain/path:tag`). */
  RepoTags: string[];
  /** `domain/path@digest` for each name's repository and each known manifest digest. */
  RepoDigests: string[];
  Parent: string;
  Comment: string;
  /** From the config's `created`, else when the image was stored (RFC 3339). */
  Created: string;
  Config: ImageInspectConfig;
  Version: string;
  Author: string;
  Architecture: string;
  Os: string;
  Variant?: string;
  /** Uncompressed size of the layers plus the stored config and manifest, bytes (as containers/storage counts). */
  Size: number;
  VirtualSize: number;
  GraphDriver: { Name: string; Data: Record<string, string> };
  RootFS: { Type: string; Layers: string[] };
  /** The config's labels; null without any (as Podman). */
  Labels: Record<string, string> | null;
  /** The manifest's annotations. */
  Annotations: Record<string, string>;
  ManifestType: string;
  User: string;
  History: ImageHistoryEntry[];
  /** The store keeps no history of names: the current names (what Podman shows for an image never renamed). */
  NamesHistory: string[];
}

// Loose on purpose: a config written by another tool may carry fields we do not know; the
// fields we read are checked for type and dropped when wrong rather than failing inspect.
const str = z.string().optional().catch(undefined);
const ConfigDoc = z
  .object({
    created: str,
    author: str,
    architecture: str,
    os: str,
    variant: str,
    comment: str,
    docker_version: str,
    config: z.record(z.string(), z.unknown()).optional().catch(undefined),
    rootfs: z
      .object({ type: z.string().optional(), diff_ids: z.array(z.string()).optional() })
      .loose()
      .optional()
      .catch(undefined),
    history: z
      .array(
        z
          .object({
            created: str,
            created_by: str,
            author: str,
            comment: str,
            empty_layer: z.boolean().optional().catch(undefined),
          })
          .loose(),
      )
      .optional()
      .catch(undefined),
  })
  .loose();

const ManifestDoc = z
  .object({ annotations: z.record(z.string(), z.string()).optional().catch(undefined) })
  .loose();

function parseLoose<T extends z.ZodType>(schema: T, bytes: Buffer | undefined): z.output<T> | undefined {
  if (!bytes) return undefined;
  try {
    const r = schema.safeParse(JSON.parse(bytes.toString('utf8')));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export async function inspectImage(store: Store, img: ImageRecord): Promise<ImageInspect> {
  const [configBytes, manifestBytes] = await Promise.all([
    store.imageBlob(img.id, 'config'),
    img.blobs.includes('manifest') ? store.imageBlob(img.id, 'manifest').catch(() => undefined) : undefined,
  ]);
  const cfg = parseLoose(ConfigDoc, configBytes) ?? {};
  const manifest = parseLoose(ManifestDoc, manifestBytes);
  const config = (cfg.config ?? {}) as ImageInspectConfig;
  const labels = config.Labels && typeof config.Labels === 'object' ? config.Labels : null;
  const tags = img.names.filter((n) => !n.includes('@'));
  const repoDigests = new Set(img.digests);
  if (img.manifestDigest) for (const n of img.names) repoDigests.add(`${repoOf(n)}@${img.manifestDigest}`);
  const size = img.size + configBytes.length + (manifestBytes?.length ?? 0);
  const history: ImageHistoryEntry[] = (cfg.history ?? []).map((h) =>
    defined({
      created: h.created,
      created_by: h.created_by,
      author: h.author,
      comment: h.comment,
      empty_layer: h.empty_layer,
    }),
  );
  return {
    Id: img.id,
    Digest: img.manifestDigest ?? '',
    RepoTags: tags,
    RepoDigests: [...repoDigests].sort(),
    Parent: '',
    Comment: cfg.comment ?? '',
    Created: cfg.created && !Number.isNaN(Date.parse(cfg.created)) ? cfg.created : img.created,
    Config: config,
    Version: cfg.docker_version ?? '',
    Author: cfg.author ?? '',
    Architecture: cfg.architecture ?? '',
    Os: cfg.os ?? '',
    ...(cfg.variant ? { Variant: cfg.variant } : {}),
    Size: size,
    VirtualSize: size,
    GraphDriver: { Name: store.driver.name, Data: {} },
    RootFS: { Type: cfg.rootfs?.type ?? 'layers', Layers: cfg.rootfs?.diff_ids ?? [] },
    Labels: labels,
    Annotations: manifest?.annotations ?? {},
    ManifestType: img.manifestMediaType ?? '',
    User: typeof config.User === 'string' ? config.User : '',
    History: history,
    NamesHistory: [...img.names],
  };
}
