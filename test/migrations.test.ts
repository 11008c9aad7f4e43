// The committed migrations and schema.prisma must describe the same database, and the
// controller's in-process migration runner must leave a database Prisma's CLI accepts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { applyMigrations } from '../controller/src/db/migrate.ts';
import { REPO_ROOT } from './support/controller-process.ts';

const PRISMA = path.join(REPO_ROOT, 'node_modules/.bin/prisma');
const dir = mkdtempSync(path.join(tmpdir(), 'crossdock-migrations-'));

function schemaOf(file: string): string[] {
  const db = new Database(file, { readonly: true });
  const rows = db
    .prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name != '_prisma_migrations' ORDER BY type, name")
    .all() as Array<{ type: string; name: string; sql: string | null }>;
  db.close();
  // Whitespace is not schema: SQLite keeps a table's CREATE text as written, and an ALTER TABLE
  // ADD COLUMN splices its column in with spacing of its own (`..., "x" TEXT)` for `...,\n "x" TEXT\n)`).
  const normalized = (sql: string) => sql.replace(/\s+/g, ' ').replace(/ ?([(),]) ?/g, '$1');
  return rows.map((r) => `${r.type} ${r.name}: ${normalized(r.sql ?? '')}`);
}

describe('migrations', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('produce the same tables and indexes as schema.prisma', () => {
    const fromMigrations = path.join(dir, 'migrations.db');
    applyMigrations(fromMigrations);
    const sql = execFileSync(PRISMA, ['migrate', 'diff', '--from-empty', '--to-schema-datamodel', 'prisma/schema.prisma', '--script'], {
      cwd: REPO_ROOT,
      env: { ...process.env, CROSSDOCK_DB: `file:${path.join(dir, 'scratch.db')}` },
      encoding: 'utf8',
    });
    const fromSchema = path.join(dir, 'schema.db');
    const db = new Database(fromSchema);
    db.exec(sql);
    db.close();
    expect(schemaOf(fromMigrations)).toEqual(schemaOf(fromSchema));
  });

  it('are recorded the way prisma migrate expects, and applying twice changes nothing', () => {
    const file = path.join(dir, 'status.db');
    const first = applyMigrations(file);
    expect(first.applied.length).toBeGreaterThan(0);
    expect(applyMigrations(file)).toEqual({ applied: [], alreadyApplied: first.applied.length });
    const status = execFileSync(PRISMA, ['migrate', 'status'], { cwd: REPO_ROOT, env: { ...process.env, CROSSDOCK_DB: `file:${file}` }, encoding: 'utf8' });
    expect(status).toContain('Database schema is up to date');
  });
});
