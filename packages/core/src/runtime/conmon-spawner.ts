import { Worker } from 'node:worker_threads';
import { OciRuntimeError } from '../errors.js';
import { classifyRuntimeError } from './oci-runtime.js';

/**
 * Starts held conmons (see PendingConmon) from a worker thread. `spawn()` forks this whole
 * process and waits for the child's exec: 2-7 ms of a blocked event loop here (Node forks, it
 * has no vfork/posix_spawn), on the `run` hot path. From a worker the fork runs beside the
 * main thread, which meanwhile generates the spec and writes the records.
 *
 * The worker is one per process, started on first use, and never keeps the process alive: it is
 * referenced only while an operation waits on it. It speaks the same start/sync pipe protocol as
 * `launch` in conmon.ts; any failure of the worker itself makes callers fall back to a direct
 * spawn (`available()` turns false).
 */

/** Worker source (CommonJS, run with eval: no separate file for bundlers to find). */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { spawn } = require('node:child_process');
const held = new Map();
function reply(m) { parentPort.postMessage(m); }
reply({ op: 'ready', key: 0 });
parentPort.on('message', (m) => {
  if (m.op === 'spawn') {
    let child;
    try {
      child = spawn(m.file, m.args, {
        stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
        env: m.env,
        detached: true,
      });
    } catch (err) {
      reply({ op: 'failed', key: m.key, message: 'conmon failed to start: ' + err.message, spawn: true });
      return;
    }
    const h = { child, stderr: [], buf: '', msg: undefined, ended: false, waiting: false, spawnError: undefined };
    held.set(m.key, h);
    child.stderr.on('data', (d) => h.stderr.push(d));
    child.on('error', (err) => {
      h.spawnError = err;
      if (h.waiting) finish(m.key, h);
    });
    const sync = child.stdio[3];
    sync.setEncoding('utf8');
    sync.on('data', (chunk) => {
      h.buf += chunk;
      const nl = h.buf.indexOf('\\n');
      if (nl >= 0 && h.msg === undefined) {
        const line = h.buf.slice(0, nl).trim();
        try { h.msg = JSON.parse(line); } catch { h.msg = { data: -1, message: 'conmon wrote an unreadable sync message: ' + line }; }
        if (h.waiting) finish(m.key, h);
      }
    });
    const end = () => { if (h.ended) return; h.ended = true; if (h.waiting) finish(m.key, h); };
    sync.on('end', end); sync.on('close', end); sync.on('error', end);
    child.stdio[4].on('error', () => {});
    return;
  }
  const h = held.get(m.key);
  if (!h) { reply({ op: 'failed', key: m.key, message: 'no held conmon' }); return; }
  if (m.op === 'go') {
    h.waiting = true;
    h.child.stdio[4].end('0');
    if (h.msg !== undefined || h.ended || h.spawnError) finish(m.key, h);
  } else if (m.op === 'cancel') {
    held.delete(m.key);
    const done = () => { release(h); reply({ op: 'cancelled', key: m.key }); };
    if (h.child.exitCode !== null || h.child.signalCode !== null || h.spawnError) done();
    else { h.child.once('exit', done); h.child.kill('SIGKILL'); }
    h.child.stdio[4].destroy();
  }
});
function release(h) {
  h.child.stdio[3].destroy();
  h.child.stderr.destroy();
  h.child.unref();
}
function finish(key, h) {
  if (!held.has(key)) return;
  held.delete(key);
  if (h.spawnError) {
    release(h);
    reply({ op: 'failed', key, message: 'conmon failed to start: ' + h.spawnError.message, spawn: true });
    return;
  }
  if (h.msg && h.msg.data >= 0) {
    release(h);
    reply({ op: 'pid', key, pid: h.msg.data });
    return;
  }
  // Failure: wait for conmon's parent to exit so its stderr is complete.
  const report = () => {
    release(h);
    const text = (h.msg && h.msg.message) || Buffer.concat(h.stderr).toString('utf8').trim() || 'conmon exited without a pid';
    reply({ op: 'failed', key, message: text });
  };
  if (h.child.exitCode !== null || h.child.signalCode !== null) report();
  else h.child.once('exit', report);
}
`;

type Reply =
  | { op: 'ready'; key: 0 }
  | { op: 'pid'; key: number; pid: number }
  | { op: 'failed'; key: number; message: string; spawn?: boolean }
  | { op: 'cancelled'; key: number };

let worker: Worker | undefined;
let ready = false;
let onReady: (() => void)[] = [];
let broken = false;
let nextKey = 1;
let refs = 0;
const waiting = new Map<number, (r: Reply) => void>();

/** The worker once it runs; undefined while it boots (~30 ms, started here) or when broken. */
function getWorker(): Worker | undefined {
  if (broken) return undefined;
  if (worker) return ready ? worker : undefined;
  try {
    // execArgv []: the thread needs no loader of the embedding program (a `--import` hook, a
    // test runner's preload), whose state could keep the process alive or cost memory.
    worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], stdout: false, stderr: false });
  } catch {
    broken = true;
    return undefined;
  }
  worker.on('message', (r: Reply) => {
    if (r.op === 'ready') {
      ready = true;
      for (const f of onReady) f();
      onReady = [];
      return;
    }
    const w = waiting.get(r.key);
    waiting.delete(r.key);
    w?.(r);
  });
  const fail = (err: unknown) => {
    broken = true;
    ready = false;
    worker = undefined;
    for (const f of onReady) f();
    onReady = [];
    const message = `conmon spawner thread failed: ${(err as Error)?.message ?? err}`;
    for (const [key, w] of waiting) w({ op: 'failed', key, message, spawn: true });
    waiting.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`exited with ${code}`)));
  // After the listeners: attaching a 'message' listener references the thread's port again.
  worker.unref();
  return undefined;
}

/** Starts the worker if needed; resolves true once it takes requests, false if it cannot. */
export function spawnerReady(): Promise<boolean> {
  getWorker();
  if (ready || broken || !worker) return Promise.resolve(ready);
  // Waiting on the thread keeps the process alive (it is unreferenced otherwise).
  const w = worker;
  if (refs++ === 0) w.ref();
  return new Promise((resolve) =>
    onReady.push(() => {
      if (--refs === 0) worker?.unref();
      resolve(ready);
    }),
  );
}

function request(w: Worker, message: Record<string, unknown>, key: number): Promise<Reply> {
  return new Promise((resolve) => {
    if (refs++ === 0) w.ref();
    waiting.set(key, (r) => {
      if (--refs === 0) worker?.unref();
      resolve(r);
    });
    w.postMessage(message);
  });
}

/**
 * A conmon started by the worker and held on its start pipe. `go()` resolves with the container
 * pid or rejects with the runtime's classified error; `cancel()` kills it. Undefined when the
 * worker is not available (the caller spawns directly).
 */
export function spawnHeldConmon(
  conmonPath: string,
  args: readonly string[],
  containerId: string,
): { go(): Promise<{ pid: number }>; cancel(): Promise<void> } | undefined {
  const w = getWorker();
  if (!w) return undefined;
  const key = nextKey++;
  // A reply that the spawn itself failed arrives for the key before any go/cancel.
  let early: Reply | undefined;
  const spawnWatch = (r: Reply) => {
    early = r;
  };
  waiting.set(key, spawnWatch);
  w.postMessage({
    op: 'spawn',
    key,
    file: conmonPath,
    args: [...args],
    env: { ...process.env, _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4' },
  });
  let used = false;
  const take = (): Reply | undefined => {
    if (waiting.get(key) === spawnWatch) waiting.delete(key);
    return early;
  };
  return {
    go: async () => {
      if (used) throw new Error('conmon already started or cancelled');
      used = true;
      const r = take() ?? (await request(w, { op: 'go', key }, key));
      if (r.op === 'pid') return { pid: r.pid };
      if (r.op === 'failed' && r.spawn)
        throw new OciRuntimeError(`conmon for ${containerId} ${r.message}`, { containerId });
      throw classifyRuntimeError(r.op === 'failed' ? r.message : 'conmon was cancelled', containerId);
    },
    cancel: async () => {
      if (used) return;
      used = true;
      if (take()) return;
      await request(w, { op: 'cancel', key }, key);
    },
  };
}
