// The statements the controller writes as raw SQL, each for a measured reason; everything
// else goes through Prisma's query API. Kept in one place, each in both dialects: SQLite's
// `?` placeholders and untyped VALUES, PostgreSQL's `$n` placeholders with the casts its
// planner needs for a VALUES list of parameters.
import type { Prisma } from '../generated/prisma/client.ts';
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
  for (let i = 0; i < rows.length; i += FINISHES_PER_STATEMENT) {
    const chunk = rows.slice(i, i + FINISHES_PER_STATEMENT);
    const values = placeholders(dialect, chunk.length, FINISH_COLUMNS, ['integer', 'text', 'text', 'text', 'timestamp(3)']);
    await tx.$executeRawUnsafe(
      `UPDATE "Job" SET "status" = v.column2, "results" = v.column3, "error" = v.column4, "finishedAt" = v.column5 FROM (VALUES ${values}) AS v WHERE "Job"."id" = v.column1 AND "Job"."status" IN ('pending', 'running')`,
      ...chunk.flatMap((r) => [r.id, r.status, r.results, r.error, r.finishedAt]),
    );
  }
}
