// The statements the controller writes as raw SQL, each for a measured reason; everything
// else goes through Prisma's query API. Kept in one place, each in both dialects: SQLite's
// `?` placeholders and untyped VALUES, PostgreSQL's `$n` placeholders with the casts its
// planner needs for a VALUES list of parameters.
import type { Prisma, PrismaClient } from '../generated/prisma/client.ts';
import type { Dialect } from './client.ts';

export type Tx = Prisma.TransactionClient;

function placeholders(dialect: Dialect, rows: number, columns: number, casts: string[] = []): string {
  let n = 0;
  const row = () => `(${Array.from({ length: columns }, (_, c) => (dialect === 'postgresql' ? `$${++n}${casts[c] ? `::${casts[c]}` : ''}` : '?')).join(', ')})`;
  return Array.from({ length: rows }, row).join(', ');
}

/**
 * One row to insert. Rows of the same table in a batch go in one multi-row INSERT: Prisma's
 * create costs about 2 ms of query planning each, a row in a shared INSERT a few microseconds.
 */
export interface BulkRow {
  table: 'Subnet';
  /** column -> value; every row of a table in a batch must have the same columns */
  values: Record<string, string | number>;
  /** a unique column, to match RETURNING rows back to their operations */
  key: string;
}

/** SQLite's limit on bound parameters in one statement is 32,766 (PostgreSQL's 65,535). */
export const MAX_PARAMETERS = 30_000;

/**
 * Raw because Prisma has no multi-row INSERT ... RETURNING: allocations committed together
 * (a batch of the writer) go in one statement per chunk; each inserted row is handed back by
 * its key.
 */
export async function insertRows(tx: Tx, dialect: Dialect, rows: BulkRow[], deliver: (row: Record<string, unknown>, index: number) => void): Promise<void> {
  const first = rows[0]!;
  const columns = Object.keys(first.values);
  const perChunk = Math.max(1, Math.floor(MAX_PARAMETERS / columns.length));
  for (let start = 0; start < rows.length; start += perChunk) {
    const chunk = rows.slice(start, start + perChunk);
    const values = placeholders(dialect, chunk.length, columns.length);
    const sql = `INSERT INTO "${first.table}" (${columns.map((c) => `"${c}"`).join(', ')}) VALUES ${values} RETURNING *`;
    const params = chunk.flatMap((r) => columns.map((c) => r.values[c]));
    const returned = await tx.$queryRawUnsafe<Record<string, unknown>[]>(sql, ...params);
    const byKey = new Map(returned.map((r) => [String(r[first.key]), r]));
    chunk.forEach((r, j) => {
      const row = byKey.get(String(r.values[r.key]));
      if (!row) throw new Error(`inserted ${first.table} row ${String(r.values[r.key])} did not come back`);
      deliver(row, start + j);
    });
  }
}

/**
 * Statements are bounded by bytes too. A host's initial sync carries its whole route table
 * (about 100 KiB at 1,000 hosts), and every byte of a statement's parameters passes through
 * Prisma's query compiler (WebAssembly, synchronous, about 45 ms a MiB here): the 10 MiB
 * statements of a batch of initial syncs held the event loop for half a second each, so new
 * connections and API calls waited, and grew the compiler's linear memory, which never shrinks.
 */
export const STATEMENT_BYTES = 256 * 2 ** 10;

/** Consecutive chunks of `rows`, each of at most `count` rows and STATEMENT_BYTES (but at least one row). */
function* byteChunks<T>(rows: T[], count: number, bytesOf: (row: T) => number): Generator<T[]> {
  let start = 0;
  while (start < rows.length) {
    let end = start;
    let bytes = 0;
    while (end < rows.length && end - start < count && (end === start || bytes + bytesOf(rows[end]!) <= STATEMENT_BYTES)) {
      bytes += bytesOf(rows[end]!);
      end++;
    }
    yield rows.slice(start, end);
    start = end;
  }
}

const FINISH_COLUMNS = 5;
const FINISHES_PER_STATEMENT = Math.floor(MAX_PARAMETERS / FINISH_COLUMNS);

/**
 * Raw because Prisma updates one row per statement: a fan-out's results (one per host) are
 * recorded in one UPDATE ... FROM (VALUES ...). One Prisma update each cost about 2 ms, and a
 * fan-out to 1,000 hosts queued 2 s of them ahead of the next change. Only jobs still waiting
 * are finished.
 */
export async function writeFinishes(
  tx: Tx,
  dialect: Dialect,
  rows: Array<{ id: number; status: string; results: string; error: string | null; finishedAt: string }>,
): Promise<void> {
  for (const chunk of byteChunks(rows, FINISHES_PER_STATEMENT, (r) => r.results.length)) {
    const values = placeholders(dialect, chunk.length, FINISH_COLUMNS, ['integer', 'text', 'text', 'text', 'timestamp(3)']);
    await tx.$executeRawUnsafe(
      `UPDATE "Job" SET "status" = v.column2, "results" = v.column3, "error" = v.column4, "finishedAt" = v.column5 FROM (VALUES ${values}) AS v WHERE "Job"."id" = v.column1 AND "Job"."status" IN ('pending', 'running')`,
      ...chunk.flatMap((r) => [r.id, r.status, r.results, r.error, r.finishedAt]),
    );
  }
}

const JOB_COLUMNS = ['hostId', 'generation', 'reason', 'status', 'commands', 'commandCount', 'createdAt'] as const;
const JOB_CASTS = ['integer', 'integer', 'text', 'text', 'text', 'integer', 'timestamp(3)'];

/**
 * Raw because Prisma's createMany passes every row through its query compiler (WebAssembly):
 * a storm's batch of initial syncs is megabytes of commands, which cost more time in that
 * compiler than in SQLite, and grew its linear memory (which never shrinks) by as much. One
 * multi-row INSERT per chunk; the ids come back in the order of `rows` (both stores number
 * the rows of one INSERT ... VALUES in order; each is checked against its host).
 */
export async function insertJobs(
  tx: Tx,
  dialect: Dialect,
  rows: Array<{ hostId: number; generation: number; reason: string; status: string; commands: string; commandCount: number; createdAt: string }>,
): Promise<number[]> {
  const ids: number[] = [];
  for (const chunk of byteChunks(rows, Math.floor(MAX_PARAMETERS / JOB_COLUMNS.length), (r) => r.commands.length)) {
    const returned = await tx.$queryRawUnsafe<Array<{ id: number | bigint; hostId: number | bigint }>>(
      `INSERT INTO "Job" (${JOB_COLUMNS.map((c) => `"${c}"`).join(', ')}) VALUES ${placeholders(dialect, chunk.length, JOB_COLUMNS.length, JOB_CASTS)} RETURNING "id", "hostId"`,
      ...chunk.flatMap((r) => JOB_COLUMNS.map((c) => r[c])),
    );
    const sorted = returned.map((r) => ({ id: Number(r.id), hostId: Number(r.hostId) })).sort((a, b) => a.id - b.id);
    chunk.forEach((row, i) => {
      if (sorted[i]?.hostId !== row.hostId) throw new Error(`inserted job ${i} of ${chunk.length} came back for host ${sorted[i]?.hostId}, not ${row.hostId}`);
      ids.push(sorted[i]!.id);
    });
  }
  return ids;
}

const PROGRESS_COLUMNS = 4;
const PROGRESS_PER_STATEMENT = Math.floor(MAX_PARAMETERS / PROGRESS_COLUMNS);

/**
 * Raw because Prisma updates one row per statement: the hosts' last-seen times and generations
 * (a storm moves every host's) in one UPDATE ... FROM (VALUES ...) per chunk, where a null
 * leaves the column as it is. 1,000 Prisma updates took about a second of the writer.
 */
export async function writeHostProgress(
  tx: Tx,
  dialect: Dialect,
  rows: Array<{ id: number; lastSeenAt: string | null; desiredGeneration: number | null; appliedGeneration: number | null }>,
): Promise<void> {
  for (let i = 0; i < rows.length; i += PROGRESS_PER_STATEMENT) {
    const chunk = rows.slice(i, i + PROGRESS_PER_STATEMENT);
    const values = placeholders(dialect, chunk.length, PROGRESS_COLUMNS, ['integer', 'timestamp(3)', 'integer', 'integer']);
    await tx.$executeRawUnsafe(
      `UPDATE "Host" SET "lastSeenAt" = COALESCE(v.column2, "Host"."lastSeenAt"), "desiredGeneration" = COALESCE(v.column3, "Host"."desiredGeneration"), "appliedGeneration" = COALESCE(v.column4, "Host"."appliedGeneration") FROM (VALUES ${values}) AS v WHERE "Host"."id" = v.column1`,
      ...chunk.flatMap((r) => [r.id, r.lastSeenAt, r.desiredGeneration, r.appliedGeneration]),
    );
  }
}

const PRUNE_HOSTS_PER_STATEMENT = 500;

/**
 * Raw because Prisma has no window functions: keeps the newest `keep` jobs of each given host
 * in one DELETE per chunk of hosts (two Prisma queries a host took seconds at 1,000 hosts).
 */
export async function pruneJobs(tx: Tx, dialect: Dialect, hostIds: number[], keep: number): Promise<void> {
  for (let i = 0; i < hostIds.length; i += PRUNE_HOSTS_PER_STATEMENT) {
    const chunk = hostIds.slice(i, i + PRUNE_HOSTS_PER_STATEMENT);
    const list = chunk.map((_, j) => (dialect === 'postgresql' ? `$${j + 2}::integer` : '?')).join(', ');
    const keepParam = dialect === 'postgresql' ? '$1::integer' : '?';
    await tx.$executeRawUnsafe(
      `DELETE FROM "Job" WHERE "id" IN (SELECT "id" FROM (SELECT "id", ROW_NUMBER() OVER (PARTITION BY "hostId" ORDER BY "id" DESC) AS "rank" FROM "Job" WHERE "hostId" IN (${list})) AS ranked WHERE "rank" > ${keepParam})`,
      ...(dialect === 'postgresql' ? [keep, ...chunk] : [...chunk, keep]),
    );
  }
}

/**
 * Raw because it runs for every executor connection and poll: Prisma's findUnique cost about
 * 2.5 ms here (query compilation), this 0.7 ms, and a reconnect storm makes thousands of them.
 */
export async function findHostByTokenHash(
  db: Tx | PrismaClient,
  dialect: Dialect,
  tokenHash: string,
): Promise<{ id: number; name: string; address: string; interface: string } | null> {
  const rows = await db.$queryRawUnsafe<Array<{ id: number | bigint; name: string; address: string; interface: string }>>(
    `SELECT "id", "name", "address", "interface" FROM "Host" WHERE "tokenHash" = ${dialect === 'postgresql' ? '$1' : '?'}`,
    tokenHash,
  );
  const row = rows[0];
  return row ? { id: Number(row.id), name: row.name, address: row.address, interface: row.interface } : null;
}
