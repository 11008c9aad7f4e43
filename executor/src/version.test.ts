import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXECUTOR_VERSION, buildKind } from './version.ts';

describe('executor version', () => {
  it('is the version in executor/package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(EXECUTOR_VERSION).toBe(pkg.version);
  });

  it('knows the sources are not a one-file build', () => {
    expect(buildKind()).toBe('checkout');
  });
});
