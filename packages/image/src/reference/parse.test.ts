import { describe, expect, it } from 'vitest';
import { parseDockerRef, parseNormalizedNamed, parseReference } from './parse.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference (distribution grammar, no normalisation)', () => {
  const valid: [string, string, string | undefined, string | undefined][] = [
    ['test_com', 'test_com', undefined, undefined],
    ['test.com:tag', 'test.com', 'tag', undefined],
    ['test.com:5000', 'test.com', '5000', undefined],
    ['test.com/repo:tag', 'test.com/repo', 'tag', undefined],
    ['test:5000/repo', 'test:5000/repo', undefined, undefined],
    ['test:5000/repo:tag', 'test:5000/repo', 'tag', undefined],
    [`test:5000/repo@${D}`, 'test:5000/repo', undefined, D],
    [`test:5000/repo:tag@${D}`, 'test:5000/repo', 'tag', D],
    ['sub-dom1.foo.com/bar/baz/quux', 'sub-dom1.foo.com/bar/baz/quux', undefined, undefined],
    [
      'b.gcr.io/test.example.com/my-app:test.example.com',
      'b.gcr.io/test.example.com/my-app',
      'test.example.com',
      undefined,
    ],
    ['xn--n3h.com/myimage:xn--n3h.com', 'xn--n3h.com/myimage', 'xn--n3h.com', undefined],
    ['foo_bar.com:8080', 'foo_bar.com', '8080', undefined],
    ['foo/foo_bar.com:8080', 'foo/foo_bar.com', '8080', undefined],
    ['[2001:db8::1]/repo', '[2001:db8::1]/repo', undefined, undefined],
    ['[2001:db8::1]:5000/repo:tag', '[2001:db8::1]:5000/repo', 'tag', undefined],
    ['a__b/c---d', 'a__b/c---d', undefined, undefined],
    ['localhost:5000/a/b/c:v1.2.3-rc_1', 'localhost:5000/a/b/c', 'v1.2.3-rc_1', undefined],
  ];
  for (const [input, name, tag, digest] of valid) {
    it(`parses ${input}`, () => {
      const r = parseReference(input);
      expect(r.name).toBe(name);
      expect(r.tag).toBe(tag);
      expect(r.digest).toBe(digest);
      expect(r.toString()).toBe(input);
    });
  }

  const invalid: [string, string][] = [
    ['', 'at least one component'],
    [':justtag', 'invalid reference format'],
    [`@${D}`, 'invalid reference format'],
    ['repo@sha256:ffffffffffffffffffffffffffffffffff', 'invalid sha256 digest'],
    [
      'validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
      'unsupported digest algorithm',
    ],
    ['Uppercase:tag', 'must be lowercase'],
    ['test:5000/Uppercase/lowercase:tag', 'must be lowercase'],
    ['aa/asdf$$^/aa', 'invalid reference format'],
    ['a_-b/c', 'invalid reference format'],
    ['a..b/c', 'invalid reference format'],
    ['a/b:', 'invalid reference format'],
    [`a/b:${'t'.repeat(129)}`, 'invalid reference format'],
    ['-a/b', 'invalid reference format'],
    ['a/b/', 'invalid reference format'],
    [`${'a/'.repeat(128)}a:tag`, 'not be more than 255'],
    [`repo@sha256:${'A'.repeat(64)}`, 'lowercase hex'],
  ];
  for (const [input, msg] of invalid) {
    it(`rejects ${JSON.stringify(input.slice(0, 40))}`, () => {
      expect(() => parseReference(input)).toThrowError(
        expect.objectContaining({ code: 'ERR_INVALID_REFERENCE' }),
      );
      expect(() => parseReference(input)).toThrow(msg);
    });
  }
  it('accepts a 255-character name', () => {
    const name = `${'a/'.repeat(127)}a`;
    expect(name.length).toBe(255);
    expect(parseReference(`${name}:t`).name).toBe(name);
  });
});

describe('parseNormalizedNamed', () => {
  const cases: [string, string, string][] = [
    ['busybox', 'docker.io/library/busybox', 'busybox'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox', 'busybox'],
    ['docker.io/busybox', 'docker.io/library/busybox', 'busybox'],
    ['index.docker.io/busybox', 'docker.io/library/busybox', 'busybox'],
    ['user/repo', 'docker.io/user/repo', 'user/repo'],
    ['docker.io/library/a/b', 'docker.io/library/a/b', 'library/a/b'],
    ['localhost/foo', 'localhost/foo', 'localhost/foo'],
    ['localhost:5000/foo:t', 'localhost:5000/foo:t', 'localhost:5000/foo:t'],
    ['quay.io/a/b@' + D, `quay.io/a/b@${D}`, `quay.io/a/b@${D}`],
    ['foo:5000/bar:tag@' + D, `foo:5000/bar:tag@${D}`, `foo:5000/bar:tag@${D}`],
    ['Foo.com/bar', 'Foo.com/bar', 'Foo.com/bar'],
  ];
  for (const [input, full, familiar] of cases) {
    it(`${input} -> ${full}`, () => {
      const r = parseNormalizedNamed(input);
      expect(r.toString()).toBe(full);
      expect(r.familiarString()).toBe(familiar);
    });
  }
  it('refuses 64-hex identifiers and uppercase repos', () => {
    expect(() => parseNormalizedNamed('a'.repeat(64))).toThrow('64-byte');
    expect(() => parseNormalizedNamed('docker.io/Busybox')).toThrow('lowercase');
  });
  it('adds :latest only when there is neither tag nor digest', () => {
    expect(parseDockerRef('busybox').toString()).toBe('docker.io/library/busybox:latest');
    expect(parseDockerRef(`busybox@${D}`).tag).toBeUndefined();
  });
});
