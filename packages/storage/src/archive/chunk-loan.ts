/**
 * Input chunks whose memory their producer wants back.
 *
 * The gzip worker (gunzip-worker.ts) hands the main thread ~1 GB of 1 MiB buffers per many-files
 * layer. Allocated fresh, they count as V8 external memory and made the main thread run a full
 * mark-compact every few dozen MB (~36 per 670 MB layer, measured with --trace-gc). Lent and
 * returned, a handful of buffers circulate instead.
 *
 * Contract: a consumer calls returnChunk(chunk) only when no view of `chunk` is alive anymore
 * (the tar reader does so at entry boundaries, see TarReader). Only the exact Buffer object that
 * was lent is recognised: a slice or concatenation made by a stream on the way is another object
 * and is never returned (it is garbage collected like any buffer). A returned chunk may be
 * detached or overwritten at once, so returning one early would corrupt data: when in doubt, a
 * consumer does not return.
 */
const lenders = new WeakMap<Buffer, (chunk: Buffer) => void>();

/** Marks `chunk` as lent; `giveBack` is called (once) when its consumer returns it. */
export function lendChunk(chunk: Buffer, giveBack: (chunk: Buffer) => void): Buffer {
  lenders.set(chunk, giveBack);
  return chunk;
}

/** Gives a chunk back to its lender, if it was lent; otherwise does nothing. */
export function returnChunk(chunk: Buffer): void {
  const giveBack = lenders.get(chunk);
  if (giveBack === undefined) return;
  lenders.delete(chunk);
  giveBack(chunk);
}
