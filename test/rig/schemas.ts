/**
 * Validators for the OCI image-spec JSON schemas (draft-04) kept beside the repo in
 * ../shared/spec-schemas/image-spec. Every file is registered under its file name; the schemas'
 * own `id` URLs are dropped so their relative `$ref`s ("defs.json#/...") resolve against those
 * names instead of opencontainers.org URLs that would differ per nesting level.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ajvDraft04 from 'ajv-draft-04';

// A CommonJS module: under NodeNext its default import is module.exports, whose .default is the class.
const Ajv04 = ajvDraft04.default;

/** Where the spec schemas live: $LIBPOD_TS_SPEC_SCHEMAS, else ../shared/spec-schemas from the repo root. */
export function specSchemasDir(): string {
  const env = process.env.LIBPOD_TS_SPEC_SCHEMAS;
  if (env) return env;
  const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
  return resolve(repoRoot, '..', 'shared', 'spec-schemas');
}

export type ImageSchemaName = 'manifest' | 'index' | 'config' | 'layout' | 'descriptor';

const FILES: Record<ImageSchemaName, string> = {
  manifest: 'image-manifest-schema.json',
  index: 'image-index-schema.json',
  config: 'config-schema.json',
  layout: 'image-layout-schema.json',
  descriptor: 'content-descriptor.json',
};

export interface ImageSpecValidator {
  /** Returns the list of schema errors (empty when valid). */
  validate(schema: ImageSchemaName, value: unknown): string[];
}

function dropIds(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropIds);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === 'id' && typeof x === 'string') continue;
      out[k] = dropIds(x);
    }
    return out;
  }
  return v;
}

/** Every schema file of `dir` registered under its file name; `validate(file, value)` lists errors. */
function loadSchemaFolder(dir: string): (file: string, value: unknown) => string[] {
  const ajv = new Ajv04({ strict: false, allErrors: true, validateFormats: false });
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    ajv.addSchema(dropIds(JSON.parse(readFileSync(join(dir, f), 'utf8'))) as object, f);
  }
  return (file, value) => {
    const fn = ajv.getSchema(file);
    if (!fn) throw new Error(`schema ${file} did not compile`);
    if (fn(value)) return [];
    return (fn.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'invalid'}`);
  };
}

/**
 * Loads the image-spec schemas, or returns `{ missing }` naming the folder that is absent so the
 * caller can skip with that reason.
 */
export function loadImageSpecValidator(
  dir = join(specSchemasDir(), 'image-spec'),
): ImageSpecValidator | { missing: string } {
  if (!existsSync(join(dir, FILES.manifest)))
    return { missing: `OCI image-spec schemas not found in ${dir}` };
  const validate = loadSchemaFolder(dir);
  return { validate: (schema, value) => validate(FILES[schema], value) };
}

/** Validates a runtime `config.json`: returns its schema errors (empty when valid). */
export type RuntimeSpecValidate = (config: unknown) => string[];

/** The runtime-spec `config-schema.json` validator, or `{ missing }` when the folder is absent. */
export function loadRuntimeSpecValidator(
  dir = join(specSchemasDir(), 'runtime-spec'),
): RuntimeSpecValidate | { missing: string } {
  if (!existsSync(join(dir, 'config-schema.json')))
    return { missing: `runtime-spec schemas not found in ${dir}` };
  const validate = loadSchemaFolder(dir);
  return (config) => validate('config-schema.json', config);
}
