import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseNormalizedNamed } from './parse.js';
import {
  isInsecureRegistry,
  loadRegistriesConf,
  parseRegistriesConf,
  pullSources,
  resolveShortName,
} from './registries-conf.js';

const CONF = `
unqualified-search-registries = ["registry.fedoraproject.org", "docker.io"]
short-name-mode = "enforcing"

[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
"myapp" = "quay.io/me/app"

[[registry]]
prefix = "example.com/foo"
location = "internal.example.com/bar"
insecure = true

[[registry.mirror]]
location = "mirror.local:5000/foo"
insecure = true

[[registry.mirror]]
location = "digest-only.local/foo"
pull-from-mirror = "digest-only"

[[registry]]
location = "evil.example.com"
blocked = true

[[registry]]
prefix = "*.wild.test"
insecure = true
`;

describe('registries.conf', () => {
  const conf = parseRegistriesConf(CONF);
  it('resolves aliases, carrying tag and digest', () => {
    expect(resolveShortName(conf, 'fedora:39').candidates.map(String)).toEqual([
      'registry.fedoraproject.org/fedora:39',
    ]);
    expect(resolveShortName(conf, 'myapp').candidates.map(String)).toEqual(['quay.io/me/app:latest']);
  });
  it('expands short names through the search registries in order, never prompting', () => {
    expect(resolveShortName(conf, 'busybox').candidates.map(String)).toEqual([
      'registry.fedoraproject.org/busybox:latest',
      'docker.io/library/busybox:latest',
    ]);
  });
  it('leaves qualified names alone', () => {
    expect(resolveShortName(conf, 'quay.io/a/b:1').candidates.map(String)).toEqual(['quay.io/a/b:1']);
  });
  it('fails typed when no search registries exist', () => {
    expect(() => resolveShortName(parseRegistriesConf(''), 'busybox')).toThrowError(
      expect.objectContaining({ code: 'ERR_SHORT_NAME' }),
    );
  });
  it('rewrites prefixes to locations and lists mirrors first', () => {
    const tagged = pullSources(conf, parseNormalizedNamed('example.com/foo/img:1'));
    expect(tagged.map((s) => [s.reference.toString(), s.insecure, s.mirror])).toEqual([
      ['mirror.local:5000/foo/img:1', true, true],
      ['internal.example.com/bar/img:1', true, false],
    ]);
    const d = `sha256:${'b'.repeat(64)}`;
    expect(pullSources(conf, parseNormalizedNamed(`example.com/foo/img@${d}`)).length).toBe(3);
    expect(pullSources(conf, parseNormalizedNamed('example.com/foobar/x')).length).toBe(1);
  });
  it('refuses blocked registries', () => {
    expect(() => pullSources(conf, parseNormalizedNamed('evil.example.com/x'))).toThrowError(
      expect.objectContaining({ code: 'ERR_REGISTRY_BLOCKED' }),
    );
  });
  it('knows insecure registries, including wildcards and mirrors', () => {
    expect(isInsecureRegistry(conf, 'a.wild.test')).toBe(true);
    expect(isInsecureRegistry(conf, 'mirror.local:5000')).toBe(true);
    expect(isInsecureRegistry(conf, 'quay.io')).toBe(false);
  });
  it('rejects malformed files with a typed error', () => {
    expect(() => parseRegistriesConf('unqualified-search-registries = "x"')).toThrowError(
      expect.objectContaining({ code: 'ERR_CONFIG' }),
    );
    expect(() => parseRegistriesConf('[[registry]]\ninsecure = true')).toThrowError(
      expect.objectContaining({ code: 'ERR_CONFIG' }),
    );
    expect(() => parseRegistriesConf('= broken')).toThrowError(
      expect.objectContaining({ code: 'ERR_CONFIG' }),
    );
  });
  it('loads drop-ins and tolerates a missing file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regconf-'));
    try {
      expect((await loadRegistriesConf(join(dir, 'nope.conf'))).registries).toEqual([]);
      await writeFile(join(dir, 'r.conf'), CONF);
      await mkdir(join(dir, 'r.conf.d'));
      await writeFile(join(dir, 'r.conf.d', '10-x.conf'), 'unqualified-search-registries = ["quay.io"]\n');
      const c = await loadRegistriesConf(join(dir, 'r.conf'));
      expect(c.unqualifiedSearchRegistries).toEqual(['quay.io']);
      expect(c.aliases.fedora).toBeDefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
