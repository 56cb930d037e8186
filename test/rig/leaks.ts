/**
 * Host leak detection: snapshot what tests can leave behind on the host, diff two snapshots, and
 * name what appeared. Used by setup-leak-check.ts around every test file, and callable directly.
 *
 * What a snapshot holds (each item keyed so a removed-and-recreated object counts as new):
 *   mounts    /proc/self/mountinfo (all mounts but a few harmless kinds; netns dirs themselves excluded)
 *   netns     names in /run/netns and registered netns dirs
 *   interface network interfaces in the host namespace (/sys/class/net): veths, bridges, macvlans
 *   process   conmon, runc, crun, docker-registry, skopeo, umoci, criu, slirp4netns processes, and any
 *             process whose command line names a rig temp dir, the perl helpers (a store or Libpod
 *             left open), and every process in another pid namespace (a container's) (scan of /proc)
 *   runc      container state dirs under /run/runc, /run/crun and registered --root dirs
 *   iptables  rules and chains from iptables-save / ip6tables-save (counters ignored)
 *   cni-ipam  IP reservations under /var/lib/cni/networks/<net>/ and registered IPAM dirs
 *   tempdir   os.tmpdir()/libpod-ts-test-* dirs (what makeTempDir creates)
 * Processes and temp dirs that provably belong to another Node program on the host (a second
 * developer's run) are left out; everything else relies on the host lock (host-lock.ts).
 * A full snapshot costs a few ms of /proc and sysfs reads plus iptables-save and ip6tables-save.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { readdir, readFile, realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TEMP_PREFIX, tempDirCreator } from './tmp.js';

const run = promisify(execFile);

export type LeakKind =
  | 'mount'
  | 'netns'
  | 'interface'
  | 'process'
  | 'runc'
  | 'iptables'
  | 'cni-ipam'
  | 'tempdir';
export const LEAK_KINDS: LeakKind[] = [
  'mount',
  'netns',
  'interface',
  'process',
  'runc',
  'iptables',
  'cni-ipam',
  'tempdir',
];

/**
 * kind -> (identity key -> human description), plus `foreign`: `<kind>|<key>` of processes and temp
 * dirs that provably belong to another Node program on this host (see ProcessTable.isForeign).
 */
export type HostSnapshot = Record<LeakKind, Map<string, string>> & { foreign: Set<string> };

export interface Leak {
  kind: LeakKind;
  description: string;
}

export type ExtraPathKind = 'runcRoot' | 'cniIpamDir' | 'netnsDir';

interface Registry {
  paths: Record<ExtraPathKind, Set<string>>;
  /** `<kind>|<key>` of entries that were already in a registered dir when it was registered. */
  preexisting: Set<string>;
}

// On globalThis so the setup file and test files share it even if the module is loaded twice.
const REG_KEY = Symbol.for('libpod-ts.test-rig.leak-check');
function registry(): Registry {
  const g = globalThis as unknown as Record<symbol, Registry | undefined>;
  g[REG_KEY] ??= {
    paths: { runcRoot: new Set(), cniIpamDir: new Set(), netnsDir: new Set() },
    preexisting: new Set(),
  };
  return g[REG_KEY];
}

export const DEFAULT_RUNC_ROOTS = ['/run/runc', '/run/crun'];
export const DEFAULT_CNI_IPAM_DIRS = ['/var/lib/cni/networks'];
export const DEFAULT_NETNS_DIRS = ['/run/netns'];

/**
 * Tells the leak check about a state dir the tests use besides the defaults: a runc `--root`, a
 * host-local IPAM `dataDir`, or a dir where network namespaces are bind-mounted. Entries already
 * there when registering are not reported by the current file's check.
 */
export function registerLeakCheckPath(kind: ExtraPathKind, path: string): void {
  const reg = registry();
  reg.paths[kind].add(path);
  let root = path;
  try {
    root = realpathSync(path);
  } catch {
    // not there yet: nothing pre-exists
  }
  for (const e of safeReaddirSync(root)) {
    if (kind === 'runcRoot') reg.preexisting.add(`runc|${join(root, e)}`);
    else if (kind === 'netnsDir') reg.preexisting.add(`netns|${join(root, e)}`);
    else for (const f of safeReaddirSync(join(root, e))) reg.preexisting.add(`cni-ipam|${join(root, e, f)}`);
  }
}

function safeReaddirSync(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const TRACKED_COMMS = new Set([
  'conmon',
  'runc',
  'crun',
  'docker-registry',
  'skopeo',
  'umoci',
  'criu',
  'slirp4netns',
  'netavark',
  'aardvark-dns',
  'catatonit',
]);
const IGNORED_FSTYPES = new Set(['autofs', 'binfmt_misc', 'rpc_pipefs', 'fusectl', 'tracefs', 'debugfs']);

const unescapeMount = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

async function readMounts(netnsDirs: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [pre, post] = line.split(' - ') as [string, string | undefined];
    const f = pre.split(' ');
    const [fstype, source] = (post ?? '').split(' ');
    const mountpoint = unescapeMount(f[4] ?? '');
    if (!fstype || IGNORED_FSTYPES.has(fstype)) continue;
    // `ip netns add` makes /run/netns a shared mount of itself once per boot; that is not a leak.
    if (netnsDirs.includes(mountpoint) && fstype !== 'nsfs') continue;
    out.set(`${f[0]}`, `${mountpoint} (${fstype} from ${unescapeMount(source ?? '?')})`);
  }
  return out;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

async function readNetns(dirs: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const d of dirs) for (const n of await listDir(d)) out.set(join(d, n), `${join(d, n)}`);
  return out;
}

function readInterfaces(): Map<string, string> {
  const out = new Map<string, string>();
  const base = '/sys/class/net';
  for (const name of safeReaddirSync(base)) {
    const attr = (a: string) => {
      try {
        return readFileSync(join(base, name, a), 'utf8').trim();
      } catch {
        return '';
      }
    };
    const ifindex = attr('ifindex');
    const iflink = attr('iflink');
    const devtype = /DEVTYPE=(\S+)/.exec(attr('uevent'))?.[1];
    // A veth's iflink is its peer's index; bridges and other kinds report DEVTYPE.
    const kind = devtype ?? (iflink !== ifindex ? 'veth (or other peer-linked device)' : 'device');
    out.set(`${ifindex}:${name}`, `interface ${name} (${kind}, ifindex ${ifindex})`);
  }
  return out;
}

const NODE_COMMS = new Set(['node', 'npm', 'npx', 'tsx', 'vitest']);

/**
 * pid -> (ppid, comm) of every process, read synchronously: ~100 tiny /proc files are several
 * times faster this way than through the thread pool, and the check must stay cheap.
 */
class ProcessTable {
  readonly procs = new Map<number, { ppid: number; comm: string; state: string; start: string }>();
  private readonly ours = new Set<number>();

  constructor() {
    for (const p of safeReaddirSync('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        const close = stat.lastIndexOf(')');
        const comm = stat.slice(stat.indexOf('(') + 1, close);
        // Fields after the parenthesised comm: state, ppid, …, starttime is the 20th.
        const rest = stat.slice(close + 2).split(' ');
        this.procs.set(Number(p), {
          ppid: Number(rest[1]),
          comm,
          state: rest[0] ?? '?',
          start: rest[19] ?? '?',
        });
      } catch {
        // exited while we looked
      }
    }
    for (let p = process.pid; p > 1 && !this.ours.has(p); p = this.procs.get(p)?.ppid ?? 0) this.ours.add(p);
  }

  private chain(pid: number): number[] {
    const out: number[] = [];
    for (let p = pid; p > 1 && out.length < 256; p = this.procs.get(p)?.ppid ?? 0) out.push(p);
    return out;
  }

  /**
   * True when `pid` is alive, not this process or its descendant, and runs under a Node program
   * that is not one of this process's ancestors: another developer's test run or script. Orphans
   * (reparented to init, like conmon) and dead creators are never foreign.
   */
  isForeign(pid: number): boolean {
    if (!this.procs.has(pid)) return false;
    const chain = this.chain(pid);
    if (chain.includes(process.pid)) return false;
    return chain.some((p) => !this.ours.has(p) && NODE_COMMS.has(this.procs.get(p)?.comm ?? ''));
  }
}

function pidNsOf(pid: number | 'self'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

function readProcesses(table: ProcessTable, foreign: Set<string>): Map<string, string> {
  const out = new Map<string, string>();
  // A process in another pid namespace is a container's, whatever its name: one that outlived
  // its conmon would otherwise go unnoticed.
  const ownPidNs = pidNsOf('self');
  for (const [pid, info] of table.procs) {
    if (pid === process.pid || info.state === 'Z') continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      continue;
    }
    const inContainer = ownPidNs !== undefined && pidNsOf(pid) !== ownPidNs;
    const tracked =
      TRACKED_COMMS.has(info.comm) ||
      cmdline.includes(`/${TEMP_PREFIX}`) ||
      // resident perl helpers: storage's mount(2) one (a store not closed), core's spawner (a Libpod not closed)
      /# libpod-ts (mount|spawn) helper/.test(cmdline);
    if (!inContainer && !tracked) continue;
    const key = `${pid}:${info.start}`;
    const where = inContainer ? ' (in another pid namespace: a container?)' : '';
    out.set(key, `pid ${pid} ${info.comm}${where}: ${cmdline.slice(0, 200)}`);
    if (table.isForeign(pid)) foreign.add(`process|${key}`);
  }
  return out;
}

async function readRuncState(roots: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const root of roots) {
    for (const id of await listDir(root)) out.set(join(root, id), `container ${id} in runtime root ${root}`);
  }
  return out;
}

const BUILTIN_CHAINS = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

async function readIptables(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await Promise.all(
    (['iptables-save', 'ip6tables-save'] as const).map(async (cmd) => {
      let stdout: string;
      try {
        ({ stdout } = await run(cmd, []));
      } catch {
        return;
      }
      const fam = cmd === 'iptables-save' ? 'ipv4' : 'ipv6';
      let table = '?';
      const seen = new Map<string, number>();
      for (const raw of stdout.split('\n')) {
        const line = raw.trim();
        if (line.startsWith('*')) table = line.slice(1);
        if (!line.startsWith('-A ') && !line.startsWith(':')) continue;
        // Built-in chains come with a table the plugins' first use creates (empty nat/filter
        // tables after a boot): harmless, and not something a test can own. Rules in them count.
        if (line.startsWith(':') && BUILTIN_CHAINS.has(line.slice(1).split(' ')[0]!)) continue;
        const norm = line.startsWith(':') ? `chain ${line.slice(1).split(' ')[0]}` : `rule ${line}`;
        const base = `${fam} ${table} ${norm}`;
        const n = (seen.get(base) ?? 0) + 1;
        seen.set(base, n);
        out.set(`${base}#${n}`, `${fam} table ${table}: ${norm}`);
      }
    }),
  );
  return out;
}

async function readCniIpam(dirs: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const dir of dirs) {
    for (const net of await listDir(dir)) {
      for (const f of await listDir(join(dir, net))) {
        if (f === 'lock' || f.startsWith('last_reserved_ip')) continue;
        out.set(join(dir, net, f), `IP ${f} reserved in ${join(dir, net)}`);
      }
    }
  }
  return out;
}

async function readTempDirs(table: ProcessTable, foreign: Set<string>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const base = tmpdir();
  for (const n of await listDir(base)) {
    if (!n.startsWith(TEMP_PREFIX)) continue;
    const path = join(base, n);
    out.set(path, path);
    const pid = tempDirCreator(n);
    if (pid !== undefined && table.isForeign(pid)) foreign.add(`tempdir|${path}`);
  }
  return out;
}

async function uniqueReal(paths: Iterable<string>): Promise<string[]> {
  const out = new Set<string>();
  for (const p of paths) out.add(await realpath(p).catch(() => p));
  return [...out];
}

/** Takes a snapshot of everything listed in the module comment. */
export async function snapshotHost(): Promise<HostSnapshot> {
  const reg = registry().paths;
  const netnsDirs = await uniqueReal([...DEFAULT_NETNS_DIRS, '/var/run/netns', ...reg.netnsDir]);
  const iptablesPending = readIptables();
  const iface = readInterfaces();
  const foreign = new Set<string>();
  const table = new ProcessTable();
  const proc = readProcesses(table, foreign);
  const [mount, netns, runc, iptables, ipam, tempdir] = await Promise.all([
    readMounts(netnsDirs),
    readNetns(netnsDirs),
    readRuncState(await uniqueReal([...DEFAULT_RUNC_ROOTS, ...reg.runcRoot])),
    iptablesPending,
    readCniIpam(await uniqueReal([...DEFAULT_CNI_IPAM_DIRS, ...reg.cniIpamDir])),
    readTempDirs(table, foreign),
  ]);
  return {
    mount,
    netns,
    interface: iface,
    process: proc,
    runc,
    iptables,
    'cni-ipam': ipam,
    tempdir,
    foreign,
  };
}

/** What is in `after` but not in `before`. */
export function diffSnapshots(before: HostSnapshot, after: HostSnapshot): Leak[] {
  const leaks: Leak[] = [];
  const pre = registry().preexisting;
  for (const kind of LEAK_KINDS) {
    for (const [key, description] of after[kind]) {
      const id = `${kind}|${key}`;
      if (!before[kind].has(key) && !pre.has(id) && !after.foreign.has(id)) leaks.push({ kind, description });
    }
  }
  return leaks;
}

/**
 * Snapshots again and diffs against `before`. Things still going away (a runc process exiting,
 * conmon finishing its exit command) get up to `settleMs` to disappear before they count.
 */
export async function findLeaks(before: HostSnapshot, settleMs = 1000): Promise<Leak[]> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const leaks = diffSnapshots(before, await snapshotHost());
    if (leaks.length === 0 || Date.now() >= deadline) return leaks;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One line per leak, grouped by kind. */
export function formatLeaks(leaks: Leak[]): string {
  return leaks.map((l) => `  ${l.kind}: ${l.description}`).join('\n');
}
