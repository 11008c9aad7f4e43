// The committed migrations and schema.prisma must describe the same database, and the
// controller's in-process migration runner must leave a database Prisma's CLI accepts: for
// SQLite (prisma/) and for PostgreSQL (prisma/postgresql/), whose models must stay the same.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { applyMigrations } from '../controller/src/db/migrate.ts';
import { applyPostgresMigrations } from '../controller/src/db/migrate-postgres.ts';
import { REPO_ROOT } from './support/controller-process.ts';
import { startPostgres, type PostgresCluster } from './support/postgres.ts';
import { missing } from './support/requirements.ts';

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

/** Tables, columns, indexes and constraints of a PostgreSQL database, as comparable text. */
async function postgresSchemaOf(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const columns = await client.query<{ line: string }>(
      `SELECT format('column %s.%s %s null=%s default=%s', table_name, column_name, data_type, is_nullable, column_default) AS line
         FROM information_schema.columns WHERE table_schema = 'public' AND table_name != '_prisma_migrations'`,
    );
    const indexes = await client.query<{ line: string }>(
      `SELECT 'index ' || indexdef AS line FROM pg_indexes WHERE schemaname = 'public' AND tablename != '_prisma_migrations'`,
    );
    const constraints = await client.query<{ line: string }>(
      `SELECT format('constraint %s %s', conname, pg_get_constraintdef(oid)) AS line FROM pg_constraint
         WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text != '_prisma_migrations'`,
    );
    return [...columns.rows, ...indexes.rows, ...constraints.rows].map((r) => r.line).sort();
  } finally {
    await client.end();
  }
}

/** schema.prisma without its generator and datasource blocks: the models. */
function modelsOf(file: string): string {
  const text = readFileSync(path.join(REPO_ROOT, file), 'utf8');
  return text.slice(text.indexOf('\nmodel ')).trim();
}

describe('PostgreSQL migrations', () => {
  const skip = missing('postgres') !== null;
  let cluster: PostgresCluster | undefined;
  afterAll(async () => {
    await cluster?.stop();
  });

  it('the PostgreSQL schema has the same models as the SQLite one, field for field', () => {
    expect(modelsOf('prisma/postgresql/schema.prisma')).toEqual(modelsOf('prisma/schema.prisma'));
  });

  it.skipIf(skip)(
    'produce the same tables, indexes and constraints as the schema, recorded as prisma migrate status expects',
    async () => {
      cluster = await startPostgres();
      const fromMigrations = await cluster.createDatabase('migrations');
      const first = await applyPostgresMigrations(fromMigrations);
      expect(first.applied.length).toBeGreaterThan(0);
      expect(await applyPostgresMigrations(fromMigrations)).toEqual({ applied: [], alreadyApplied: first.applied.length });

      const config = ['--config', 'prisma/postgresql/prisma.config.ts'];
      const fromSchema = await cluster.createDatabase('schema');
      const sql = execFileSync(PRISMA, ['migrate', 'diff', ...config, '--from-empty', '--to-schema-datamodel', 'prisma/postgresql/schema.prisma', '--script'], {
        cwd: REPO_ROOT,
        env: { ...process.env, CROSSDOCK_DB: fromSchema },
        encoding: 'utf8',
      });
      const client = new pg.Client({ connectionString: fromSchema });
      await client.connect();
      await client.query(sql);
      await client.end();
      expect(await postgresSchemaOf(fromMigrations)).toEqual(await postgresSchemaOf(fromSchema));

      const status = execFileSync(PRISMA, ['migrate', 'status', ...config], {
        cwd: REPO_ROOT,
        env: { ...process.env, CROSSDOCK_DB: fromMigrations },
        encoding: 'utf8',
      });
      expect(status).toContain('Database schema is up to date');
    },
    120_000,
  );
});
