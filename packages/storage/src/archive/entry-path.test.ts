import { describe, expect, it } from 'vitest';
import { entryRelPath, normaliseEntryPath } from './apply.js';

describe('entryRelPath (fast path for names that are already normal)', () => {
  it('equals normaliseEntryPath().join("/") for every name, and throws where it throws', () => {
    const parts = ['', '.', '..', '...', '.a', 'a.', '..a', 'a..', 'a', 'bb', '.wh.x', 'é', ' '];
    const names = new Set<string>([
      '/',
      '//',
      './',
      '../',
      'a//b',
      '/a',
      'a/',
      'a/b/',
      'a/b//',
      './a',
      'a/./b',
    ]);
    for (const x of parts)
      for (const y of parts)
        for (const z of parts) for (const sep of ['/', '//']) names.add([x, y, z].join(sep));
    for (const n of [...names]) {
      names.add(`${n}/`);
      names.add(`/${n}`);
    }
    let checked = 0;
    for (const name of names) {
      let want: string | Error;
      try {
        want = normaliseEntryPath(name).join('/');
      } catch (err) {
        want = err as Error;
      }
      if (want instanceof Error) {
        expect(() => entryRelPath(name), name).toThrow(want.constructor as new () => Error);
      } else {
        expect(entryRelPath(name), name).toBe(want);
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(4000);
  });
});
