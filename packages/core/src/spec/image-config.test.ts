import { describe, expect, it } from 'vitest';
import { imageVolumes, mergeImageConfig, normalizePort } from './image-config.js';

const image = {
  config: { Entrypoint: ['/ep', 'e1'], Cmd: ['c1', 'c2'], Env: ['A=1', 'PATH=/img/bin', 'B=2'] },
};

describe('Docker entrypoint/cmd rules', () => {
  const table: [string, { entrypoint?: string[] | string; command?: string[] }, string[] | 'none'][] = [
    ['nothing given: image Entrypoint + Cmd', {}, ['/ep', 'e1', 'c1', 'c2']],
    ['command: image Entrypoint + command', { command: ['x', 'y'] }, ['/ep', 'e1', 'x', 'y']],
    ['empty command counts as not given', { command: [] }, ['/ep', 'e1', 'c1', 'c2']],
    ['entrypoint: drops the image Cmd', { entrypoint: ['/new'] }, ['/new']],
    ['entrypoint as a string is one argument', { entrypoint: '/bin/sh -c' }, ['/bin/sh -c']],
    ['entrypoint + command', { entrypoint: ['/new'], command: ['z'] }, ['/new', 'z']],
    ['empty entrypoint + command: just the command', { entrypoint: '', command: ['z'] }, ['z']],
    ['[""] entrypoint clears like ""', { entrypoint: [''], command: ['z'] }, ['z']],
    ['empty entrypoint alone: nothing to run', { entrypoint: [] }, 'none'],
  ];
  for (const [name, opts, want] of table) {
    it(name, () => {
      const m = mergeImageConfig(image, opts);
      expect(m.args).toEqual(want === 'none' ? [] : want);
    });
  }

  it('an image with only Cmd, or only Entrypoint', () => {
    expect(mergeImageConfig({ config: { Cmd: ['sh'] } }).args).toEqual(['sh']);
    expect(mergeImageConfig({ config: { Entrypoint: ['/init'] } }).args).toEqual(['/init']);
    expect(mergeImageConfig({ config: { Cmd: ['sh'] } }, { command: ['id'] }).args).toEqual(['id']);
    expect(mergeImageConfig({ config: { Entrypoint: null, Cmd: null } }).args).toEqual([]);
  });

  it('accepts the config object itself and Docker nulls', () => {
    expect(mergeImageConfig({ Cmd: ['a'], Env: null, Labels: null }).args).toEqual(['a']);
    expect(mergeImageConfig(undefined, { command: ['a'] }).args).toEqual(['a']);
  });
});

describe('image config merge', () => {
  it('env: image first, caller overriding by key, order kept', () => {
    const m = mergeImageConfig(image, { env: { B: 'x', C: '3' } });
    expect(m.env).toEqual(['A=1', 'PATH=/img/bin', 'B=x', 'C=3']);
  });

  it('workdir, user and stop signal: the caller wins over the image', () => {
    const img = { config: { WorkingDir: '/app', User: 'nobody', StopSignal: 'SIGQUIT', Cmd: ['x'] } };
    expect(mergeImageConfig(img)).toMatchObject({ workdir: '/app', user: 'nobody', stopSignal: 3 });
    expect(mergeImageConfig(img, { workdir: '/w', user: '1:2', stopSignal: 'INT' })).toMatchObject({
      workdir: '/w',
      user: '1:2',
      stopSignal: 2,
    });
    expect(mergeImageConfig({ config: {} }).stopSignal).toBe(15);
    // An empty user/workdir means "not given", as with `docker run --user ""`.
    expect(mergeImageConfig(img, { user: '', workdir: '' })).toMatchObject({
      user: 'nobody',
      workdir: '/app',
    });
    expect(() => mergeImageConfig({ config: { StopSignal: 'SIGNOPE' } })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_SPEC_OPTION' }),
    );
    expect(mergeImageConfig({ config: { StopSignal: 'SIGRTMIN+3' } }).stopSignal).toBe(37);
  });

  it('labels and exposed ports: union, caller winning', () => {
    const m = mergeImageConfig(
      { config: { Labels: { a: '1', b: '2' }, ExposedPorts: { '80/tcp': {}, '53/udp': {} } } },
      { labels: { b: 'x' }, expose: [8080, '53/UDP'] },
    );
    expect(m.labels).toEqual({ a: '1', b: 'x' });
    expect(m.exposedPorts).toEqual(['53/udp', '80/tcp', '8080/tcp']);
    expect(() => normalizePort('70000')).toThrow();
    expect(() => normalizePort('80/icmp')).toThrow();
  });

  it('volumes: normalized; ".." refused (CVE-2022-23648)', () => {
    expect(imageVolumes({ config: { Volumes: { '/data/': {}, '/a//b': {} } } })).toEqual(['/data', '/a/b']);
    for (const bad of ['/../../../../var/lib', '/data/../../etc', '..', 'relative/dir']) {
      expect(() => imageVolumes({ config: { Volumes: { [bad]: {} } } }), bad).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_VOLUME_PATH' }),
      );
    }
  });
});
