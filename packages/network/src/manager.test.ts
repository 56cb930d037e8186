import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { access, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from '@libpod-ts/test-rig';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AddressUnavailableError,
  CniPluginError,
  InvalidNetworkInputError,
  NetworkInUseError,
  NetworkManager,
  NetworkNotFoundError,
  NotAttachedError,
  PluginNotFoundError,
  PortInUseError,
} from './index.js';

const BUSYBOX = '/bin/busybox';

function why(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const bin of ['/usr/lib/cni/bridge', '/usr/lib/cni/host-local', '/usr/lib/cni/portmap', BUSYBOX]) {
    try {
      execFileSync('test', ['-x', bin]);
    } catch {
      return `${bin} missing`;
    }
  }
  try {
    execFileSync('iptables', ['-w', '-t', 'nat', '-S'], { stdio: 'ignore' });
  } catch {
    return 'iptables does not work here';
  }
  return undefined;
}
const skipReason = why();
if (skipReason) console.log(`skip network integration tests: ${skipReason}`);

/** What the tests may leave on the host: compared before/after each test. */
function hostState() {
  const ipt = ['iptables-save', 'ip6tables-save']
    .map((t) => execFileSync(t, { encoding: 'utf8' }))
    .join('\n')
    .split('\n')
    .filter((l) => l.includes('CNI-'))
    .sort();
  const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0])
    .filter((x): x is string => !!x)
    .sort();
  return { ipt, links };
}

const nftTables = (): string[] => {
  try {
    return execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

const sh = (args: string[]) =>
  execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
/** Runs a command in the netns with `hosts` as its /etc/hosts (private mount namespace). */
const inNs = (netns: string, cmd: string[], hosts?: string) =>
  hosts
    ? sh([
        'unshare',
        '-m',
        'sh',
        '-c',
        'mount --bind "$0" /etc/hosts && exec "$@"',
        hosts,
        'nsenter',
        `--net=${netns}`,
        ...cmd,
      ])
    : sh(['nsenter', `--net=${netns}`, ...cmd]);

describe.skipIf(!!skipReason)('NetworkManager with real CNI plugins', () => {
  let tmp: string;
  let net: NetworkManager;
  let before: ReturnType<typeof hostState>;
  const httpds: ChildProcess[] = [];
  const servers: Server[] = [];

  let tablesBefore: string[] = [];
  beforeAll(async () => {
    tmp = await makeTempDir('network');
    tablesBefore = nftTables();
  });
  afterAll(async () => {
    // A failed test may leave netns mounts under tmp; removing the dir would then hang.
    for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
      const mp = line.split(' ')[4];
      if (mp?.startsWith(`${tmp}/`)) execFileSync('umount', ['-l', mp]);
    }
    await removeTempDir(tmp);
    // The plugins create the kernel's ip6 nat/filter tables on first IPv6 use; once our chains
    // are gone those are empty. Delete the empty ones this file brought into being.
    for (const t of nftTables()) {
      if (tablesBefore.includes(t)) continue;
      const body = execFileSync('nft', ['list', ...t.split(' ')], { encoding: 'utf8' });
      const rules = body.split('\n').filter((l) => /^\t\t/.test(l) && !/^\t\ttype /.test(l));
      if (rules.length === 0) execFileSync('nft', ['delete', ...t.split(' ')]);
    }
  });

  let n = 0;
  const fresh = async () => {
    n++;
    const root = join(tmp, `s${n}`);
    net = new NetworkManager({
      root: join(root, 'root'),
      runRoot: join(root, 'run'),
      extraConfigDirs: [],
      defaultNetwork: { name: 'podman', subnet: '10.213.250.0/24', bridge: 'lpts-def0' },
    });
    before = hostState();
    return net;
  };

  const httpd = async (netns: string, port = 80) => {
    const www = join(tmp, `www-${httpds.length}`);
    await mkdir(www, { recursive: true });
    await writeFile(join(www, 'index.html'), `hello from ${netns}\n`);
    const p = spawn('nsenter', [`--net=${netns}`, BUSYBOX, 'httpd', '-f', '-p', String(port), '-h', www], {
      stdio: 'ignore',
    });
    httpds.push(p);
    for (let i = 0; i < 50; i++) {
      try {
        inNs(netns, ['timeout', '2', BUSYBOX, 'wget', '-q', '-O-', `http://127.0.0.1:${port}/`]);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    throw new Error('httpd did not start');
  };

  afterEach(async () => {
    for (const p of httpds.splice(0)) {
      p.kill('SIGKILL');
      await new Promise((r) => (p.exitCode !== null || p.signalCode ? r(null) : p.once('exit', r)));
    }
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
    await net.teardownAll();
    for (const info of await net.listNetworks())
      if (!info.readOnly) await net.removeNetwork(info.name, { force: true });
    // Nothing may be left: netns files, cache, IPAM allocations, chains, links.
    expect(await readdir(net.options.netnsDir).catch(() => [])).toEqual([]);
    expect(await readdir(join(net.options.stateDir, 'results')).catch(() => [])).toEqual([]);
    expect(await readdir(net.ipamDir).catch(() => [])).toEqual([]);
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    expect(mounts).not.toContain(net.options.netnsDir);
    expect(hostState()).toEqual(before);
  });

  it('two containers on a user network reach each other by IP and by name', async () => {
    await fresh();
    await net.createNetwork({
      name: 'lpts-pair',
      subnets: [{ subnet: '10.213.1.0/24' }],
      bridge: 'lpts-br1',
    });
    const ha = join(tmp, 'hosts-a');
    const hb = join(tmp, 'hosts-b');
    await writeFile(ha, '');
    await writeFile(hb, '');
    const a = await net.setup({
      containerId: 'ctr-a',
      name: 'alpha',
      networks: [{ name: 'lpts-pair' }],
      hosts: { path: ha },
    });
    const b = await net.setup({
      containerId: 'ctr-b',
      name: 'beta',
      networks: [{ name: 'lpts-pair', aliases: ['web'] }],
      hosts: { path: hb, hostname: 'beta-host' },
    });
    expect(a.ips[0]).toMatch(/^10\.213\.1\./);
    expect(b.ips[0]).not.toBe(a.ips[0]);
    // a's hosts file was rewritten in place when b joined.
    expect(await readFile(ha, 'utf8')).toContain(`${b.ips[0]}\tbeta web`);
    expect(await readFile(hb, 'utf8')).toContain(`${b.ips[0]}\tbeta-host beta web`);
    await httpd(b.netnsPath!);
    expect(inNs(a.netnsPath!, [BUSYBOX, 'ping', '-c1', '-W2', b.ips[0]!])).toContain('1 packets received');
    expect(inNs(a.netnsPath!, [BUSYBOX, 'ping', '-c1', '-W2', 'beta'], ha)).toContain('1 packets received');
    expect(inNs(a.netnsPath!, ['timeout', '3', BUSYBOX, 'wget', '-q', '-O-', 'http://web/'], ha)).toContain(
      'hello from',
    );
    await net.teardown('ctr-b');
    expect(await readFile(ha, 'utf8')).not.toContain('beta');
  });

  it('serves a port mapping to the host at 127.0.0.1, with a chosen free port and a fixed one', async () => {
    await fresh();
    await net.createNetwork({
      name: 'lpts-ports',
      subnets: [{ subnet: '10.213.2.0/24' }],
      bridge: 'lpts-br2',
    });
    const c = await net.setup({
      containerId: 'ctr-p',
      networks: [{ name: 'lpts-ports' }],
      portMappings: [{ containerPort: 80 }, { containerPort: 8080, hostIp: '127.0.0.1', range: 2 }],
    });
    expect(c.ports).toHaveLength(3);
    const [p80, p8080, p8081] = c.ports;
    expect(p80!.hostPort).toBeGreaterThan(0);
    expect(p8081!.hostPort).toBe(p8080!.hostPort + 1);
    await httpd(c.netnsPath!, 80);
    await httpd(c.netnsPath!, 8081);
    const get = (port: number) =>
      new Promise<string>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/', timeout: 3000 }, (res) => {
          let body = '';
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () => resolve(body));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
        req.end();
      });
    expect(await get(p80!.hostPort)).toContain('hello from');
    expect(await get(p8081!.hostPort)).toContain('hello from');
    // The same host port again: refused, nothing half-made left behind (afterEach checks).
    await expect(
      net.setup({
        containerId: 'ctr-p2',
        networks: [{ name: 'lpts-ports' }],
        portMappings: [{ containerPort: 80, hostPort: p80!.hostPort }],
      }),
    ).rejects.toBeInstanceOf(PortInUseError);
    // A port a host process holds.
    const s = createServer();
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const held = (s.address() as { port: number }).port;
    await expect(
      net.setup({
        containerId: 'ctr-p3',
        networks: [{ name: 'lpts-ports' }],
        portMappings: [{ containerPort: 80, hostPort: held, hostIp: '127.0.0.1' }],
      }),
    ).rejects.toMatchObject({ code: 'ERR_NETWORK_PORT_IN_USE', hostPort: held });
  });

  it('gives 20 concurrent attachments distinct addresses', async () => {
    await fresh();
    await net.createNetwork({
      name: 'lpts-many',
      subnets: [{ subnet: '10.213.3.0/24' }],
      bridge: 'lpts-br3',
    });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        net.setup({ containerId: `ctr-m${i}`, networks: [{ name: 'lpts-many' }] }),
      ),
    );
    const ips = results.map((r) => r.ips[0]);
    expect(new Set(ips).size).toBe(20);
    expect(ips.every((ip) => ip?.startsWith('10.213.3.'))).toBe(true);
    expect((await readdir(join(net.ipamDir, 'lpts-many'))).filter((f) => f.startsWith('10.')).length).toBe(
      20,
    );
    await Promise.all(results.map((_, i) => net.teardown(`ctr-m${i}`)));
  });

  it('an internal network has no route out and no masquerade', async () => {
    await fresh();
    await net.createNetwork({
      name: 'lpts-int',
      internal: true,
      subnets: [{ subnet: '10.213.4.0/24' }],
      bridge: 'lpts-br4',
    });
    const c = await net.setup({ containerId: 'ctr-i', networks: [{ name: 'lpts-int' }] });
    const routes = inNs(c.netnsPath!, ['ip', 'route']);
    expect(routes).not.toContain('default');
    expect(routes).toContain('10.213.4.0/24');
    const nat = execFileSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' });
    expect(nat).not.toContain(c.ips[0]);
  });

  it('static IP and MAC, dual stack, connect and disconnect', async () => {
    await fresh();
    await net.createNetwork({
      name: 'lpts-st',
      subnets: [{ subnet: '10.213.5.0/24' }, { subnet: 'fd00:213:5::/64' }],
      bridge: 'lpts-br5',
    });
    await net.createNetwork({ name: 'lpts-st2', subnets: [{ subnet: '10.213.6.0/24' }], bridge: 'lpts-br6' });
    const c = await net.setup({
      containerId: 'ctr-s',
      networks: [{ name: 'lpts-st', ip: '10.213.5.50', mac: '02:13:00:00:00:50' }],
    });
    expect(c.ips).toContain('10.213.5.50');
    expect(c.ips.some((ip) => ip.startsWith('fd00:213:5:'))).toBe(true);
    expect(inNs(c.netnsPath!, ['ip', 'link', 'show', 'eth0'])).toContain('02:13:00:00:00:50');
    await expect(
      net.setup({ containerId: 'ctr-s2', networks: [{ name: 'lpts-st', ip: '10.213.5.50' }] }),
    ).rejects.toBeInstanceOf(AddressUnavailableError);
    await expect(
      net.setup({ containerId: 'ctr-s3', networks: [{ name: 'lpts-st', ip: '10.213.99.1' }] }),
    ).rejects.toBeInstanceOf(AddressUnavailableError);
    const extra = await net.connect('ctr-s', { name: 'lpts-st2', aliases: ['second'] });
    expect(extra.ifName).toBe('eth1');
    expect(inNs(c.netnsPath!, ['ip', '-o', 'addr'])).toContain('10.213.6.');
    await expect(net.removeNetwork('lpts-st2')).rejects.toBeInstanceOf(NetworkInUseError);
    await net.disconnect('ctr-s', 'lpts-st2');
    expect(inNs(c.netnsPath!, ['ip', '-o', 'link'])).not.toContain('eth1');
    await expect(net.disconnect('ctr-s', 'lpts-st2')).rejects.toBeInstanceOf(NotAttachedError);
  });

  it('none, host and ns modes; resolv.conf drops loopback nameservers', async () => {
    await fresh();
    const resolv = join(tmp, 'resolv-host');
    await writeFile(resolv, 'nameserver 127.0.0.53\nnameserver 10.213.0.53\nsearch lpts.test\n');
    net = new NetworkManager({ ...net.options, hostResolvConf: resolv });
    const out = join(tmp, 'resolv-ctr');
    const none = await net.setup({ containerId: 'ctr-n', netns: { mode: 'none' }, resolvConfPath: out });
    expect(inNs(none.netnsPath!, ['ip', '-o', 'link'])).not.toContain('eth0');
    expect(inNs(none.netnsPath!, ['ip', '-o', 'link'])).toMatch(/lo: <LOOPBACK,UP/);
    expect(await readFile(out, 'utf8')).toBe('search lpts.test\nnameserver 10.213.0.53\n');
    const host = await net.setup({
      containerId: 'ctr-h',
      netns: { mode: 'host' },
      resolvConfPath: out,
      dns: { dnsOptions: ['ndots:1'] },
    });
    expect(host.netnsPath).toBeUndefined();
    expect(await readFile(out, 'utf8')).toContain('nameserver 127.0.0.53');
    const joined = await net.setup({
      containerId: 'ctr-j',
      netns: { mode: 'container', path: none.netnsPath! },
    });
    expect(joined.netnsPath).toBe(none.netnsPath);
    await net.teardown('ctr-j');
    // Joining does not own: the other container's netns survives.
    await access(none.netnsPath!);
  });

  it('bad input and missing plugins give typed errors and leave nothing', async () => {
    await fresh();
    await expect(
      net.setup({ containerId: 'ctr-x', networks: [{ name: 'lpts-nope' }] }),
    ).rejects.toBeInstanceOf(NetworkNotFoundError);
    await expect(
      net.setup({ containerId: '../x', networks: [{ name: 'lpts-nope' }] }),
    ).rejects.toBeInstanceOf(InvalidNetworkInputError);
    await expect(
      net.setup({ containerId: 'ctr-x', netns: { mode: 'host' }, portMappings: [{ containerPort: 1 }] }),
    ).rejects.toBeInstanceOf(InvalidNetworkInputError);
    // A conflist whose third plugin does not exist: ADD fails, the bridge's work is rolled back.
    await mkdir(net.options.configDir, { recursive: true });
    await writeFile(
      join(net.options.configDir, 'lpts-broken.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'lpts-broken',
        plugins: [
          {
            type: 'bridge',
            bridge: 'lpts-br7',
            isGateway: true,
            ipMasq: true,
            ipam: { type: 'host-local', ranges: [[{ subnet: '10.213.7.0/24' }]] },
          },
          { type: 'firewall' },
          { type: 'lpts-no-such-plugin' },
        ],
      }),
    );
    const err = await net
      .setup({ containerId: 'ctr-y', networks: [{ name: 'lpts-broken' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginNotFoundError);
    expect((err as Error).message).toContain('containernetworking-plugins');
    expect(execFileSync('iptables-save', { encoding: 'utf8' })).not.toContain('10.213.7.');
    expect(
      (await readdir(join(net.ipamDir, 'lpts-broken')).catch(() => [])).filter((f) => f.startsWith('10.')),
    ).toEqual([]);
    // A plugin that rejects its config answers with a CNI error object: code surfaced.
    await writeFile(
      join(net.options.configDir, 'lpts-badconf.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'lpts-badconf',
        plugins: [{ type: 'bridge', bridge: 'lpts-br8', ipam: { type: 'host-local', ranges: 'nope' } }],
      }),
    );
    const e2 = await net
      .setup({ containerId: 'ctr-z', networks: [{ name: 'lpts-badconf' }] })
      .catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(CniPluginError);
    expect((e2 as CniPluginError).plugin).toBe('bridge');
    expect(typeof (e2 as CniPluginError).cniCode).toBe('number');
  });

  it('macvlan on a veth parent, the default network, CHECK, and abort rolling back', async () => {
    await fresh();
    // A parent with no way out (the kernel here has no dummy driver): one end of a veth pair.
    execFileSync('ip', ['link', 'add', 'lpts-dum0', 'type', 'veth', 'peer', 'name', 'lpts-dum1']);
    try {
      execFileSync('ip', ['link', 'set', 'lpts-dum0', 'up']);
      execFileSync('ip', ['link', 'set', 'lpts-dum1', 'up']);
      await net.createNetwork({
        name: 'lpts-mv',
        driver: 'macvlan',
        parent: 'lpts-dum0',
        subnets: [{ subnet: '10.213.11.0/24' }],
      });
      const m1 = await net.setup({ containerId: 'ctr-mv1', networks: [{ name: 'lpts-mv' }] });
      const m2 = await net.setup({ containerId: 'ctr-mv2', networks: [{ name: 'lpts-mv' }] });
      expect(inNs(m1.netnsPath!, ['ip', '-d', 'link', 'show', 'eth0'])).toContain('macvlan');
      expect(inNs(m1.netnsPath!, [BUSYBOX, 'ping', '-c1', '-W2', m2.ips[0]!])).toContain(
        '1 packets received',
      );
      await net.check('ctr-mv1');
      expect((await net.teardown('ctr-mv1')).errors).toEqual([]);
      // The parent vanishes under a running container: macvlan's DEL fails ("Link not found"),
      // teardown still removes everything and reports the plugin error.
      execFileSync('ip', ['link', 'del', 'lpts-dum0']);
      const rep = await net.teardown('ctr-mv2');
      expect(rep.errors.length).toBeLessThanOrEqual(1);
      expect((await readdir(join(net.ipamDir, 'lpts-mv'))).filter((f) => f.startsWith('10.'))).toEqual([]);
      await net.removeNetwork('lpts-mv');
    } finally {
      if (execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).includes('lpts-dum0')) {
        execFileSync('ip', ['link', 'del', 'lpts-dum0']);
      }
    }
    // No networks given: the default network (configured for tests as 10.213.250.0/24).
    const d = await net.setup({ containerId: 'ctr-def' });
    expect(d.interfaces[0]!.network).toBe('podman');
    // A second setup of the same id is refused and does not tear the first one down.
    await expect(net.setup({ containerId: 'ctr-def' })).rejects.toBeInstanceOf(InvalidNetworkInputError);
    expect((await net.inspectAttachment('ctr-def'))?.networks[0]?.addresses[0]).toBe(`${d.ips[0]}/24`);
    expect(inNs(d.netnsPath!, ['ip', '-o', 'addr'])).toContain(d.ips[0]);
    expect(d.ips[0]).toMatch(/^10\.213\.250\./);
    expect((await net.inspectNetwork('podman')).networkInterface).toBe('lpts-def0');
    // Aborting during setup leaves nothing (afterEach checks the host).
    const ac = new AbortController();
    const p = net.setup({ containerId: 'ctr-abort', networks: [{ name: 'podman' }] }, ac.signal);
    setTimeout(() => ac.abort(), 30);
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (err) expect(await readdir(net.options.netnsDir)).toEqual(['ctr-def']);
    else await net.teardown('ctr-abort');
  });

  it('lists with filters, prunes unused networks, reports plugin status', async () => {
    await fresh();
    await net.createNetwork({
      name: 'lpts-l1',
      subnets: [{ subnet: '10.213.12.0/24' }],
      bridge: 'lpts-br12',
      labels: { team: 'a' },
    });
    await net.createNetwork({
      name: 'lpts-l2',
      subnets: [{ subnet: '10.213.13.0/24' }],
      bridge: 'lpts-br13',
    });
    expect((await net.listNetworks({ label: { team: 'a' } })).map((n) => n.name)).toEqual(['lpts-l1']);
    expect((await net.listNetworks()).map((n) => n.name).sort()).toEqual(['lpts-l1', 'lpts-l2', 'podman']);
    const st = await net.networkStatus('lpts-l1');
    expect(st.map((x) => x.plugin)).toEqual(['bridge', 'portmap', 'firewall', 'tuning']);
    expect(st.every((x) => x.status === 'unsupported' || x.status === 'ready')).toBe(true);
    await net.setup({ containerId: 'ctr-l', networks: [{ name: 'lpts-l1' }] });
    expect(await net.pruneNetworks()).toEqual(['lpts-l2']);
    expect((await net.listNetworks()).map((n) => n.name).sort()).toEqual(['lpts-l1', 'podman']);
    await net.removeNetwork('lpts-l1', { force: true });
    expect(await net.inspectAttachment('ctr-l')).toMatchObject({ networks: [] });
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain('lpts-br12');
  });

  it('detach and cleanup work from a fresh process after a crash', async () => {
    await fresh();
    await net.createNetwork({
      name: 'lpts-crash',
      subnets: [{ subnet: '10.213.9.0/24' }],
      bridge: 'lpts-br9',
    });
    const script = join(tmp, 'crash.mts');
    const src = new URL('./index.ts', import.meta.url).pathname;
    await writeFile(
      script,
      `import { NetworkManager } from ${JSON.stringify(src)};
const net = new NetworkManager(JSON.parse(process.argv[2]));
await net.setup({ containerId: 'ctr-c1', networks: [{ name: 'lpts-crash' }], portMappings: [{ containerPort: 80 }] });
await net.setup({ containerId: 'ctr-c2', networks: [{ name: 'lpts-crash' }] });
process.kill(process.pid, 'SIGKILL');
`,
    );
    const tsx = join(new URL('../../../node_modules/.bin/tsx', import.meta.url).pathname);
    try {
      execFileSync(tsx, [script, JSON.stringify(net.options)], { stdio: 'pipe' });
    } catch {
      // killed on purpose
    }
    // A new manager (as a new process would) sees both attachments.
    const later = new NetworkManager(net.options);
    expect((await later.networkUsers('lpts-crash')).sort()).toEqual(['ctr-c1', 'ctr-c2']);
    expect(await later.detach('ctr-c1')).toBe(true);
    const report = await later.cleanupStale({ isAlive: (id) => id !== 'ctr-c2' });
    expect(report.containers).toEqual(['ctr-c2']);
    await later.teardown('ctr-c1');
  });
});
