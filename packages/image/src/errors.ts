/**
 * Errors of @libpod-ts/image: a closed set of classes, each with a stable `code` that callers
 * branch on (`err.code === 'ERR_...'`), which works even when two copies of the package are loaded.
 * Messages name the object and the cause; the underlying error is chained as `cause`.
 */
export class ImageError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
