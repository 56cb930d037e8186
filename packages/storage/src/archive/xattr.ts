/**
 * Extended attributes without following symlinks. Node has no (l)setxattr; @napi-rs/xattr is a
 * prebuilt N-API binding over the Rust `xattr` crate, whose path calls are the l*xattr syscalls
 * (they act on a symlink itself, never on its target).
 */
import * as napiXattr from '@napi-rs/xattr';
import { StorageError } from '../errors.js';

interface XattrBinding {
  getAttributeSync(path: string, name: string): Buffer | null;
  listAttributesSync(path: string): string[];
  setAttributeSync(path: string, name: string, value: Uint8Array | string): void;
  removeAttributeSync(path: string, name: string): void;
}

const binding: XattrBinding = napiXattr as unknown as XattrBinding;

function load(): XattrBinding {
  return binding;
}

/** lsetxattr(2). Errors carry the path and name. */
export function lsetxattr(path: string, name: string, value: Uint8Array | string): void {
  try {
    load().setAttributeSync(path, name, value);
  } catch (cause) {
    if (cause instanceof StorageError) throw cause;
    throw new StorageError('ERR_XATTR', `setting xattr ${name} on ${path} failed`, { cause });
  }
}

/** lgetxattr(2); null when absent. */
export function lgetxattr(path: string, name: string): Buffer | null {
  try {
    return load().getAttributeSync(path, name);
  } catch {
    return null;
  }
}

/** llistxattr(2); [] when the file system has none or does not support them. */
export function llistxattr(path: string): string[] {
  try {
    return load().listAttributesSync(path);
  } catch {
    return [];
  }
}
