import { describe, expect, it } from 'vitest';
import { renderHosts } from './hosts.js';
import { parseResolvConf, renderResolvConf } from './resolv.js';

describe('resolv.conf', () => {
  const host = parseResolvConf(
    'nameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver ::1\nnameserver fd00::53\nsearch a.example b.example\noptions ndots:2\n',
  );
  it('drops loopback nameservers in an own netns, IPv6 ones without IPv6', () => {
    expect(renderResolvConf(host, { ownNetns: true, ipv6: false })).toBe(
      'search a.example b.example\nnameserver 10.255.255.53\noptions ndots:2\n',
    );
    expect(renderResolvConf(host, { ownNetns: false, ipv6: true })).toContain('nameserver 127.0.0.53');
  });
  it('applies dns, dnsSearch and dnsOptions like podman', () => {
    const out = renderResolvConf(host, {
      ownNetns: true,
      ipv6: false,
      dns: ['10.213.0.1'],
      dnsSearch: ['.'],
      dnsOptions: ['timeout:1'],
    });
    expect(out).toBe('nameserver 10.213.0.1\noptions timeout:1\n');
  });
  it('falls back to podman defaults when nothing usable is left', () => {
    const out = renderResolvConf(parseResolvConf('nameserver 127.0.0.1\n'), { ownNetns: true, ipv6: false });
    expect(out).toBe('nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
  });
});

describe('hosts', () => {
  it('lists own names first and peers on DNS networks only', () => {
    const reg = {
      containers: {
        a: {
          name: 'a',
          hostname: 'ha',
          extraHosts: ['gw:10.0.0.1'],
          networks: {
            n1: { ips: ['10.0.0.2'], aliases: [], dns: true },
            n2: { ips: ['10.1.0.2'], aliases: [], dns: false },
          },
        },
        b: {
          name: 'b',
          extraHosts: [],
          networks: { n1: { ips: ['10.0.0.3'], aliases: ['bee'], dns: true } },
        },
        c: { name: 'c', extraHosts: [], networks: { n2: { ips: ['10.1.0.3'], aliases: [], dns: false } } },
      },
    };
    const out = renderHosts(reg, 'a');
    expect(out).toContain('10.0.0.2\tha a\n');
    expect(out).toContain('10.0.0.1\tgw\n');
    expect(out).toContain('10.0.0.3\tb bee\n');
    expect(out).not.toContain('10.1.0.3');
    expect(out.startsWith('127.0.0.1\tlocalhost')).toBe(true);
  });
});
