import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { run } from '../common.js';

/** One mount(2): `data` is the file system's option string (overlay: lowerdir=...,upperdir=...). */
export interface MountRequest {
  fstype: string;
  source: string;
  /** Relative paths (target, and overlay's dirs inside `data`) resolve against `cwd`. */
  target: string;
  data: string;
  readonly: boolean;
  cwd: string;
}

/** Mounts and unmounts for the overlay driver; rejects with an Error whose message says why. */
export interface Mounter {
  mount(req: MountRequest): Promise<void>;
  unmount(target: string): Promise<void>;
  /** Ends helper processes (a later call starts them again). */
  close(): void;
}

/** mount(8) and umount(8): what every Linux host has. */
export function toolMounter(runTool: typeof run): Mounter {
  const check = async (what: string, p: Promise<{ code: number; stderr: string }>) => {
    const r = await p;
    if (r.code !== 0) throw new Error(`${what} exit ${r.code}: ${r.stderr.trim()}`);
  };
  return {
    mount: (q) =>
      check(
        'mount',
        runTool('mount', ['-t', q.fstype, q.source, '-o', q.data, ...(q.readonly ? ['-r'] : []), q.target], {
          cwd: q.cwd,
        }),
      ),
    unmount: (target) => check('umount', runTool('umount', [target])),
    close: () => {},
  };
}

/** mount(2) / umount2(2) numbers where we know them; elsewhere the tools are used. */
const SYSCALLS: Partial<Record<NodeJS.Architecture, { mount: number; umount2: number }>> = {
  x64: { mount: 165, umount2: 166 },
  arm64: { mount: 40, umount2: 39 },
};

const MS_RDONLY = 1;

/**
 * The helper: reads requests of 7 NUL-terminated fields (op, cwd, source, target, fstype, flags,
 * data) and answers each with one line, `0` or `<errno> <message>`. perl's `syscall` calls the
 * kernel directly: no libmount, no mount table parsing, no process per call.
 */
const HELPER = String.raw`# libpod-ts mount helper
use strict;
my ($sys_mount, $sys_umount2) = @ARGV;
$| = 1;
$/ = "\0";
while (1) {
  my @f;
  for (1 .. 7) {
    my $x = <STDIN>;
    exit 0 unless defined $x;
    chomp $x;
    push @f, $x;
  }
  my ($op, $cwd, $source, $target, $type, $flags, $data) = @f;
  if (!chdir $cwd) {
    my $e = $! + 0;
    print "$e chdir: $!\n";
    next;
  }
  my $r = $op eq 'M'
    ? syscall($sys_mount, $source, $target, $type, $flags + 0, $data)
    : syscall($sys_umount2, $target, $flags + 0);
  if ($r == 0) { print "0\n" } else { my $e = $! + 0; print "$e $!\n" }
}
`;

/**
 * mount(2) without a process per call. Node has no binding for it, and mount(8) costs 2.5-5 ms
 * a call (process start, libmount; more from a large Node process, which forks its whole address
 * space). A resident perl (Debian's perl-base is Essential) makes the two syscalls: ~0.5 ms a
 * call, measured. Where perl or the syscall numbers are missing, or the helper cannot start, it
 * falls back to `fallback` (mount(8)/umount(8)) for good.
 */
export class SyscallMounter implements Mounter {
  private helper: ChildProcess | undefined;
  private readonly waiting: ((line: string) => void)[] = [];
  private buffered = '';
  private broken = false;

  constructor(
    private readonly fallback: Mounter,
    private readonly perl = '/usr/bin/perl',
  ) {}

  async mount(q: MountRequest): Promise<void> {
    const nums = SYSCALLS[process.arch];
    if (!nums || this.broken) return this.fallback.mount(q);
    const flags = q.readonly ? MS_RDONLY : 0;
    await this.call(['M', q.cwd, q.source, q.target, q.fstype, String(flags), q.data], () =>
      this.fallback.mount(q),
    );
  }

  async unmount(target: string): Promise<void> {
    if (!SYSCALLS[process.arch] || this.broken) return this.fallback.unmount(target);
    await this.call(['U', '/', '', target, '', '0', ''], () => this.fallback.unmount(target));
  }

  close(): void {
    const h = this.helper;
    this.helper = undefined;
    h?.stdin?.end();
    this.failWaiting();
  }

  private async call(fields: string[], fallback: () => Promise<void>): Promise<void> {
    if (fields.some((f) => f.includes('\0'))) throw new Error('a path or option contains a NUL byte');
    const helper = this.start();
    if (!helper) return fallback();
    const answer = new Promise<string>((resolve) => this.waiting.push(resolve));
    if (this.waiting.length === 1) setRef(helper, true);
    helper.stdin!.write(fields.map((f) => `${f}\0`).join(''));
    const line = await answer;
    if (line === '') {
      // It could not start (nothing was done): the tools answer. It died while answering: the
      // call may or may not have happened, so the caller must look again.
      if (this.broken) return fallback();
      throw new Error('the mount helper exited before it answered');
    }
    if (line === '0') return;
    const sp = line.indexOf(' ');
    throw new Error(
      `${fields[0] === 'M' ? 'mount' : 'umount2'}(2) errno ${line.slice(0, sp)}: ${line.slice(sp + 1)}`,
    );
  }

  private start(): ChildProcess | undefined {
    if (this.helper) return this.helper;
    if (!existsSync(this.perl)) {
      this.broken = true;
      return undefined;
    }
    const nums = SYSCALLS[process.arch]!;
    let child: ChildProcess;
    try {
      child = spawn(this.perl, ['-e', HELPER, String(nums.mount), String(nums.umount2)], {
        stdio: ['pipe', 'pipe', 'ignore'],
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
      });
    } catch {
      this.broken = true;
      return undefined;
    }
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.buffered += chunk;
      for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        this.waiting.shift()?.(line);
      }
      if (this.waiting.length === 0 && this.helper) setRef(this.helper, false);
    });
    child.stdin!.on('error', () => {});
    const gone = (err?: Error) => {
      if (this.helper !== child) return;
      this.helper = undefined;
      this.buffered = '';
      // Could not start (no perl): never try again. Died later: the next call starts a new one.
      if (err) this.broken = true;
      this.failWaiting();
    };
    child.once('error', (err) => gone(err));
    child.once('exit', () => gone());
    setRef(child, false);
    this.helper = child;
    return child;
  }

  /** Calls whose answer can no longer come: '' sends them to the fallback. */
  private failWaiting(): void {
    for (const w of this.waiting.splice(0)) w('');
  }
}

function setRef(child: ChildProcess, on: boolean): void {
  for (const s of [child.stdin, child.stdout] as unknown as { ref(): void; unref(): void }[]) {
    if (on) s.ref();
    else s.unref();
  }
  if (on) child.ref();
  else child.unref();
}
