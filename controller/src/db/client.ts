// Opens the database: migrations first, then Prisma on a driver adapter (no engine binaries).
// SQLite (the default): better-sqlite3 in WAL mode with synchronous=FULL, so a commit that was
// acknowledged survives SIGKILL and power loss alike. PostgreSQL: node-postgres with a pool of
// the configured size; a commit is acknowledged by the server once it is durable there
// (synchronous_commit, the server's own setting).
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.ts';
import { PrismaClient as PostgresPrismaClient } from '../generated/prisma-pg/client.ts';
import { applyMigrations, type MigrationReport } from './migrate.ts';
import { applyPostgresMigrations } from './migrate-postgres.ts';

export type { PrismaClient };

const BUSY_TIMEOUT_MS = 5_000;
/** How long a new PostgreSQL connection may take before the operation fails (and says so). */
const PG_CONNECT_TIMEOUT_MS = 10_000;

export type DatabaseConfig = { kind: 'sqlite'; file: string } | { kind: 'postgresql'; url: string; poolSize: number };
export type Dialect = DatabaseConfig['kind'];

export const DEFAULT_PG_POOL_SIZE = 10;

/** Clients opened on PostgreSQL (the generated client hides its provider behind a proxy). */
const postgresClients = new WeakSet<object>();

/**
 * The two generated clients have the same models and the same API (the schemas are compared
 * field for field by test/migrations.test.ts); the SQLite client's type stands for both, and
 * this tells which SQL a raw statement must be written in.
 */
export function dialectOf(prisma: PrismaClient): Dialect {
  return postgresClients.has(prisma) ? 'postgresql' : 'sqlite';
}

/** The database for logs and messages: a PostgreSQL URL without its password. */
export function describeDatabase(db: DatabaseConfig): string {
  if (db.kind === 'sqlite') return db.file;
  const url = new URL(db.url);
  if (url.password) url.password = '***';
  return url.toString();
}

export async function openDatabase(database: DatabaseConfig | string): Promise<{ prisma: PrismaClient; migrations: MigrationReport; dialect: Dialect }> {
  const db: DatabaseConfig = typeof database === 'string' ? { kind: 'sqlite', file: database } : database;
  if (db.kind === 'postgresql') {
    const migrations = await applyPostgresMigrations(db.url);
    const adapter = new PrismaPg({ connectionString: db.url, max: db.poolSize, connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS });
    const prisma = new PostgresPrismaClient({ adapter }) as unknown as PrismaClient;
    postgresClients.add(prisma);
    await prisma.$queryRawUnsafe('SELECT 1');
    return { prisma, migrations, dialect: 'postgresql' };
  }
  const migrations = applyMigrations(db.file);
  const prisma = new PrismaClient({ adapter: new PrismaBetterSQLite3({ url: `file:${db.file}`, timeout: BUSY_TIMEOUT_MS }) });
  await prisma.$queryRawUnsafe('PRAGMA journal_mode = WAL');
  await prisma.$queryRawUnsafe('PRAGMA synchronous = FULL');
  await prisma.$queryRawUnsafe('PRAGMA foreign_keys = ON');
  return { prisma, migrations, dialect: 'sqlite' };
}
