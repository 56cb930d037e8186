/**
 * Seccomp profiles in the Docker/containers-common format (names + arch/capability conditions)
 * and their conversion to the OCI `linux.seccomp` that the runtime loads.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { SeccompProfileError } from '../../errors.js';
import type { LinuxSeccomp, SeccompSyscall } from '../types.js';

const ArgSchema = z.object({
  index: z.number().int().min(0).max(5),
  value: z.number().int().min(0),
  valueTwo: z.number().int().min(0).optional(),
  op: z.enum([
    'SCMP_CMP_NE',
    'SCMP_CMP_LT',
    'SCMP_CMP_LE',
    'SCMP_CMP_EQ',
    'SCMP_CMP_GE',
    'SCMP_CMP_GT',
    'SCMP_CMP_MASKED_EQ',
  ]),
});

const FilterSchema = z
  .object({
    caps: z.array(z.string()).nullish(),
    arches: z.array(z.string()).nullish(),
    minKernel: z.string().nullish(),
  })
  .loose();

const ActionSchema = z.enum([
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
  'SCMP_ACT_NOTIFY',
]);

/** A seccomp profile as Docker and containers/common write it (`seccomp.json`). */
export const DockerSeccompProfileSchema = z
  .object({
    defaultAction: ActionSchema,
    defaultErrnoRet: z.number().int().min(0).nullish(),
    architectures: z.array(z.string()).nullish(),
    archMap: z
      .array(z.object({ architecture: z.string(), subArchitectures: z.array(z.string()).nullish() }))
      .nullish(),
    flags: z.array(z.string()).nullish(),
    syscalls: z
      .array(
        z
          .object({
            names: z.array(z.string()).nullish(),
            name: z.string().nullish(),
            action: ActionSchema,
            errnoRet: z.number().int().min(0).nullish(),
            args: z.array(ArgSchema).nullish(),
            includes: FilterSchema.nullish(),
            excludes: FilterSchema.nullish(),
          })
          .loose(),
      )
      .nullish(),
  })
  .loose();
export type DockerSeccompProfile = z.input<typeof DockerSeccompProfileSchema>;

/** Node's `process.arch` to Go's GOARCH (the names profiles use in `arches`). */
const GOARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm: 'arm',
  arm64: 'arm64',
  ppc64: 'ppc64le',
  s390x: 's390x',
  mips: 'mips',
  mipsel: 'mipsle',
  riscv64: 'riscv64',
  loong64: 'loong64',
};

/** GOARCH to the libseccomp architecture token. */
const SCMP_ARCH: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64',
  '386': 'SCMP_ARCH_X86',
  arm: 'SCMP_ARCH_ARM',
  arm64: 'SCMP_ARCH_AARCH64',
  ppc64le: 'SCMP_ARCH_PPC64LE',
  s390x: 'SCMP_ARCH_S390X',
  mips: 'SCMP_ARCH_MIPS',
  mipsle: 'SCMP_ARCH_MIPSEL',
  riscv64: 'SCMP_ARCH_RISCV64',
  loong64: 'SCMP_ARCH_LOONGARCH64',
};

/** The host's architecture in GOARCH terms. */
export function hostGoArch(): string {
  return GOARCH[process.arch] ?? process.arch;
}

export interface SeccompForSpecOptions {
  /** The container's bounding capability set (`CAP_*` names): gates `caps` conditions. */
  capabilities: readonly string[];
  /** GOARCH of the container; default the host's. */
  arch?: string;
}

/**
 * Resolve a Docker-format profile for one architecture and capability set, as containers/common
 * does: a rule is kept when none of its `excludes` arches/caps apply and all of its `includes`
 * do. A profile already in OCI form (no includes/excludes, `architectures` set) passes through.
 * The result lists the native architecture and its sub-architectures from `archMap`.
 */
export function seccompForSpec(profile: DockerSeccompProfile, opts: SeccompForSpecOptions): LinuxSeccomp {
  const p = parseProfile(profile, 'profile');
  const arch = opts.arch ?? hostGoArch();
  const caps = new Set(opts.capabilities);
  const out: LinuxSeccomp = { defaultAction: p.defaultAction };
  if (p.defaultErrnoRet != null) out.defaultErrnoRet = p.defaultErrnoRet;

  let architectures: string[] = [];
  if (p.architectures && p.architectures.length > 0) architectures = [...p.architectures];
  else if (p.archMap) {
    const native = SCMP_ARCH[arch];
    for (const m of p.archMap) {
      if (m.architecture === native) architectures = [m.architecture, ...(m.subArchitectures ?? [])];
    }
    if (architectures.length === 0 && native) architectures = [native];
  }
  if (architectures.length > 0) out.architectures = architectures;
  if (p.flags && p.flags.length > 0) out.flags = [...p.flags];

  const syscalls: SeccompSyscall[] = [];
  for (const rule of p.syscalls ?? []) {
    const ex = rule.excludes;
    if (ex?.arches?.includes(arch)) continue;
    if (ex?.caps?.some((c) => caps.has(c))) continue;
    const inc = rule.includes;
    if (inc?.arches && inc.arches.length > 0 && !inc.arches.includes(arch)) continue;
    if (inc?.caps && inc.caps.length > 0 && !inc.caps.every((c) => caps.has(c))) continue;
    const names = rule.names && rule.names.length > 0 ? [...rule.names] : rule.name ? [rule.name] : [];
    if (names.length === 0) continue;
    const s: SeccompSyscall = { names, action: rule.action };
    if (rule.errnoRet != null) s.errnoRet = rule.errnoRet;
    if (rule.args && rule.args.length > 0) {
      s.args = rule.args.map((a) => {
        const arg: { index: number; value: number; valueTwo?: number; op: string } = {
          index: a.index,
          value: a.value,
          op: a.op,
        };
        if (a.valueTwo) arg.valueTwo = a.valueTwo;
        return arg;
      });
    }
    syscalls.push(s);
  }
  out.syscalls = syscalls;
  return out;
}

function parseProfile(profile: unknown, where: string) {
  const r = DockerSeccompProfileSchema.safeParse(profile);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new SeccompProfileError(
      where,
      `${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
      {
        cause: r.error,
      },
    );
  }
  return r.data;
}

/** Read and validate a profile file (Docker or OCI format); at most 4 MiB. */
export async function loadSeccompProfile(file: string, signal?: AbortSignal): Promise<DockerSeccompProfile> {
  let text: string;
  try {
    text = await readFile(file, { encoding: 'utf8', signal });
  } catch (err) {
    throw new SeccompProfileError(file, 'cannot read the file', { cause: err });
  }
  if (text.length > 4 << 20) throw new SeccompProfileError(file, 'larger than 4 MiB');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SeccompProfileError(file, 'not valid JSON', { cause: err });
  }
  return parseProfile(json, file);
}
