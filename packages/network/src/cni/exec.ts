import { CniPluginError, CniResultError, PluginNotFoundError } from '../errors.js';
import { run } from '../util/exec.js';
import { findPlugin } from './plugins.js';
import {
  type CniCommand,
  CniErrorSchema,
  type CniResult,
  CniResultSchema,
  type CniVersionResult,
  CniVersionResultSchema,
  type RuntimeConf,
} from './types.js';

export interface InvokeOptions {
  command: CniCommand;
  /** The plugin's stdin config (already carrying name, cniVersion, runtimeConfig, prevResult). */
  config: Record<string, unknown>;
  rt: RuntimeConf;
  network: string;
  pluginDirs: readonly string[];
  signal?: AbortSignal | undefined;
}

/** CNI_ARGS wire form: "K1=V1;K2=V2". Keys/values may not carry ';' or '='. */
export function formatCniArgs(args: [string, string][]): string {
  return args.map(([k, v]) => `${k}=${v}`).join(';');
}

/**
 * Executes one plugin per the CNI spec: CNI_* environment, config on stdin, result or error
 * object on stdout. Exit 0 with ADD must print a result; DEL/CHECK may print nothing.
 * A non-zero exit becomes CniPluginError carrying the spec code from the error object.
 */
export async function invokePlugin(o: InvokeOptions): Promise<CniResult | undefined> {
  const type = String(o.config.type);
  const bin = await findPlugin(type, o.pluginDirs);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: o.command,
    CNI_CONTAINERID: o.rt.containerId,
    CNI_NETNS: o.rt.netns,
    CNI_IFNAME: o.rt.ifName,
    CNI_ARGS: formatCniArgs(o.rt.args),
    CNI_PATH: o.pluginDirs.join(':'),
  };
  let r: Awaited<ReturnType<typeof run>>;
  try {
    r = await run(bin, [], { input: JSON.stringify(o.config), env, signal: o.signal });
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT')
      throw new PluginNotFoundError(type, [...o.pluginDirs]);
    throw cause;
  }
  const out = r.stdout.trim();
  if (r.code !== 0) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(out);
    } catch {
      parsed = undefined;
    }
    const e = CniErrorSchema.safeParse(parsed);
    throw new CniPluginError({
      plugin: type,
      command: o.command,
      network: o.network,
      cniCode: e.success ? e.data.code : undefined,
      msg: e.success ? e.data.msg : (r.stderr.trim() || out || `exit status ${r.code}`).slice(0, 2000),
      details: e.success ? e.data.details : undefined,
      stderr: r.stderr,
    });
  }
  if (o.command !== 'ADD') return undefined;
  let json: unknown;
  try {
    json = JSON.parse(out);
  } catch (cause) {
    throw new CniResultError(type, `not JSON: ${out.slice(0, 200)}`, { cause });
  }
  const res = CniResultSchema.safeParse(json);
  if (!res.success)
    throw new CniResultError(type, res.error.issues[0]?.message ?? 'invalid', { cause: res.error });
  return res.data;
}

/** CNI_COMMAND=VERSION: which spec versions the plugin speaks. */
export async function pluginVersion(
  type: string,
  pluginDirs: readonly string[],
  signal?: AbortSignal,
): Promise<CniVersionResult> {
  const bin = await findPlugin(type, pluginDirs);
  const r = await run(bin, [], {
    input: JSON.stringify({ cniVersion: '1.0.0' }),
    env: { PATH: process.env.PATH, CNI_COMMAND: 'VERSION' },
    signal,
  });
  if (r.code !== 0) {
    throw new CniPluginError({ plugin: type, command: 'VERSION', network: '', msg: r.stdout || r.stderr });
  }
  const v = CniVersionResultSchema.safeParse(JSON.parse(r.stdout));
  if (!v.success) throw new CniResultError(type, 'bad VERSION answer', { cause: v.error });
  return v.data;
}
