import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';

/**
 * A program started by the spawner: its fds 2 and 3 are read through these streams (they keep
 * what arrives, and the end, until read; destroying one closes its socket), fd 4 is written
 * through this socket.
 */
export interface SpawnedProcess {
  pid: number;
  stderr: Readable;
  fd3: Readable;
  fd4: Socket;
}

/**
 * The helper: per request it reads NUL-terminated fields (token, cwd, env count, env entries,
 * argv count, argv), forks, and in the child starts a session, connects three sockets to our
 * listening Unix socket (each first says `<token> <fd>`), puts them on fds 2, 3 and 4, and execs.
 * The parent answers `<token> <pid>` (or `<token> -1 <why>`). Children are reaped by ignoring
 * SIGCHLD: nobody needs their status (conmon reports through fd 3).
 */
const HELPER = String.raw`# libpod-ts spawn helper
use strict;
use Socket;
use POSIX ();
$| = 1;
$/ = "\0";
$SIG{CHLD} = 'IGNORE';
my $addr = pack_sockaddr_un($ARGV[0]);
sub field { my $x = <STDIN>; exit 0 unless defined $x; chomp $x; return $x; }
while (1) {
  my $token = field();
  my $cwd = field();
  my %env;
  for (1 .. field()) { my $kv = field(); my $i = index($kv, '='); $env{substr($kv, 0, $i)} = substr($kv, $i + 1); }
  my @argv;
  push @argv, field() for 1 .. field();
  my $pid = fork();
  if (!defined $pid) { print "$token -1 fork: $!\n"; next; }
  if ($pid == 0) {
    $SIG{CHLD} = 'DEFAULT';
    POSIX::setsid();
    my @keep;
    for my $fd (2, 3, 4) {
      socket(my $s, AF_UNIX, SOCK_STREAM, 0) or POSIX::_exit(126);
      connect($s, $addr) or POSIX::_exit(126);
      syswrite($s, "$token $fd\n");
      POSIX::dup2(fileno($s), $fd) or POSIX::_exit(126);
      push @keep, $s;
    }
    open(STDIN, '<', '/dev/null');
    open(STDOUT, '>', '/dev/null');
    if (!chdir $cwd) { syswrite(STDERR, "chdir $cwd: $!\n"); POSIX::_exit(126); }
    %ENV = %env;
    exec { $argv[0] } @argv;
    syswrite(STDERR, "exec $argv[0]: $!\n");
    POSIX::_exit(127);
  }
  print "$token $pid\n";
}
`;

const CONNECT_TIMEOUT_MS = 5000;

/** SIGKILL to the program's session (the spawner starts each in its own). */
export function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
}

interface Pending {
  resolve(p: SpawnedProcess): void;
  reject(err: Error): void;
  pid?: number;
  sockets: Map<number, Socket>;
  readers: Map<number, Readable>;
}

/**
 * Starts long-lived programs (conmon) without forking this process. A spawn from Node forks the
 * whole address space and blocks the event loop until the child has exec'd (4-8 ms for conmon
 * from a ~180 MiB program, measured); a resident perl (Debian's perl-base is Essential) forks in
 * well under a millisecond. The program's fds 2-4 are Unix stream sockets to us, which it
 * reads and writes as it would pipes (conmon: stderr, sync pipe, start pipe). Unavailable (no
 * perl, or it cannot start): `spawn` returns undefined and the caller spawns directly.
 */
export class ProcessSpawner {
  private helper: ChildProcess | undefined;
  private server: Server | undefined;
  private readonly socketPath: string;
  private readonly pending = new Map<string, Pending>();
  private buffered = '';
  private broken: boolean;
  private starting: Promise<boolean> | undefined;

  constructor(
    /** Where its listening socket goes (`<runRoot>/spawn`); stale sockets of dead programs are removed. */
    private readonly dir: string,
    private readonly perl = '/usr/bin/perl',
  ) {
    this.socketPath = join(dir, `${process.pid}-${randomBytes(6).toString('hex')}.sock`);
    // sockaddr_un holds 107 bytes of path: a longer runRoot spawns directly.
    this.broken = !existsSync(perl) || Buffer.byteLength(this.socketPath) > 107;
  }

  /** False once it is known not to work here (no perl, or it could not start), or after close(). */
  get usable(): boolean {
    return !this.broken;
  }

  /** Starts `argv` in `cwd` with exactly `env`; undefined when the spawner cannot be used here. */
  async spawn(
    argv: readonly string[],
    env: NodeJS.ProcessEnv,
    cwd = '/',
  ): Promise<SpawnedProcess | undefined> {
    const envEntries = Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
    if (this.broken || [cwd, ...envEntries, ...argv].some((f) => f.includes('\0'))) return undefined;
    if (!(await this.start())) return undefined;
    const helper = this.helper!;
    const token = randomBytes(16).toString('hex');
    const request = [token, cwd, String(envEntries.length), ...envEntries, String(argv.length), ...argv];
    const done = new Promise<SpawnedProcess>((resolve, reject) => {
      // A child that could not connect its sockets exits: its pid comes, its sockets never do.
      const timer = setTimeout(() => {
        const p = this.pending.get(token);
        if (!p) return;
        this.pending.delete(token);
        for (const s of p.sockets.values()) s.destroy();
        if (p.pid) killGroup(p.pid);
        reject(new Error('the spawned program did not connect its descriptors'));
      }, CONNECT_TIMEOUT_MS);
      timer.unref();
      this.pending.set(token, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
        sockets: new Map(),
        readers: new Map(),
      });
    });
    this.setRef(true);
    helper.stdin!.write(request.map((f) => `${f}\0`).join(''));
    try {
      return await done;
    } finally {
      if (this.pending.size === 0) this.setRef(false);
    }
  }

  /** Ends the helper and the listening socket; programs it started go on. Idempotent. */
  close(): void {
    this.broken = true;
    this.helper?.stdin?.end();
    this.helper = undefined;
    this.server?.close();
    this.server = undefined;
    this.failAll(new Error('the spawner was closed'));
  }

  private start(): Promise<boolean> {
    if (this.helper && this.server) return Promise.resolve(true);
    this.starting ??= (async () => {
      // A helper that died is replaced; the listening socket stays.
      if (!this.server) this.server = await this.listen();
      if (!this.server) {
        this.broken = true;
        return false;
      }
      if (!this.helper) this.helper = this.startHelper();
      if (!this.helper) this.broken = true;
      return this.helper !== undefined;
    })().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private listen(): Promise<Server | undefined> {
    return new Promise((resolve) => {
      try {
        mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        sweepStaleSockets(this.dir);
      } catch {
        resolve(undefined);
        return;
      }
      const server = createServer((s) => this.onConnection(s));
      server.once('error', () => resolve(undefined));
      server.listen(this.socketPath, () => {
        server.unref();
        resolve(server);
      });
    });
  }

  private startHelper(): ChildProcess | undefined {
    let child: ChildProcess;
    try {
      child = spawn(this.perl, ['-e', HELPER, this.socketPath], { stdio: ['pipe', 'pipe', 'ignore'] });
    } catch {
      return undefined;
    }
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.onAnswer(chunk));
    child.stdin!.on('error', () => {});
    child.once('error', () => {
      this.broken = true;
      this.onHelperGone(child);
    });
    child.once('exit', () => this.onHelperGone(child));
    child.unref();
    (child.stdin as unknown as { unref(): void }).unref();
    (child.stdout as unknown as { unref(): void }).unref();
    return child;
  }

  private onAnswer(chunk: string): void {
    this.buffered += chunk;
    for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
      const [token, pid, ...why] = this.buffered.slice(0, nl).split(' ');
      this.buffered = this.buffered.slice(nl + 1);
      const p = this.pending.get(token ?? '');
      if (!p) continue;
      const n = Number(pid);
      if (!(n > 0)) {
        this.pending.delete(token!);
        p.reject(new Error(`spawn failed: ${why.join(' ')}`));
        continue;
      }
      p.pid = n;
      this.settle(token!, p);
    }
  }

  /** Each connection first says `<token> <fd>`; what follows is the program's. */
  private onConnection(s: Socket): void {
    let head = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const nl = head.indexOf(10);
      if (nl < 0) {
        if (head.length > 64) s.destroy();
        return;
      }
      s.removeListener('data', onData);
      const [token, fd] = head.subarray(0, nl).toString('latin1').split(' ');
      const rest = head.subarray(nl + 1);
      const p = this.pending.get(token ?? '');
      if (!p || !['2', '3', '4'].includes(fd ?? '')) {
        s.destroy();
        return;
      }
      p.sockets.set(Number(fd), s);
      if (fd === '4') {
        s.pause();
      } else {
        // What the program writes (and its end, which may come with the header) waits in a
        // stream of our own until the caller reads it.
        const out = new PassThrough();
        if (rest.length > 0) out.write(rest);
        s.pipe(out);
        out.once('close', () => s.destroy());
        p.readers.set(Number(fd), out);
      }
      this.settle(token!, p);
    };
    s.on('data', onData);
    s.on('error', () => {});
  }

  private settle(token: string, p: Pending): void {
    if (p.pid === undefined || p.sockets.size < 3) return;
    this.pending.delete(token);
    p.resolve({ pid: p.pid, stderr: p.readers.get(2)!, fd3: p.readers.get(3)!, fd4: p.sockets.get(4)! });
  }

  private onHelperGone(child: ChildProcess): void {
    if (this.helper !== child) return;
    this.helper = undefined;
    this.buffered = '';
    this.failAll(new Error('the spawn helper exited'));
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) {
      for (const s of p.sockets.values()) s.destroy();
      p.reject(err);
    }
    this.pending.clear();
  }

  private setRef(on: boolean): void {
    const h = this.helper;
    if (!h) return;
    for (const s of [h.stdin, h.stdout] as unknown as { ref(): void; unref(): void }[]) {
      if (on) s.ref();
      else s.unref();
    }
    if (on) h.ref();
    else h.unref();
  }
}

/** Sockets (`<pid>-<random>.sock`) of programs that are gone: a crash left them. */
function sweepStaleSockets(dir: string): void {
  for (const name of readdirSync(dir)) {
    const pid = Number.parseInt(name, 10);
    if (!(pid > 0) || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
      continue;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPERM') continue;
    }
    rmSync(join(dir, name), { force: true });
  }
}
