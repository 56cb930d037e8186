import { CoreError } from '@libpod-ts/core';
import { describe, expect, it } from 'vitest';

describe('workspace', () => {
  it('loads the packages from source', () => {
    const err = new CoreError('ERR_TEST', 'x');
    expect(err.code).toBe('ERR_TEST');
    expect(err.name).toBe('CoreError');
  });
});
