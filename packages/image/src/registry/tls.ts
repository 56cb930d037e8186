/**
 * TLS material for one registry: the system CAs, `SystemContext.extraCA`, and the registry's
 * certs.d directory (`<dir>/<host[:port]>/`): every `*.crt` is a CA, every `*.cert` a client
 * certificate whose key is the `*.key` with the same base name (containers-certs.d(5)).
 * The first certs.d directory that has a folder for the host wins, as in containers/image.
 */
import { readdir, readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { ConfigError } from '../errors.js';
import type { SystemContext } from '../types.js';

export const DEFAULT_CERTS_DIRS = ['/etc/containers/certs.d', '/etc/docker/certs.d'];
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'];

export interface TlsMaterial {
  ca: string[];
  cert?: string;
  key?: string;
}

let systemCache: Promise<string[]> | undefined;

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;
/** A certificate's identity for deduplication: its base64 body without line breaks. */
const pemBody = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s+/g, '');

/**
 * Node's bundled roots plus the certificates of the distribution's bundle (which holds locally
 * added CAs) that Node does not bundle. The bundle repeats most of Node's roots (Debian: 122 of
 * its 144); passing both parsed every root twice when the registry client builds its
 * SecureContext (~120 ms instead of ~55 ms on the first pull of a process).
 */
function systemCAs(): Promise<string[]> {
  systemCache ??= (async () => {
    const out = [...rootCertificates];
    const bundled = new Set(rootCertificates.map(pemBody));
    for (const p of SYSTEM_BUNDLES) {
      let text: string;
      try {
        text = await readFile(p, 'utf8');
      } catch {
        continue; // try the next bundle
      }
      for (const pem of text.match(PEM_CERT_RE) ?? []) if (!bundled.has(pemBody(pem))) out.push(pem);
      break;
    }
    return out;
  })();
  return systemCache;
}

export async function loadTlsMaterial(ctx: SystemContext, hostPort: string): Promise<TlsMaterial> {
  const ca = [...(await systemCAs()), ...(ctx.extraCA ?? []).map((c) => c.toString())];
  const result: TlsMaterial = { ca };
  // Docker-style dirs name the default port implicitly; both spellings are tried.
  const names = hostPort.endsWith(':443') ? [hostPort, hostPort.slice(0, -4)] : [hostPort];
  for (const base of ctx.certsDirs ?? DEFAULT_CERTS_DIRS) {
    for (const name of names) {
      if (name.includes('/') || name.startsWith('.')) continue;
      const dir = `${base}/${name}`;
      let entries: string[];
      try {
        entries = (await readdir(dir)).sort();
      } catch {
        continue;
      }
      for (const e of entries) {
        if (e.endsWith('.crt')) ca.push(await readFile(`${dir}/${e}`, 'utf8'));
      }
      for (const e of entries) {
        if (!e.endsWith('.cert')) continue;
        const keyName = `${e.slice(0, -5)}.key`;
        if (!entries.includes(keyName))
          throw new ConfigError(`${dir}/${e}`, `client certificate without ${keyName}`);
        result.cert = await readFile(`${dir}/${e}`, 'utf8');
        result.key = await readFile(`${dir}/${keyName}`, 'utf8');
      }
      for (const e of entries) {
        if (e.endsWith('.key') && !entries.includes(`${e.slice(0, -4)}.cert`)) {
          throw new ConfigError(`${dir}/${e}`, 'client key without a matching .cert');
        }
      }
      return result;
    }
  }
  return result;
}
