// Applies prisma/migrations on start, recording them in Prisma's own _prisma_migrations
// table (same checksum and columns), so `prisma migrate status` and `migrate deploy` agree
// with what the controller did. Runs in-process: no CLI or engine binary on the hosts.
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { prismaTimestamp } from './timestamp.ts';

/** prisma/migrations of this checkout, found upwards from this module (source or bundle). */
export const MIGRATIONS_DIR = findMigrations(path.dirname(fileURLToPath(import.meta.url)));
/** prisma/postgresql/migrations: the PostgreSQL store's own migrations. */
export const POSTGRES_MIGRATIONS_DIR = path.join(path.dirname(MIGRATIONS_DIR), 'postgresql', 'migrations');

function findMigrations(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'prisma', 'migrations');
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`no prisma/migrations above ${from}; run the controller from a crossdock checkout`);
  }
}

const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
)`;

export interface MigrationReport {
  applied: string[];
  alreadyApplied: number;
}

/** The migrations of a folder in the order they apply, each with its SQL and Prisma's checksum of it. */
export function migrationFiles(dir: string): Array<{ name: string; sql: string; checksum: string }> {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(dir, d.name, 'migration.sql')))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(path.join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/**
 * The migrations still to apply, in order, and how many are in place, given the _prisma_migrations rows; refuses a failed
 * migration never resolved and an applied one whose file changed since. Both stores use it.
 */
export function pendingMigrations<F extends { name: string; checksum: string }>(
  files: readonly F[],
  rows: ReadonlyArray<{ migration_name: string; checksum: string; finished_at: unknown; rolled_back_at: unknown }>,
): { pending: F[]; alreadyApplied: number } {
  const done = new Map(rows.filter((r) => r.finished_at && !r.rolled_back_at).map((r) => [r.migration_name, r.checksum]));
  const failed = rows.find((r) => !r.finished_at && !r.rolled_back_at);
  if (failed) {
    throw new Error(`migration ${failed.migration_name} failed earlier and was never resolved; inspect the database, then run \`prisma migrate resolve\``);
  }
  const pending = files.filter(({ name, checksum }) => {
    const previous = done.get(name);
    if (previous === undefined) return true;
    if (previous !== checksum) throw new Error(`migration ${name} was changed after it was applied; restore it and add a new migration instead`);
    return false;
  });
  return { pending, alreadyApplied: done.size };
}

export function applyMigrations(file: string, dir = MIGRATIONS_DIR): MigrationReport {
  const files = migrationFiles(dir);
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.exec(CREATE_MIGRATIONS_TABLE);
    const rows = db.prepare('SELECT migration_name, checksum, finished_at, rolled_back_at FROM _prisma_migrations').all() as Array<{
      migration_name: string;
      checksum: string;
      finished_at: string | null;
      rolled_back_at: string | null;
    }>;
    const applied: string[] = [];
    const { pending, alreadyApplied } = pendingMigrations(files, rows);
    for (const { name, sql, checksum } of pending) {
      const id = randomUUID();
      const run = db.transaction(() => {
        db.prepare('INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count) VALUES (?, ?, ?, ?, 0)').run(
          id,
          checksum,
          name,
          prismaTimestamp(),
        );
        db.exec(sql);
        db.prepare('UPDATE _prisma_migrations SET finished_at = ?, applied_steps_count = 1 WHERE id = ?').run(prismaTimestamp(), id);
      });
      run();
      applied.push(name);
    }
    return { applied, alreadyApplied };
  } finally {
    db.close();
  }
}
