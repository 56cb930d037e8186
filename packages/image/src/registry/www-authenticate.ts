/**
 * Parser for `WWW-Authenticate` (RFC 7235 §4.1):
 *
 *   challenges  := challenge *( OWS "," OWS challenge )
 *   challenge   := auth-scheme [ 1*SP ( token68 / auth-param *( OWS "," OWS auth-param ) ) ]
 *   auth-param  := token BWS "=" BWS ( token / quoted-string )
 *   quoted-string := DQUOTE *( qdtext / "\" any-char ) DQUOTE
 *
 * Scheme and parameter names are case-insensitive (lowercased here). Several challenges may share
 * one header. Anything else (unterminated quotes, missing `=`, control characters, more than 8 KiB)
 * is an AuthChallengeError: an attacker-controlled header never reaches a URL unchecked.
 */
import { AuthChallengeError } from '../errors.js';

export interface Challenge {
  /** Lowercased scheme: 'bearer', 'basic', ... */
  scheme: string;
  /** Lowercased parameter names; values unquoted. */
  params: Record<string, string>;
  token68?: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;
const MAX_HEADER = 8192;

export function parseWwwAuthenticate(header: string, object = 'WWW-Authenticate'): Challenge[] {
  if (header.length > MAX_HEADER) throw new AuthChallengeError(object, 'header too long');
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(header))
    throw new AuthChallengeError(object, 'control characters in header');
  let s = header;
  const out: Challenge[] = [];
  const skipWs = () => {
    s = s.replace(/^[ \t]+/, '');
  };
  const fail = (why: string): never => {
    throw new AuthChallengeError(object, `malformed WWW-Authenticate: ${why}`);
  };
  skipWs();
  while (s.length > 0) {
    while (s.startsWith(',')) {
      s = s.slice(1);
      skipWs();
    }
    if (!s) break;
    const scheme = TOKEN.exec(s)?.[0] ?? fail('expected an auth scheme');
    s = s.slice(scheme.length);
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    if (s.length > 0 && !/^[ \t,]/.test(s)) fail('expected space after scheme');
    skipWs();
    // token68 form (only for schemes other than the two registries use, whose params we need).
    const t68 = /^[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(,|$))/.exec(s)?.[0];
    if (t68 && ch.scheme !== 'bearer' && ch.scheme !== 'basic') {
      ch.token68 = t68;
      s = s.slice(t68.length);
      skipWs();
      continue;
    }
    // auth-params until something that is not `name=`
    for (;;) {
      skipWs();
      const name = TOKEN.exec(s)?.[0];
      if (!name) break;
      const rest = s.slice(name.length).replace(/^[ \t]*/, '');
      if (!rest.startsWith('=')) break; // next challenge begins
      s = rest.slice(1).replace(/^[ \t]*/, '');
      let value: string;
      if (s.startsWith('"')) {
        let i = 1;
        value = '';
        for (;;) {
          if (i >= s.length) fail('unterminated quoted string');
          const c = s[i]!;
          if (c === '\\') {
            if (i + 1 >= s.length) fail('dangling escape');
            value += s[i + 1];
            i += 2;
          } else if (c === '"') {
            i++;
            break;
          } else {
            value += c;
            i++;
          }
        }
        s = s.slice(i);
      } else {
        value = TOKEN.exec(s)?.[0] ?? fail(`parameter ${name} has no value`);
        s = s.slice(value.length);
      }
      const key = name.toLowerCase();
      if (key in ch.params) fail(`duplicate parameter ${key}`);
      ch.params[key] = value;
      skipWs();
      if (s.startsWith(',')) {
        s = s.slice(1);
        continue;
      }
      if (s.length === 0) break;
      fail(`unexpected ${JSON.stringify(s.slice(0, 10))}`);
    }
  }
  if (out.length === 0) fail('no challenge');
  return out;
}
