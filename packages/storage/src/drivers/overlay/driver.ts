import type { Readable } from 'node:stream';
import { DriverUnavailableError } from '../../errors.js';
import type { ApplyDiffOptions, Change, Driver, DriverOptions, MountOptions, ProbeResult } from '../types.js';

// Placeholder until the implementation lands (issue 4, step 3): every call says so.
export class OverlayDriver implements Driver {
  readonly name = 'overlay' as const;
  readonly home: string;
  constructor(opts: DriverOptions) {
    this.home = opts.home;
  }
  private no(): never {
    throw new DriverUnavailableError(this.name, 'not implemented yet');
  }
  async probe(): Promise<ProbeResult> {
    return { ok: false, reason: 'not implemented yet' };
  }
  async createLayer(_id: string, _parentId: string | undefined): Promise<void> {
    this.no();
  }
  async applyDiff(
    _i: string,
    _p: string | undefined,
    _t: Readable,
    _o?: ApplyDiffOptions,
  ): Promise<{ size: number }> {
    this.no();
  }
  async mount(_id: string, _chain: readonly string[], _o?: MountOptions): Promise<string> {
    this.no();
  }
  async unmount(_id: string): Promise<void> {
    this.no();
  }
  async isMounted(_id: string): Promise<boolean> {
    this.no();
  }
  async removeLayer(_id: string): Promise<void> {
    this.no();
  }
  async exists(_id: string): Promise<boolean> {
    this.no();
  }
  async changes(_id: string, _chain: readonly string[]): Promise<Change[]> {
    this.no();
  }
  diff(_id: string, _chain: readonly string[]): Readable {
    this.no();
  }
  layerDir(_id: string): string {
    this.no();
  }
}
