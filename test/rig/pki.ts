/**
 * Per-run PKI for the rig, made with the openssl CLI: a CA, a server certificate for 127.0.0.1,
 * ::1 and localhost signed by it, and a self-signed token-signing certificate. Nothing is reused
 * between runs, so no test can pass because of a stale trust anchor.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export interface ServerPki {
  /** PEM of the CA that signed the server certificate: what clients must trust. */
  caPath: string;
  certPath: string;
  keyPath: string;
}

export interface SigningPki {
  /** Self-signed certificate (PEM) whose key signs tokens; the registry's rootcertbundle. */
  certPath: string;
  keyPath: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Writes ca.crt, ca.key, server.crt, server.key into dir. */
export async function makeServerPki(dir: string): Promise<ServerPki> {
  const p = (f: string) => join(dir, f);
  await execa('openssl', [
    'req',
    '-x509',
    ...EC,
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=libpod-ts test rig CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await execa('openssl', [
    'req',
    ...EC,
    '-keyout',
    p('server.key'),
    '-out',
    p('server.csr'),
    '-subj',
    '/CN=localhost',
  ]);
  await writeFile(
    p('server.ext'),
    [
      'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  await execa('openssl', [
    'x509',
    '-req',
    '-in',
    p('server.csr'),
    '-CA',
    p('ca.crt'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-out',
    p('server.crt'),
    '-days',
    '2',
    '-extfile',
    p('server.ext'),
  ]);
  return { caPath: p('ca.crt'), certPath: p('server.crt'), keyPath: p('server.key') };
}

/** Writes token.crt / token.key (RSA, as Docker Hub's auth service signs RS256). */
export async function makeSigningPki(dir: string, name = 'token'): Promise<SigningPki> {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  await execa('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '2',
    '-subj',
    `/CN=libpod-ts test rig ${name} signer`,
  ]);
  return { certPath, keyPath };
}
