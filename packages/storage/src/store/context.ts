/** What every store operation needs: paths, the database-as-lock, the driver. */
import { createHash, randomBytes } from 'node:crypto';
import type { Driver } from '../drivers/types.js';
import { InvalidStoreArgumentError, LayerNotFoundError } from '../errors.js';
import type { MetaDb, Tx } from './db.js';
import type { Layout } from './layout.js';
import { K, type LayerRecord, LayerRecordSchema } from './records.js';

export interface Ctx {
  layout: Layout;
  db: MetaDb;
  driver: Driver;
}

export function newId(): string {
  return randomBytes(32).toString('hex');
}

export function sha256(data: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** OCI chainID: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). */
export function chainIdOf(parentChainID: string | undefined, diffID: string): string {
  return parentChainID === undefined ? diffID : sha256(`${parentChainID} ${diffID}`);
}

export function hexOf(digest: string): string {
  const i = digest.indexOf(':');
  return i < 0 ? digest : digest.slice(i + 1);
}

const HEX64 = /^[a-f0-9]{64}$/;

export function assertId(what: string, id: string): void {
  if (!HEX64.test(id))
    throw new InvalidStoreArgumentError(what, `${JSON.stringify(id)} is not 64 lowercase hex`);
}

export function nowIso(): string {
  return new Date().toISOString();
}

export async function getLayerTx(tx: Tx, id: string): Promise<LayerRecord | undefined> {
  return tx.get(K.layer(id), LayerRecordSchema);
}

export async function requireCompleteLayer(tx: Tx, id: string): Promise<LayerRecord> {
  const l = await getLayerTx(tx, id);
  if (!l) throw new LayerNotFoundError(id);
  if (l.state !== 'complete') throw new LayerNotFoundError(id, `layer is ${l.state}`);
  return l;
}

/** Parent chain of `layer`, bottom (base) to top (direct parent), excluding the layer itself. */
export async function parentChainTx(tx: Tx, layer: LayerRecord): Promise<string[]> {
  const chain: string[] = [];
  let cur = layer.parent;
  while (cur !== null) {
    const p = await getLayerTx(tx, cur);
    if (!p) throw new LayerNotFoundError(cur, `parent of ${layer.id} is missing`);
    chain.push(p.id);
    cur = p.parent;
    if (chain.length > 4096) throw new LayerNotFoundError(layer.id, 'parent chain too long or cyclic');
  }
  return chain.reverse();
}
