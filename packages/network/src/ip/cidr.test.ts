import { describe, expect, it } from 'vitest';
import { contains, formatCidr, formatIp, overlaps, parseCidr, parseIp } from './cidr.js';

describe('cidr', () => {
  it('parses and formats IPv4 and IPv6', () => {
    expect(formatIp(parseIp('10.213.0.1')!)).toBe('10.213.0.1');
    expect(formatIp(parseIp('fd00:213:0:0:0:0:0:1')!)).toBe('fd00:213::1');
    expect(formatIp(parseIp('::ffff:10.0.0.1')!)).toBe('::ffff:a00:1');
    expect(formatIp(parseIp('::')!)).toBe('::');
    expect(formatCidr(parseCidr('fd00:213::/64', true)!)).toBe('fd00:213::/64');
  });
  it('rejects malformed input', () => {
    for (const bad of ['10.0.0', '10.0.0.256', '010.0.0.1', '1::2::3', 'fd00::g', '10.0.0.1 ', '']) {
      expect(parseIp(bad)).toBeUndefined();
    }
    for (const bad of [
      '10.0.0.0',
      '10.0.0.0/33',
      '10.0.0.1/24',
      'fd00::1/64',
      '10.0.0.0/-1',
      '10.0.0.0/8/8',
    ]) {
      expect(parseCidr(bad, true)).toBeUndefined();
    }
  });
  it('checks containment and overlap', () => {
    const a = parseCidr('10.213.0.0/16')!;
    const b = parseCidr('10.213.5.0/24')!;
    const c = parseCidr('10.214.0.0/24')!;
    expect(overlaps(a, b)).toBe(true);
    expect(overlaps(b, a)).toBe(true);
    expect(overlaps(a, c)).toBe(false);
    expect(overlaps(a, parseCidr('fd00::/8')!)).toBe(false);
    expect(contains(b, parseIp('10.213.5.255')!)).toBe(true);
    expect(contains(b, parseIp('10.213.6.0')!)).toBe(false);
  });
});
