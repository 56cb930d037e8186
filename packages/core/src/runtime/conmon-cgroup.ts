import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * conmon's own cgroup, as podman places it with the cgroupfs manager: `<parent>/conmon` in every
 * cgroup v1 controller hierarchy (not `name=systemd`; in hybrid mode not the unified tree
 * either), or in the unified hierarchy on a cgroup v2 host. Without it conmon stays in the
 * calling program's cgroups: charged to its memory limit, and killed with them when whatever
 * runs the program (a CI job, a sandbox, an OOM kill of the group) tears that group down —
 * taking the record of the container's exit with it.
 */
export interface ConmonCgroup {
  /** The `cgroup.procs` files the pid is written to. */
  readonly procsFiles: readonly string[];
}

const made = new Map<string, ConmonCgroup | null>();

/** Where cgroup file systems are mounted: v1 hierarchies (by controller list) and the v2 one. */
function cgroupMounts(): { v1: { path: string; options: string[] }[]; v2?: string } {
  const out: { v1: { path: string; options: string[] }[]; v2?: string } = { v1: [] };
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fstype, , superOpts] = line.slice(sep + 3).split(' ');
    const mountPoint = line.split(' ')[4];
    if (!mountPoint) continue;
    if (fstype === 'cgroup2') out.v2 ??= mountPoint;
    else if (fstype === 'cgroup') out.v1.push({ path: mountPoint, options: (superOpts ?? '').split(',') });
  }
  return out;
}

/** A cpuset file of a new v1 cgroup starts empty (no task may join): copy the parent's. */
function inheritCpuset(dir: string): void {
  for (const f of ['cpuset.cpus', 'cpuset.mems']) {
    const own = join(dir, f);
    if (readFileSync(own, 'utf8').trim() !== '') continue;
    writeFileSync(own, readFileSync(join(dir, '..', f), 'utf8').trim());
  }
}

/**
 * Creates (once per process) `<parent>/conmon` in the hierarchies podman uses. `parent` is the
 * cgroup parent of the containers (`/libpod_parent`). null when there is nothing to use (no
 * cgroup file system, no permission): conmon then stays where it is, as before.
 */
export function conmonCgroup(parent: string): ConmonCgroup | null {
  const hit = made.get(parent);
  if (hit !== undefined) return hit;
  let result: ConmonCgroup | null = null;
  try {
    const mounts = cgroupMounts();
    const rel = join(parent, 'conmon');
    const dirs: string[] = [];
    const controllers = mounts.v1.filter(
      (m) => !m.options.some((o) => o.startsWith('name=')) && m.options.some((o) => CONTROLLERS.has(o)),
    );
    if (controllers.length > 0) {
      for (const m of controllers) {
        const dir = join(m.path, rel);
        // Parents first: a cpuset parent needs its cpus/mems before the child can inherit them.
        mkdirSync(join(m.path, parent), { recursive: true });
        mkdirSync(dir, { recursive: true });
        if (m.options.includes('cpuset')) {
          inheritCpuset(join(m.path, parent));
          inheritCpuset(dir);
        }
        dirs.push(dir);
      }
    } else if (mounts.v2) {
      const dir = join(mounts.v2, rel);
      mkdirSync(dir, { recursive: true });
      dirs.push(dir);
    }
    if (dirs.length > 0) result = { procsFiles: dirs.map((d) => join(d, 'cgroup.procs')) };
  } catch {
    result = null;
  }
  made.set(parent, result);
  return result;
}

const CONTROLLERS = new Set([
  'cpu',
  'cpuacct',
  'cpuset',
  'memory',
  'devices',
  'freezer',
  'blkio',
  'pids',
  'net_cls',
  'net_prio',
  'perf_event',
  'hugetlb',
  'rdma',
  'misc',
]);

/** Writes its own pid into each group given ($1 = how many), then execs the rest of its argv. */
const ENTER_AND_EXEC =
  'n=$1; shift; while [ "$n" -gt 0 ]; do { echo $$ > "$1"; } 2>/dev/null; shift; n=$((n-1)); done; exec "$@"';

/**
 * The command that starts conmon already in its cgroup: a shell that joins the groups and execs
 * conmon (same pid). Joining from the child, before conmon runs, matters twice: conmon forks
 * its monitor process early (a move of the first pid afterwards would miss it), and the first
 * write to a `cgroup.procs` after a quiet spell waits for an RCU grace period (~10 ms here,
 * measured; the kernel's cgroup_threadgroup_rwsem), which this thread must not wait for. Best
 * effort, like podman's warning: a group that cannot be joined is skipped. Without groups to
 * join: conmon itself.
 */
export function conmonCommand(
  parent: string | undefined,
  conmonPath: string,
  args: readonly string[],
): { file: string; args: string[] } {
  const cg = parent ? conmonCgroup(parent) : null;
  if (!cg) return { file: conmonPath, args: [...args] };
  return {
    file: '/bin/sh',
    args: [
      '-c',
      ENTER_AND_EXEC,
      'libpod-ts-conmon',
      String(cg.procsFiles.length),
      ...cg.procsFiles,
      conmonPath,
      ...args,
    ],
  };
}

/**
 * The cgroupfs parent of a container's cgroups path (`/libpod_parent/libpod-<id>` ->
 * `/libpod_parent`); undefined for a systemd `slice:prefix:name` path (podman then makes a
 * scope through systemd, which we do not) or a relative one.
 */
export function cgroupParentOf(cgroupsPath: string | undefined): string | undefined {
  if (!cgroupsPath?.startsWith('/') || cgroupsPath.includes(':')) return undefined;
  const parent = cgroupsPath.slice(0, cgroupsPath.lastIndexOf('/'));
  return parent === '' ? undefined : parent;
}
