import { describe, expect, it } from 'vitest';
import { pendingMigrations } from './migrate.ts';

const files = [
  { name: '1_init', checksum: 'a' },
  { name: '2_more', checksum: 'b' },
];
const row = (migration_name: string, checksum: string, finished = true, rolledBack = false) => ({
  migration_name,
  checksum,
  finished_at: finished ? '2026-12-02T00:00:00Z' : null,
  rolled_back_at: rolledBack ? '2026-12-02T00:00:00Z' : null,
});

describe('pendingMigrations (both stores decide with it)', () => {
  it('applies what is not finished, in order; a rolled-back one counts as not applied', () => {
    expect(pendingMigrations(files, [])).toEqual({ pending: files, alreadyApplied: 0 });
    expect(pendingMigrations(files, [row('1_init', 'a')])).toEqual({ pending: [files[1]], alreadyApplied: 1 });
    expect(pendingMigrations(files, [row('1_init', 'a'), row('2_more', 'b', true, true)])).toEqual({ pending: [files[1]], alreadyApplied: 1 });
  });

  it('refuses a migration that failed and was never resolved, and one changed after it was applied', () => {
    expect(() => pendingMigrations(files, [row('1_init', 'a'), row('2_more', 'b', false)])).toThrow(/2_more failed earlier and was never resolved/);
    expect(() => pendingMigrations(files, [row('1_init', 'changed')])).toThrow(/1_init was changed after it was applied/);
  });
});
