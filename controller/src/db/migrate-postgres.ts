// Applies prisma/postgresql/migrations on start, as migrate.ts does for SQLite: recorded in
// Prisma's own _prisma_migrations table (PostgreSQL's column types, the same checksums), so
// `prisma migrate status` and `migrate deploy` agree with what the controller did. Each
// migration runs in one transaction (PostgreSQL's DDL is transactional), under Prisma
// Migrate's own advisory lock, so controllers starting together (or a `migrate deploy` at the
// same time) apply each migration once.
import pg from 'pg';
import { migrationFiles, pendingMigrations, POSTGRES_MIGRATIONS_DIR, type MigrationReport } from './migrate.ts';

/** The key `prisma migrate` locks with; sharing it keeps the CLI and the controllers apart. */
const PRISMA_MIGRATE_LOCK_KEY = 72707369;
const CONNECT_TIMEOUT_MS = 10_000;

const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export async function applyPostgresMigrations(url: string, dir = POSTGRES_MIGRATIONS_DIR): Promise<MigrationReport> {
  const files = migrationFiles(dir);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK_KEY]);
    await client.query(CREATE_MIGRATIONS_TABLE);
    const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null; rolled_back_at: Date | null }>(
      'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"',
    );
    const applied: string[] = [];
    const { pending, alreadyApplied } = pendingMigrations(files, rows);
    for (const { name, sql, checksum } of pending) {
      await client.query('BEGIN');
      try {
        const id = crypto.randomUUID();
        await client.query('INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)', [
          id,
          checksum,
          name,
        ]);
        await client.query(sql);
        await client.query('UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1', [id]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw new Error(`migration ${name} failed and was rolled back: ${(error as Error).message}`);
      }
      applied.push(name);
    }
    return { applied, alreadyApplied };
  } finally {
    // Ending the session releases the advisory lock with it.
    await client.end().catch(() => {});
  }
}
