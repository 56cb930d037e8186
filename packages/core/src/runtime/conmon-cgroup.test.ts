import { describe, expect, it } from 'vitest';
import { cgroupParentOf } from './conmon-cgroup.js';

describe('cgroupParentOf', () => {
  it('takes the cgroupfs parent of a container cgroup; none for systemd or relative paths', () => {
    expect(cgroupParentOf('/libpod_parent/libpod-abc')).toBe('/libpod_parent');
    expect(cgroupParentOf('/a/b/libpod-abc')).toBe('/a/b');
    expect(cgroupParentOf('/libpod-abc')).toBeUndefined();
    expect(cgroupParentOf('machine.slice:libpod:abc')).toBeUndefined();
    expect(cgroupParentOf('relative/abc')).toBeUndefined();
    expect(cgroupParentOf('')).toBeUndefined();
    expect(cgroupParentOf(undefined)).toBeUndefined();
  });
});
