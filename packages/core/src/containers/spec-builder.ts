import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CreateOptionsInput, specFromImage } from '../spec/index.js';
import type { SpecBuilder } from './manager.js';
import { envList } from './options.js';

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
    await mkdir(userdata, { recursive: true, mode: 0o700 });
    const files = {
      hostname: join(userdata, 'hostname'),
      hosts: join(userdata, 'hosts'),
      resolvConf: join(userdata, 'resolv.conf'),
      containerEnv: join(userdata, '.containerenv'),
    };
    await Promise.all([
      writeFile(files.hostname, `${input.hostname}\n`),
      writeFile(files.hosts, `127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t${input.hostname}\n`),
      copyFile('/etc/resolv.conf', files.resolvConf).catch(() => writeFile(files.resolvConf, '')),
      writeFile(files.containerEnv, `engine="libpod-ts"\nid="${input.id}"\n`),
    ]);
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
    };
    const spec = await specFromImage(input.imageConfig as never, input.rootfs, createOptions);
    return spec as unknown as Record<string, unknown>;
  };
}
