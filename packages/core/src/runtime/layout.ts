import { join } from 'node:path';

/**
 * Where the lifecycle keeps its files. Everything under `runRoot` must not survive a reboot
 * (runtime state, bundles, sockets, exit files); everything under `root` does (records, logs).
 *
 *   <runRoot>/runtime/<id>/            runc/crun state (`--root <runRoot>/runtime`)
 *   <runRoot>/containers/<id>/         bundle: config.json, pidfile, conmon.pid, attach (socket),
 *                                      ctl and winsz (fifos, conmon's control channel)
 *   <runRoot>/containers/<id>/exec/<sid>/  one exec session: process.json, pidfile, log, exit
 *   <runRoot>/exits/<id>               container exit code written by conmon (--exit-dir)
 *   <runRoot>/socket/<uuid> -> bundle  conmon's short symlink so the attach socket path fits sockaddr_un
 *   <root>/containers/<id>/container.json   the record (atomic writes, lock file `lock`)
 *   <root>/containers/<id>/ctr.log     k8s-file log written by conmon
 *   <root>/containers/<id>/persist/    conmon --persist-dir (exit, oom files)
 *   <root>/events/events.jsonl         persistent events log
 */
export class Layout {
  constructor(
    readonly root: string,
    readonly runRoot: string,
  ) {}

  get runtimeRoot(): string {
    return join(this.runRoot, 'runtime');
  }
  get exitDir(): string {
    return join(this.runRoot, 'exits');
  }
  get socketDir(): string {
    return join(this.runRoot, 'socket');
  }
  get containersDir(): string {
    return join(this.root, 'containers');
  }
  get eventsFile(): string {
    return join(this.root, 'events', 'events.jsonl');
  }
  bundle(id: string): string {
    return join(this.runRoot, 'containers', id);
  }
  exitFile(id: string): string {
    return join(this.exitDir, id);
  }
  containerDir(id: string): string {
    return join(this.containersDir, id);
  }
  recordFile(id: string): string {
    return join(this.containerDir(id), 'container.json');
  }
  specFile(id: string): string {
    return join(this.containerDir(id), 'spec.json');
  }
  logFile(id: string): string {
    return join(this.containerDir(id), 'ctr.log');
  }
  persistDir(id: string): string {
    return join(this.containerDir(id), 'persist');
  }
  execDir(id: string, sessionId: string): string {
    return join(this.bundle(id), 'exec', sessionId);
  }
}
