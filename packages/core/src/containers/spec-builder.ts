import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DnsOptionsSchema, parseResolvConf, renderResolvConf } from '@libpod-ts/network';
import { InvalidOptionsError } from '../errors.js';
import { type CreateOptionsInput, specFromImage } from '../spec/index.js';
import type { SpecBuilder } from './manager.js';
import { joinedNetwork, sharedEtcFiles } from './netns-join.js';
import { envList, type ParsedCreateOptions } from './options.js';

/**
 * The default spec builder: the spec generator (`../spec`, Podman's defaults) fed with the
 * container's options. Writes the files Podman bind-mounts (/etc/hostname, /etc/hosts,
 * /etc/resolv.conf, /run/.containerenv) into `<root>/containers/<id>/userdata/`.
 * `options.spec` passes any further generator option (mounts, resources, capAdd...) through.
 */
export function specGeneratorBuilder(containerDir: (id: string) => string): SpecBuilder {
  return async (input) => {
    const o = input.options;
    const userdata = join(containerDir(input.id), 'userdata');
    // Inline calls (a few tiny files, tens of microseconds each): through the thread pool these
    // cost ~2 ms of `run` on a loaded 2-core host.
    mkdirSync(userdata, { recursive: true, mode: 0o700 });
    const joined = joinedNetwork(o.network);
    // container:<id> shares the target's hosts and resolv.conf (podman), when it has them.
    const shared = joined?.kind === 'container' ? sharedEtcFiles(containerDir(joined.target)) : undefined;
    const useShared = shared !== undefined && existsSync(shared.hosts) && existsSync(shared.resolvConf);
    const files = {
      hostname: join(userdata, 'hostname'),
      hosts: useShared ? shared.hosts : join(userdata, 'hosts'),
      resolvConf: useShared ? shared.resolvConf : join(userdata, 'resolv.conf'),
      containerEnv: join(userdata, '.containerenv'),
    };
    writeFileSync(files.hostname, `${input.hostname}\n`);
    // bridge containers: rewritten in place by the network package at init (own IPs, peers).
    if (!useShared) {
      writeFileSync(files.hosts, hostsFile(input.hostname, o.addHosts));
      writeFileSync(files.resolvConf, resolvConf(o));
    }
    writeFileSync(files.containerEnv, `engine="libpod-ts"\nid="${input.id}"\n`);
    const env: Record<string, string> = {};
    for (const e of envList(o.env)) {
      const eq = e.indexOf('=');
      env[e.slice(0, eq)] = e.slice(eq + 1);
    }
    const extra = (o.spec ?? {}) as CreateOptionsInput;
    const createOptions: CreateOptionsInput = {
      ...extra,
      ...(o.command ? { command: o.command } : {}),
      ...(o.entrypoint ? { entrypoint: o.entrypoint } : {}),
      ...(o.env ? { env: { ...(extra.env ?? {}), ...env } } : {}),
      ...(o.workingDir ? { workdir: o.workingDir } : {}),
      ...(o.user !== undefined ? { user: o.user } : {}),
      tty: o.tty,
      hostname: input.hostname,
      labels: { ...(extra.labels ?? {}), ...o.labels },
      annotations: { ...(extra.annotations ?? {}), ...o.annotations },
      ...(o.stopSignal !== undefined ? { stopSignal: o.stopSignal as never } : {}),
      readOnly: o.readOnly,
      containerId: input.id,
      cgroupsPath: input.cgroupsPath,
      etcFiles: files,
      ...(o.network === 'host' ? { namespaces: { ...(extra.namespaces ?? {}), network: 'host' } } : {}),
      // container:<id> gets its path at init (the target's namespace then).
      ...(joined?.kind === 'ns'
        ? { namespaces: { ...(extra.namespaces ?? {}), network: { path: joined.path } } }
        : {}),
    };
    const spec = await specFromImage(input.imageConfig as never, input.rootfs, createOptions);
    return spec as unknown as Record<string, unknown>;
  };
}

/** `name:ip` (podman --add-host): a host name, then an address; nothing that could add a line. */
const ADD_HOST_RE = /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,252}):([0-9a-fA-F:.]+)$/;

function hostsFile(hostname: string, addHosts: string[]): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost', `127.0.1.1\t${hostname}`];
  for (const [i, e] of addHosts.entries()) {
    const m = ADD_HOST_RE.exec(e);
    if (!m) {
      throw new InvalidOptionsError('container options', [
        { path: `addHosts.${i}`, message: 'must be "name:ip"' },
      ]);
    }
    lines.push(`${m[2]}\t${m[1]}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The host's resolv.conf with the container's dns options, by the network package's (podman's) rules. */
function resolvConf(o: ParsedCreateOptions): string {
  const parsed = DnsOptionsSchema.safeParse({ dns: o.dns, dnsSearch: o.dnsSearch, dnsOptions: o.dnsOptions });
  if (!parsed.success) {
    throw new InvalidOptionsError(
      'container options',
      parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
      parsed.error,
    );
  }
  let host = '';
  try {
    host = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {}
  return renderResolvConf(parseResolvConf(host), {
    ownNetns: o.network !== 'host',
    ipv6: false,
    ...parsed.data,
  });
}
