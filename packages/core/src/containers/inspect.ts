import type { Engine } from './engine.js';
import { dependenciesOf } from './netns-join.js';
import type { ContainerRecord } from './record.js';

/** Podman-like `inspect` output (the fields users rely on; names as Podman spells them). */
export interface ContainerInspect {
  Id: string;
  Created: string;
  Path: string;
  Args: string[];
  State: {
    OciVersion: string;
    Status: string;
    Running: boolean;
    Paused: boolean;
    Restarting: boolean;
    OOMKilled: boolean;
    Dead: boolean;
    Pid: number;
    ConmonPid: number;
    ExitCode: number;
    Error: string;
    StartedAt: string;
    FinishedAt: string;
  };
  Image: string;
  ImageName: string;
  Rootfs: string;
  ResolvConfPath: string;
  HostnamePath: string;
  HostsPath: string;
  LogPath: string;
  Name: string;
  RestartCount: number;
  Driver: string;
  OCIRuntime: string;
  ConmonPidFile: string;
  Mounts: { Type: string; Source: string; Destination: string; Options: string[]; RW: boolean }[];
  /** Full ids of the containers this one depends on (podman: the target of `container:<id>`). */
  Dependencies: string[];
  Config: {
    Hostname: string;
    User: string;
    Env: string[];
    Cmd: string[];
    Entrypoint: string[];
    WorkingDir: string;
    Labels: Record<string, string>;
    Annotations: Record<string, string>;
    StopSignal: string;
    StopTimeout: number;
    Tty: boolean;
    OpenStdin: boolean;
    Image: string;
  };
  HostConfig: {
    NetworkMode: string;
    RestartPolicy: { Name: string; MaximumRetryCount: number };
    AutoRemove: boolean;
    ReadonlyRootfs: boolean;
    CgroupParent: string;
  } & Record<string, unknown>;
  /** The address fields at the top level are the first network's (Podman's); empty when not running. */
  NetworkSettings: EndpointAddresses & {
    SandboxKey: string;
    /** `"<port>/<proto>"` -> bindings, as published (auto-chosen host ports resolved). */
    Ports: Record<string, { HostIp: string; HostPort: string }[]>;
    Networks: Record<string, NetworkEndpoint>;
  };
}

/** A container's addresses on one network, as podman's inspect names them. */
export interface EndpointAddresses {
  IPAddress: string;
  IPPrefixLen: number;
  Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  IPv6Gateway: string;
  MacAddress: string;
}

export interface NetworkEndpoint extends EndpointAddresses {
  NetworkID: string;
  Aliases: string[];
}

type NetStatus = NonNullable<NonNullable<ContainerRecord['network']>['status']>;

function endpoint(name: string, i: NetStatus['interfaces'][number] | undefined): NetworkEndpoint {
  const v4 = i?.addresses.find((a) => !a.includes(':'));
  const v6 = i?.addresses.find((a) => a.includes(':'));
  return {
    NetworkID: name,
    IPAddress: v4?.split('/')[0] ?? '',
    IPPrefixLen: v4 ? Number(v4.split('/')[1]) : 0,
    Gateway: i?.gateways.find((g) => !g.includes(':')) ?? '',
    GlobalIPv6Address: v6?.split('/')[0] ?? '',
    GlobalIPv6PrefixLen: v6 ? Number(v6.split('/')[1]) : 0,
    IPv6Gateway: i?.gateways.find((g) => g.includes(':')) ?? '',
    MacAddress: i?.mac ?? '',
    Aliases: i?.aliases ?? [],
  };
}

function networkSettings(r: ContainerRecord): ContainerInspect['NetworkSettings'] {
  const st = r.network?.status;
  const names = st?.interfaces.length
    ? st.interfaces.map((i) => i.network)
    : (r.network?.networks ?? []).map((n) => (typeof n === 'string' ? n : n.name));
  const networks = Object.fromEntries(
    names.map((n) => [
      n,
      endpoint(
        n,
        st?.interfaces.find((i) => i.network === n),
      ),
    ]),
  );
  const { NetworkID: _id, Aliases: _a, ...first } = endpoint('', st?.interfaces[0]);
  const ports: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of st?.ports ?? []) {
    const k = `${p.containerPort}/${p.protocol}`;
    ports[k] = [...(ports[k] ?? []), { HostIp: p.hostIp ?? '', HostPort: String(p.hostPort) }];
  }
  return { SandboxKey: st ? (r.network?.netnsPath ?? '') : '', ...first, Ports: ports, Networks: networks };
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Default mounts Podman leaves out of inspect's Mounts (they are not user mounts). */
const SYSTEM_DESTINATIONS = new Set([
  '/proc',
  '/dev',
  '/dev/pts',
  '/dev/shm',
  '/dev/mqueue',
  '/sys',
  '/sys/fs/cgroup',
]);

export async function inspectRecord(r: ContainerRecord, engine: Engine): Promise<ContainerInspect> {
  const spec = (await engine.store.readSpec(r.id).catch(() => ({}))) as {
    ociVersion?: string;
    process?: { args?: string[] };
    mounts?: { destination: string; type?: string; source?: string; options?: string[] }[];
    linux?: { cgroupsPath?: string };
  };
  const args = spec.process?.args ?? [...r.entrypoint, ...r.command];
  const mounts = (spec.mounts ?? [])
    .filter(
      (m) =>
        !SYSTEM_DESTINATIONS.has(m.destination) &&
        !['/etc/hosts', '/etc/hostname', '/etc/resolv.conf', '/run/.containerenv'].includes(m.destination),
    )
    .map((m) => ({
      Type:
        m.type === 'bind' || (m.options ?? []).includes('bind') || (m.options ?? []).includes('rbind')
          ? 'bind'
          : (m.type ?? 'bind'),
      Source: m.source ?? '',
      Destination: m.destination,
      Options: m.options ?? [],
      RW: !(m.options ?? []).includes('ro'),
    }));
  const s = r.state;
  const cgroupsPath = spec.linux?.cgroupsPath ?? '';
  return {
    Id: r.id,
    Created: r.created,
    Path: args[0] ?? '',
    Args: args.slice(1),
    State: {
      OciVersion: spec.ociVersion ?? '1.0.2-dev',
      Status: s.status,
      Running: s.status === 'running',
      Paused: s.status === 'paused',
      Restarting: false,
      OOMKilled: s.oomKilled,
      Dead: false,
      Pid: s.status === 'running' || s.status === 'paused' ? s.pid : 0,
      ConmonPid: s.conmonPid,
      ExitCode: s.exitCode,
      Error: s.error ?? '',
      StartedAt: s.startedAt ?? ZERO_TIME,
      FinishedAt: s.finishedAt ?? ZERO_TIME,
    },
    Image: r.imageId ?? '',
    ImageName: r.image ?? '',
    Rootfs: r.rootfsSource === 'directory' ? r.rootfs : '',
    ResolvConfPath: '',
    HostnamePath: '',
    HostsPath: '',
    LogPath: r.logPath,
    Name: r.name,
    RestartCount: s.restartCount,
    Driver: r.rootfsSource === 'storage' ? 'overlay' : '',
    OCIRuntime: r.runtime.slice(r.runtime.lastIndexOf('/') + 1),
    ConmonPidFile: `${engine.layout.bundle(r.id)}/conmon.pid`,
    Mounts: mounts,
    Dependencies: dependenciesOf(r),
    Config: {
      Hostname: r.hostname,
      User: r.user,
      Env: r.env,
      Cmd: r.command,
      Entrypoint: r.entrypoint,
      WorkingDir: r.workingDir,
      Labels: r.labels,
      Annotations: r.annotations,
      StopSignal: r.stopSignal,
      StopTimeout: r.stopTimeout,
      Tty: r.tty,
      OpenStdin: r.stdin,
      Image: r.image ?? '',
    },
    HostConfig: {
      ...r.hostConfig,
      NetworkMode: r.network?.mode ?? String(r.hostConfig.NetworkMode ?? 'none'),
      RestartPolicy: {
        Name: r.restartPolicy.name === 'no' ? '' : r.restartPolicy.name,
        MaximumRetryCount: r.restartPolicy.maxRetries,
      },
      AutoRemove: r.autoRemove,
      ReadonlyRootfs: r.readonlyRootfs,
      CgroupParent: cgroupsPath.slice(0, cgroupsPath.lastIndexOf('/')) || '/',
      PortBindings: portBindings(r),
    },
    NetworkSettings: networkSettings(r),
  };
}

/** HostConfig.PortBindings as requested (podman: HostPort "" when the engine chooses it). */
function portBindings(r: ContainerRecord): Record<string, { HostIp: string; HostPort: string }[]> {
  const out: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const raw of r.network?.ports ?? []) {
    const p = raw as {
      containerPort: number;
      hostPort?: number;
      hostIp?: string;
      protocol?: string;
      range?: number;
    };
    for (let i = 0; i < (p.range ?? 1); i++) {
      const k = `${p.containerPort + i}/${p.protocol ?? 'tcp'}`;
      const hostPort = p.hostPort ? String(p.hostPort + i) : '';
      out[k] = [...(out[k] ?? []), { HostIp: p.hostIp ?? '', HostPort: hostPort }];
    }
  }
  return out;
}
