import { statSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import {
  InvalidConfigListError,
  InvalidNetworkInputError,
  NetworkExistsError,
  NetworkNotFoundError,
  NetworkReadOnlyError,
  SubnetOverlapError,
} from '../errors.js';
import { hostLinks } from '../host/links.js';
import { hostRoutes } from '../host/routes.js';
import {
  type Cidr,
  contains,
  formatCidr,
  formatIp,
  nthAddress,
  overlaps,
  parseCidr,
  parseIp,
} from '../ip/cidr.js';
import { isEnoent, writeAtomic } from '../util/fs.js';
import { withFileLock } from '../util/lock.js';
import {
  buildConfList,
  confListSubnets,
  describeConfList,
  type ResolvedSubnet,
  rangeBounds,
} from './conflist.js';
import {
  type ConfList,
  ConfListSchema,
  type CreateNetworkOptions,
  CreateNetworkOptionsSchema,
  type NetworkInfo,
} from './schema.js';

export interface DefaultNetworkSpec {
  name: string;
  subnet: string;
  bridge: string;
}

export interface ConfigStoreOptions {
  /** Where this library writes conflists. */
  configDir: string;
  /** Read-only sources (e.g. /etc/cni/net.d), after configDir in precedence. */
  extraConfigDirs: string[];
  defaultNetwork: DefaultNetworkSpec;
}

export interface LoadedNetwork {
  info: NetworkInfo;
  conf: ConfList;
  /** The exact bytes on disk: what the result cache records. */
  raw: string;
}

const CONF_EXT = /\.(conflist|conf|json)$/;

/** Maps the first zod issue to a typed input error naming the field. */
export function inputError(err: z.ZodError, prefix = ''): InvalidNetworkInputError {
  const issue = err.issues[0];
  const field = [prefix, ...(issue?.path ?? []).map(String)].filter(Boolean).join('.') || 'options';
  return new InvalidNetworkInputError(field, issue?.message ?? 'invalid', { cause: err });
}

/**
 * Network definitions on disk: one conflist per network in `configDir` (written atomically, under
 * an inter-process lock so two creators cannot both take a name or a subnet), plus read-only
 * definitions from `extraConfigDirs`. configDir wins on a name clash.
 */
export class ConfigStore {
  readonly #o: ConfigStoreOptions;

  constructor(o: ConfigStoreOptions) {
    this.#o = o;
  }

  get configDir(): string {
    return this.#o.configDir;
  }

  readonly #parsed = new Map<string, { key: string; loaded: LoadedNetwork }>();

  async #loadDir(dir: string, readOnly: boolean): Promise<LoadedNetwork[]> {
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => CONF_EXT.test(n)).sort();
    } catch (e) {
      if (isEnoent(e)) return [];
      throw e;
    }
    const out: LoadedNetwork[] = [];
    for (const n of names) {
      const file = join(dir, n);
      // Parsed files are reused while unchanged (inode, size, mtime): a setup reads the
      // definitions two or three times, and a parse (JSON + zod) costs ~1 ms per network.
      const st = statSync(file, { throwIfNoEntry: false });
      const key = st ? `${st.ino}:${st.size}:${st.mtimeMs}:${readOnly}` : '';
      const hit = this.#parsed.get(file);
      if (st && hit?.key === key) {
        out.push(hit.loaded);
        continue;
      }
      try {
        const loaded = await loadConfFile(file, readOnly);
        if (st) this.#parsed.set(file, { key, loaded });
        out.push(loaded);
      } catch (e) {
        // A broken or foreign file must not hide every other network; get() reports it by name.
        if (!(e instanceof InvalidConfigListError) && !isEnoent(e)) throw e;
      }
    }
    return out;
  }

  /** All networks, configDir first; names are unique in the answer. */
  async loadAll(): Promise<LoadedNetwork[]> {
    const seen = new Set<string>();
    const out: LoadedNetwork[] = [];
    const sources: [string, boolean][] = [
      [this.#o.configDir, false],
      ...this.#o.extraConfigDirs.map((d) => [d, true] as [string, boolean]),
    ];
    for (const [dir, ro] of sources) {
      for (const n of await this.#loadDir(dir, ro)) {
        if (seen.has(n.conf.name)) continue;
        seen.add(n.conf.name);
        out.push(n);
      }
    }
    return out;
  }

  async get(name: string): Promise<LoadedNetwork> {
    const found = (await this.loadAll()).find((n) => n.conf.name === name);
    if (!found) {
      if (name === this.#o.defaultNetwork.name) return this.ensureDefault();
      throw new NetworkNotFoundError(name);
    }
    return found;
  }

  /** The default network, written to configDir the first time it is needed. */
  async ensureDefault(): Promise<LoadedNetwork> {
    const d = this.#o.defaultNetwork;
    const existing = (await this.loadAll()).find((n) => n.conf.name === d.name);
    if (existing) return existing;
    try {
      // podman's default network has DNS off.
      await this.create(
        { name: d.name, subnets: [{ subnet: d.subnet }], bridge: d.bridge, dns: false },
        true,
      );
    } catch (e) {
      if (!(e instanceof NetworkExistsError)) throw e;
    }
    return this.get(d.name);
  }

  #lockPath(): string {
    return join(this.#o.configDir, '.libpod-ts-networks.lock');
  }

  async create(input: CreateNetworkOptions, allowDefaultName = false): Promise<LoadedNetwork> {
    const parsed = CreateNetworkOptionsSchema.safeParse(input);
    if (!parsed.success) throw inputError(parsed.error);
    const o = parsed.data;
    if (o.driver === 'macvlan') {
      if (!o.parent) throw new InvalidNetworkInputError('parent', 'macvlan needs a parent interface');
      if (!(await hostLinks()).has(o.parent)) {
        throw new InvalidNetworkInputError('parent', `host interface ${o.parent} does not exist`);
      }
    }
    if (o.driver === 'bridge' && o.parent) throw new InvalidNetworkInputError('parent', 'only for macvlan');
    if (o.driver === 'macvlan' && o.bridge) throw new InvalidNetworkInputError('bridge', 'only for bridge');
    if (!allowDefaultName && o.name === this.#o.defaultNetwork.name) {
      throw new NetworkExistsError(o.name);
    }

    const explicit: ResolvedSubnet[] = o.subnets.map((s, i) => resolveSubnet(s, i, o.internal));
    const wantsV6 = o.ipv6 || explicit.some((s) => s.subnet.family === 6);
    for (let i = 0; i < explicit.length; i++) {
      for (let j = 0; j < i; j++) {
        if (overlaps(explicit[i]!.subnet, explicit[j]!.subnet)) {
          throw new SubnetOverlapError(
            formatCidr(explicit[i]!.subnet),
            `subnet ${formatCidr(explicit[j]!.subnet)} of the same request`,
          );
        }
      }
    }

    await mkdir(this.#o.configDir, { recursive: true });
    return withFileLock(this.#lockPath(), async () => {
      const all = await this.loadAll();
      if (all.some((n) => n.conf.name === o.name)) throw new NetworkExistsError(o.name);
      const used: { cidr: Cidr; what: string }[] = [];
      const bridges = new Set<string>();
      for (const n of all) {
        for (const c of confListSubnets(n.conf))
          used.push({ cidr: c, what: `network ${JSON.stringify(n.conf.name)} (${formatCidr(c)})` });
        if (n.info.networkInterface && n.info.driver === 'bridge') bridges.add(n.info.networkInterface);
      }
      for (const r of await hostRoutes()) {
        // A known network's bridge route is that network itself, already checked by name above.
        if (bridges.has(r.dev)) continue;
        used.push({ cidr: r.route, what: `host route ${formatCidr(r.route)} dev ${r.dev}` });
      }
      for (const s of explicit) {
        const hit = used.find((u) => overlaps(u.cidr, s.subnet));
        if (hit) throw new SubnetOverlapError(formatCidr(s.subnet), hit.what);
      }
      const subnets = [...explicit];
      const isFree = (c: Cidr) => !used.some((u) => overlaps(u.cidr, c));
      if (!subnets.some((s) => s.subnet.family === 4) && !(wantsV6 && explicit.length)) {
        const c = freeSubnet(4, isFree);
        subnets.unshift({ subnet: c, gateway: o.internal ? undefined : formatIp(nthAddress(c, 1)) });
      }
      if (wantsV6 && !subnets.some((s) => s.subnet.family === 6)) {
        const c = freeSubnet(6, isFree);
        subnets.push({ subnet: c, gateway: o.internal ? undefined : formatIp(nthAddress(c, 1)) });
      }

      let bridge = o.bridge;
      const links = await hostLinks();
      if (o.driver === 'bridge') {
        if (bridge && bridges.has(bridge)) throw new NetworkExistsError(bridge, 'bridge interface');
        if (bridge && links.has(bridge) && !allowDefaultName)
          throw new NetworkExistsError(bridge, 'host interface');
        if (!bridge) {
          for (let i = 1; ; i++) {
            if (!bridges.has(`cni-podman${i}`) && !links.has(`cni-podman${i}`)) {
              bridge = `cni-podman${i}`;
              break;
            }
          }
        }
      }
      const conf = buildConfList({
        name: o.name,
        driver: o.driver,
        subnets,
        internal: o.internal,
        mtu: o.mtu,
        labels: o.labels,
        dns: o.dns,
        bridge,
        parent: o.parent,
        macvlanMode: o.macvlanMode,
      });
      const file = join(this.#o.configDir, `${o.name}.conflist`);
      await writeAtomic(file, `${JSON.stringify(conf, null, 3)}\n`);
      return loadConfFile(file, false);
    });
  }

  /** Deletes a definition from configDir. */
  async remove(name: string): Promise<LoadedNetwork> {
    return withFileLock(this.#lockPath(), async () => {
      const n = (await this.loadAll()).find((x) => x.conf.name === name);
      if (!n) throw new NetworkNotFoundError(name);
      if (n.info.readOnly) throw new NetworkReadOnlyError(name, n.info.file);
      await rm(n.info.file, { force: true });
      return n;
    });
  }
}

export async function loadConfFile(file: string, readOnly: boolean): Promise<LoadedNetwork> {
  const raw = await readFile(file, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (cause) {
    throw new InvalidConfigListError(file, 'not JSON', { cause });
  }
  // A single-plugin .conf is the list of that one plugin.
  if (json && typeof json === 'object' && !('plugins' in json) && 'type' in json) {
    const { cniVersion, name, ...plugin } = json as Record<string, unknown>;
    json = { cniVersion, name, plugins: [plugin] };
  }
  const r = ConfListSchema.safeParse(json);
  if (!r.success)
    throw new InvalidConfigListError(file, r.error.issues[0]?.message ?? 'invalid', { cause: r.error });
  const st = await stat(file);
  const loaded = {
    conf: r.data,
    raw,
    info: describeConfList(r.data, {
      file,
      created: st.birthtime.getTime() ? st.birthtime : st.mtime,
      readOnly,
    }),
  };
  // Report the file as written (key order included), not the schema's normalised copy.
  loaded.info.conflist = json as Record<string, unknown>;
  return loaded;
}

function resolveSubnet(
  s: { subnet: string; gateway?: string | undefined; range?: string | undefined },
  i: number,
  internal: boolean,
): ResolvedSubnet {
  const subnet = parseCidr(s.subnet, true);
  if (!subnet) {
    throw new InvalidNetworkInputError(
      `subnets.${i}.subnet`,
      `${JSON.stringify(s.subnet)} is not a subnet in CIDR form with host bits zero`,
    );
  }
  const maxPrefix = subnet.family === 4 ? 30 : 126;
  if (subnet.prefix > maxPrefix || subnet.prefix < (subnet.family === 4 ? 8 : 8)) {
    throw new InvalidNetworkInputError(
      `subnets.${i}.subnet`,
      `${s.subnet}: prefix length must be 8..${maxPrefix}`,
    );
  }
  const out: ResolvedSubnet = { subnet };
  if (s.gateway !== undefined) {
    const gw = parseIp(s.gateway);
    if (!gw || !contains(subnet, gw) || gw.value === subnet.network) {
      throw new InvalidNetworkInputError(
        `subnets.${i}.gateway`,
        `${JSON.stringify(s.gateway)} is not a host address in ${s.subnet}`,
      );
    }
    out.gateway = formatIp(gw);
  } else if (!internal) {
    out.gateway = formatIp(nthAddress(subnet, 1));
  }
  if (s.range !== undefined) {
    const r = parseCidr(s.range, false);
    if (!r || r.family !== subnet.family || !overlaps(r, subnet) || r.prefix < subnet.prefix) {
      throw new InvalidNetworkInputError(
        `subnets.${i}.range`,
        `${JSON.stringify(s.range)} is not a CIDR inside ${s.subnet}`,
      );
    }
    const b = rangeBounds(r);
    out.rangeStart = b.start;
    out.rangeEnd = b.end;
  }
  return out;
}

function freeSubnet(family: 4 | 6, isFree: (c: Cidr) => boolean): Cidr {
  for (let n = 0; n < 256; n++) {
    const c: Cidr =
      family === 4
        ? { family, network: (10n << 24n) | (89n << 16n) | (BigInt(n) << 8n), prefix: 24 }
        : { family, network: (0xfd00n << 112n) | (BigInt(n) << 64n), prefix: 64 };
    if (isFree(c)) return c;
  }
  throw new InvalidNetworkInputError(
    'subnets',
    `no free ${family === 4 ? '10.89.x.0/24' : 'fd00::x:0:0:0:0/64'} subnet left`,
  );
}
