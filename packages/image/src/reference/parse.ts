/**
 * Docker/distribution image references, exactly the grammar of distribution/reference:
 *
 *   reference            := name [ ":" tag ] [ "@" digest ]
 *   name                 := [domain '/'] remote-name
 *   domain               := host [':' port-number]
 *   host                 := domain-name | IPv4address | '[' IPv6address ']'
 *   domain-name          := domain-component ['.' domain-component]*
 *   domain-component     := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
 *   port-number          := /[0-9]+/
 *   remote-name          := path-component ['/' path-component]*
 *   path-component       := alpha-numeric [separator alpha-numeric]*
 *   alpha-numeric        := /[a-z0-9]+/
 *   separator            := /[_.]|__|[-]+/
 *   tag                  := /[\w][\w.-]{0,127}/
 *   digest               := digest-algorithm ":" digest-hex
 *   digest-algorithm     := component [ /[+._-]/ component ]*,  component := /[A-Za-z][A-Za-z0-9]*‍/
 *   digest-hex           := /[0-9a-fA-F]{32,}/
 *
 * plus: the name (domain and path) is at most 255 characters; a digest must be of a known
 * algorithm with the right length (sha256: 64, sha384: 96, sha512: 128 lowercase hex).
 *
 * Normalisation (`parseNormalizedNamed`, what `podman pull busybox` does): when the first
 * '/'-separated component contains no '.' or ':', is not `localhost` and is all lowercase, it is
 * part of the path and the domain is `docker.io`; `index.docker.io` becomes `docker.io`; a
 * single-component path on docker.io gets `library/`. A 64-hex-character string alone is refused
 * (it looks like an image ID). The repository path must be lowercase.
 */
import { InvalidReferenceError } from '../errors.js';

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
export const NAME_TOTAL_LENGTH_MAX = 255;

const alphaNumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphaNumeric}(?:${separator}${alphaNumeric})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const domainName = `${domainComponent}(?:\\.${domainComponent})*`;
const ipv6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const host = `(?:${domainName}|${ipv6})`;
const domain = `${host}(?::[0-9]+)?`;
const tag = '[\\w][\\w.-]{0,127}';
const digestPat = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const namePat = `(?:${domain}/)?${pathComponent}(?:/${pathComponent})*`;

const REFERENCE_RE = new RegExp(`^(${namePat})(?::(${tag}))?(?:@(${digestPat}))?$`);
const ANCHORED_NAME_RE = new RegExp(`^(?:(${domain})/)?(${pathComponent}(?:/${pathComponent})*)$`);
const ANCHORED_TAG_RE = new RegExp(`^${tag}$`);
const ANCHORED_DIGEST_RE = new RegExp(`^${digestPat}$`);
const ANCHORED_IDENTIFIER_RE = /^[a-f0-9]{64}$/;

const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** A parsed reference. `domain` is '' only for references parsed without normalisation and no domain. */
export class ImageName {
  readonly domain: string;
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;

  constructor(domain: string, path: string, tag?: string, digest?: string) {
    this.domain = domain;
    this.path = path;
    this.tag = tag;
    this.digest = digest;
  }

  /** `domain/path` (or just `path` when there is no domain). */
  get name(): string {
    return this.domain ? `${this.domain}/${this.path}` : this.path;
  }

  /** `name[:tag][@digest]`. */
  toString(): string {
    return (
      this.name + (this.tag !== undefined ? `:${this.tag}` : '') + (this.digest ? `@${this.digest}` : '')
    );
  }

  /** The shortest form users type: `busybox` for `docker.io/library/busybox`. */
  familiarName(): string {
    if (this.domain !== DEFAULT_DOMAIN) return this.name;
    if (
      this.path.startsWith(OFFICIAL_REPO_PREFIX) &&
      !this.path.slice(OFFICIAL_REPO_PREFIX.length).includes('/')
    ) {
      return this.path.slice(OFFICIAL_REPO_PREFIX.length);
    }
    return this.path;
  }

  familiarString(): string {
    return (
      this.familiarName() +
      (this.tag !== undefined ? `:${this.tag}` : '') +
      (this.digest ? `@${this.digest}` : '')
    );
  }

  withTag(tag: string): ImageName {
    if (!ANCHORED_TAG_RE.test(tag)) throw new InvalidReferenceError(tag, 'invalid tag format');
    return new ImageName(this.domain, this.path, tag, this.digest);
  }

  withDigest(digest: string): ImageName {
    validateDigest(digest, digest);
    return new ImageName(this.domain, this.path, this.tag, digest);
  }

  /** Only the name (no tag, no digest). */
  nameOnly(): ImageName {
    return new ImageName(this.domain, this.path);
  }

  /** Adds `:latest` when there is neither tag nor digest (docker's TagNameOnly). */
  withDefaultTag(): ImageName {
    return this.tag === undefined && this.digest === undefined ? this.withTag('latest') : this;
  }
}

function validateDigest(ref: string, digest: string): void {
  if (!ANCHORED_DIGEST_RE.test(digest)) throw new InvalidReferenceError(ref, 'invalid digest format');
  const i = digest.indexOf(':');
  const alg = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  const len = DIGEST_HEX_LENGTH[alg];
  if (len === undefined) throw new InvalidReferenceError(ref, `unsupported digest algorithm ${alg}`);
  if (hex.length !== len || !/^[a-f0-9]+$/.test(hex)) {
    throw new InvalidReferenceError(ref, `invalid ${alg} digest: expected ${len} lowercase hex characters`);
  }
}

/**
 * Parses a reference without normalisation (distribution's `Parse`): `busybox` stays `busybox`
 * with no domain. Use {@link parseNormalizedNamed} for user input.
 */
export function parseReference(s: string): ImageName {
  if (s.length === 0) throw new InvalidReferenceError(s, 'repository name must have at least one component');
  if (s.length > 4096) throw new InvalidReferenceError(s, 'reference too long');
  const m = REFERENCE_RE.exec(s);
  if (!m) {
    if (REFERENCE_RE.test(s.toLowerCase()))
      throw new InvalidReferenceError(s, 'repository name must be lowercase');
    throw new InvalidReferenceError(s, 'invalid reference format');
  }
  const name = m[1]!;
  if (name.length > NAME_TOTAL_LENGTH_MAX) {
    throw new InvalidReferenceError(
      s,
      `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`,
    );
  }
  const nm = ANCHORED_NAME_RE.exec(name)!;
  if (m[3]) validateDigest(s, m[3]);
  return new ImageName(nm[1] ?? '', nm[2]!, m[2], m[3]);
}

function splitDockerDomain(name: string): [string, string] {
  const i = name.indexOf('/');
  let domain: string;
  let remainder: string;
  const first = i === -1 ? '' : name.slice(0, i);
  if (i === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return [domain, remainder];
}

/**
 * Parses user input the way docker and podman do (`busybox` -> `docker.io/library/busybox`).
 * Does not add a default tag; see {@link ImageName.withDefaultTag}.
 */
export function parseNormalizedNamed(s: string): ImageName {
  if (ANCHORED_IDENTIFIER_RE.test(s)) {
    throw new InvalidReferenceError(s, 'cannot specify 64-byte hexadecimal strings (looks like an image ID)');
  }
  // Split off tag/digest before domain detection so that `localhost:5000/x:tag` works.
  const [domain, remainder] = splitDockerDomain(s);
  let remoteName = remainder;
  const tagSep = remoteName.search(/[:@]/);
  if (tagSep !== -1) remoteName = remoteName.slice(0, tagSep);
  if (remoteName.toLowerCase() !== remoteName) {
    throw new InvalidReferenceError(s, 'repository name must be lowercase');
  }
  const ref = parseReference(`${domain}/${remainder}`);
  return ref;
}

/** Whether `s` names no registry (its first component is not a domain): it needs short-name resolution. */
export function isShortName(s: string): boolean {
  const i = s.indexOf('/');
  if (i === -1) return true;
  const first = s.slice(0, i);
  return !/[.:]/.test(first) && first !== 'localhost';
}

/** Parses and adds `:latest` when neither tag nor digest is given. */
export function parseDockerRef(s: string): ImageName {
  return parseNormalizedNamed(s).withDefaultTag();
}

/** Validates a tag by the grammar; throws InvalidReferenceError. */
export function validateTag(t: string): void {
  if (!ANCHORED_TAG_RE.test(t)) throw new InvalidReferenceError(t, 'invalid tag format');
}
