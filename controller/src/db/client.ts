// Opens the database: migrations first, then Prisma on the better-sqlite3 driver adapter,
// in WAL mode with synchronous=FULL, so a commit that was acknowledged survives SIGKILL
// and power loss alike.
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaClient } from '../generated/prisma/client.ts';
import { applyMigrations, type MigrationReport } from './migrate.ts';

export type { PrismaClient };

const BUSY_TIMEOUT_MS = 5_000;

export async function openDatabase(file: string): Promise<{ prisma: PrismaClient; migrations: MigrationReport }> {
  const migrations = applyMigrations(file);
  const prisma = new PrismaClient({ adapter: new PrismaBetterSQLite3({ url: `file:${file}`, timeout: BUSY_TIMEOUT_MS }) });
  await prisma.$queryRawUnsafe('PRAGMA journal_mode = WAL');
  await prisma.$queryRawUnsafe('PRAGMA synchronous = FULL');
  await prisma.$queryRawUnsafe('PRAGMA foreign_keys = ON');
  return { prisma, migrations };
}
