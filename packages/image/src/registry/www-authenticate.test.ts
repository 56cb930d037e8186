import { describe, expect, it } from 'vitest';
import { parseWwwAuthenticate } from './www-authenticate.js';

describe('parseWwwAuthenticate', () => {
  it('parses a registry bearer challenge', () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/busybox:pull',
        },
      },
    ]);
  });
  it('parses basic, several challenges, escapes, tokens and odd spacing', () => {
    expect(parseWwwAuthenticate('Basic realm="Registry Realm"')).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
    ]);
    const c = parseWwwAuthenticate('Basic realm="a\\"b" , Bearer realm=x , error=insufficient_scope');
    expect(c).toEqual([
      { scheme: 'basic', params: { realm: 'a"b' } },
      { scheme: 'bearer', params: { realm: 'x', error: 'insufficient_scope' } },
    ]);
    expect(parseWwwAuthenticate('Negotiate abc123==')).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'abc123==' },
    ]);
    expect(parseWwwAuthenticate('BEARER REALM="r"')[0]!.params.realm).toBe('r');
  });
  const bad = [
    '',
    'Bearer realm="unterminated',
    'Bearer realm=',
    'Bearer realm="a" realm2="b"',
    'Bearer realm="a",realm="b"',
    '"quoted"',
    'Bearer realm="a\nb"',
    `Bearer realm="${'x'.repeat(9000)}"`,
    'Bearer realm="x"\\',
  ];
  for (const h of bad) {
    it(`rejects ${JSON.stringify(h.slice(0, 30))}`, () => {
      expect(() => parseWwwAuthenticate(h)).toThrowError(
        expect.objectContaining({ code: 'ERR_AUTH_CHALLENGE' }),
      );
    });
  }
});
