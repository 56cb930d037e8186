/**
 * Caps applied to every layer archive. The defaults are generous for real images and stop the
 * resource attacks in SECURITY.md (unbounded PAX / GNU long-name headers, deep paths, endless
 * entry lists, decompression bombs).
 */
export interface LayerLimits {
  /** Max size of one PAX extended header or GNU long name/link record, in bytes (default 1 MiB). */
  maxExtendedHeader?: number;
  /** Max length of an entry path or link target, in bytes (default 4096, PATH_MAX). */
  maxPathLength?: number;
  /** Max number of entries in the layer (default 2,000,000). */
  maxEntries?: number;
  /** Max sum of regular-file bytes written (default 256 GiB). */
  maxBytes?: number;
}

export const DEFAULT_LIMITS: Required<LayerLimits> = {
  maxExtendedHeader: 1 << 20,
  maxPathLength: 4096,
  maxEntries: 2_000_000,
  maxBytes: 256 * 1024 ** 3,
};

export function effectiveLimits(l: LayerLimits | undefined): Required<LayerLimits> {
  return { ...DEFAULT_LIMITS, ...stripUndefined(l ?? {}) };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
