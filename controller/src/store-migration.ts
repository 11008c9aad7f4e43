// Moves a controller's whole store to another database (a SQLite file to PostgreSQL, usually):
// pools with their reserved ranges, hosts with their token hashes and generations, subnets and
// jobs, ids unchanged, in one transaction on the target. Refuses a target that holds anything:
// nothing is merged, nothing of someone else's is touched.
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describeDatabase, openDatabase, type DatabaseConfig, type PrismaClient } from './db/client.ts';

/** crossdock's tables, in the order rows can be inserted (parents first). */
const TABLES = ['Pool', 'ReservedRange', 'Host', 'Subnet', 'Job'] as const;
type Table = (typeof TABLES)[number];
/** crossdock's too, never copied: Leadership is the database's own record of which controller leads (its term), not the fleet. */
const OWN_TABLES = new Set<string>([...TABLES, 'Leadership', '_prisma_migrations']);
const ROWS_PER_INSERT = 1_000;
const COPY_TIMEOUT_MS = 30 * 60_000;

export class StoreMigrationError extends Error {}

export type StoreCounts = Record<Table, number>;

/** What the target holds now: its tables and, for crossdock's, their row counts. */
async function inspectTarget(db: DatabaseConfig): Promise<{ foreign: string[]; rows: Partial<StoreCounts> }> {
  const rows: Partial<StoreCounts> = {};
  if (db.kind === 'sqlite') {
    if (!existsSync(db.file)) return { foreign: [], rows };
    const sqlite = new Database(db.file, { readonly: true, fileMustExist: true });
    try {
      const tables = (sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as Array<{ name: string }>).map(
        (r) => r.name,
      );
      for (const t of TABLES) if (tables.includes(t)) rows[t] = (sqlite.prepare(`SELECT count(*) AS n FROM "${t}"`).get() as { n: number }).n;
      return { foreign: tables.filter((t) => !OWN_TABLES.has(t)), rows };
    } finally {
      sqlite.close();
    }
  }
  const client = new pg.Client({ connectionString: db.url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const { rows: tables } = await client.query<{ name: string }>(
      "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    );
    const names = tables.map((t) => t.name);
    for (const t of TABLES) {
      if (names.includes(`public.${t}`)) rows[t] = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM "${t}"`)).rows[0]!.n);
    }
    return { foreign: names.filter((n) => !(n.startsWith('public.') && OWN_TABLES.has(n.slice('public.'.length)))), rows };
  } finally {
    await client.end();
  }
}

async function countRows(prisma: PrismaClient): Promise<StoreCounts> {
  const [Pool, ReservedRange, Host, Subnet, Job] = await Promise.all([
    prisma.pool.count(),
    prisma.reservedRange.count(),
    prisma.host.count(),
    prisma.subnet.count(),
    prisma.job.count(),
  ]);
  return { Pool, ReservedRange, Host, Subnet, Job };
}

function sameDatabase(a: DatabaseConfig, b: DatabaseConfig): boolean {
  return a.kind === 'sqlite' && b.kind === 'sqlite'
    ? a.file === b.file
    : a.kind === b.kind && a.kind === 'postgresql' && describeDatabase(a) === describeDatabase(b);
}

/**
 * Copies every row of `from` into the empty `to`. The source is brought up to this version's
 * migrations first (as the controller would on start); its rows are read in one transaction,
 * so a consistent copy is taken even if something writes to it meanwhile (stop the controller
 * first all the same: what it writes after the copy is not carried over).
 */
export async function migrateStore(from: DatabaseConfig, to: DatabaseConfig, log: (line: string) => void = () => {}): Promise<StoreCounts> {
  if (sameDatabase(from, to))
    throw new StoreMigrationError(`--from and --to are the same database (${describeDatabase(from)}); name an empty database as --to`);
  if (from.kind === 'sqlite' && !existsSync(from.file)) {
    throw new StoreMigrationError(`there is no SQLite database at ${from.file}; give the controller's database file, such as file:./data/crossdock.db`);
  }
  const target = await inspectTarget(to).catch((error: Error) => {
    throw new StoreMigrationError(`cannot open the target ${describeDatabase(to)}: ${error.message}`);
  });
  if (target.foreign.length > 0) {
    throw new StoreMigrationError(
      `refusing to write into ${describeDatabase(to)}: it holds tables that are not crossdock's (${target.foreign.slice(0, 5).join(', ')}${target.foreign.length > 5 ? ', ...' : ''}); give an empty database, for example one made with \`createdb crossdock\``,
    );
  }
  const held = TABLES.filter((t) => (target.rows[t] ?? 0) > 0);
  if (held.length > 0) {
    throw new StoreMigrationError(
      `refusing to write into ${describeDatabase(to)}: it is not empty (${held.map((t) => `${target.rows[t]} ${t} rows`).join(', ')}); nothing was copied. Give an empty database, or drop this one if it is a copy you no longer need`,
    );
  }

  const source = await openDatabase(from).catch((error: Error) => {
    throw new StoreMigrationError(`cannot open the source ${describeDatabase(from)}: ${error.message}`);
  });
  try {
    const rows = await source.prisma.$transaction(
      async (tx) => ({
        Pool: await tx.pool.findMany({ orderBy: { id: 'asc' } }),
        ReservedRange: await tx.reservedRange.findMany({ orderBy: { id: 'asc' } }),
        Host: await tx.host.findMany({ orderBy: { id: 'asc' } }),
        Subnet: await tx.subnet.findMany({ orderBy: { id: 'asc' } }),
        Job: await tx.job.findMany({ orderBy: { id: 'asc' } }),
      }),
      { timeout: COPY_TIMEOUT_MS, maxWait: COPY_TIMEOUT_MS },
    );
    log(
      `read ${describeDatabase(from)}: ${rows.Pool.length} pools, ${rows.ReservedRange.length} reserved ranges, ${rows.Host.length} hosts, ${rows.Subnet.length} subnets, ${rows.Job.length} jobs`,
    );

    const destination = await openDatabase(to).catch((error: Error) => {
      throw new StoreMigrationError(`cannot open the target ${describeDatabase(to)}: ${error.message}`);
    });
    try {
      await destination.prisma.$transaction(
        async (tx) => {
          // Checked again inside the transaction: a controller started on the target meanwhile.
          if ((await tx.pool.count()) + (await tx.host.count()) > 0) {
            throw new StoreMigrationError(`refusing to write into ${describeDatabase(to)}: something wrote to it while the copy was read; nothing was copied`);
          }
          const chunks = <T>(list: T[]) =>
            Array.from({ length: Math.ceil(list.length / ROWS_PER_INSERT) }, (_, i) => list.slice(i * ROWS_PER_INSERT, (i + 1) * ROWS_PER_INSERT));
          for (const data of chunks(rows.Pool)) await tx.pool.createMany({ data });
          for (const data of chunks(rows.ReservedRange)) await tx.reservedRange.createMany({ data });
          for (const data of chunks(rows.Host)) await tx.host.createMany({ data });
          for (const data of chunks(rows.Subnet)) await tx.subnet.createMany({ data });
          for (const data of chunks(rows.Job)) await tx.job.createMany({ data });
          if (destination.dialect === 'postgresql') {
            // Ids were copied as they were: each table's sequence continues after the largest.
            for (const t of TABLES) {
              await tx.$queryRawUnsafe(`SELECT setval(pg_get_serial_sequence('"${t}"', 'id'), COALESCE((SELECT MAX("id") FROM "${t}"), 0) + 1, false)`);
            }
          }
        },
        { timeout: COPY_TIMEOUT_MS, maxWait: COPY_TIMEOUT_MS },
      );
      const copied = await countRows(destination.prisma);
      const expected: StoreCounts = {
        Pool: rows.Pool.length,
        ReservedRange: rows.ReservedRange.length,
        Host: rows.Host.length,
        Subnet: rows.Subnet.length,
        Job: rows.Job.length,
      };
      for (const t of TABLES) {
        if (copied[t] !== expected[t])
          throw new StoreMigrationError(`${t}: copied ${copied[t]} rows of ${expected[t]}; the target is incomplete, drop it and retry`);
      }
      return copied;
    } finally {
      await destination.prisma.$disconnect();
    }
  } finally {
    await source.prisma.$disconnect();
  }
}
