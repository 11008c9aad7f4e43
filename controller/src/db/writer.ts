// The controller's one database writer: every write (allocations, hosts, pools, jobs, host
// progress) is queued, checked against memory one at a time (where it claims what it takes),
// and committed to the database in batches (one transaction for whatever queued up while the
// previous batch was committing). An operation is acknowledged only after its batch has
// committed: nothing that got a 2xx can be lost. Only then does it change the fleet model;
// a failed commit gives back every claim of its batch and retries each operation alone.
import { mapDatabaseError } from './constraint-errors.ts';
import { MAX_PARAMETERS, insertRows, type BulkRow, type Tx } from './raw-sql.ts';
import { StorageHealth } from './storage.ts';
import { dialectOf, type Dialect } from './client.ts';
import { ApiError } from '../errors.ts';
import type { PrismaClient } from '../generated/prisma/client.ts';

export type { BulkRow, Tx } from './raw-sql.ts';

export type Prepared<T> = PreparedBase<T> & ({ write(tx: Tx): Promise<T>; bulk?: never } | { bulk: BulkRow; write?: never });

interface PreparedBase<T> {
  /** Gives back what prepare() claimed. */
  undo(): void;
  /** Runs after the commit, before the caller is answered. */
  committed?(result: T): void;
}

interface Queued {
  prepare: () => Prepared<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** Upper bound on operations per transaction, so one commit never holds the database long. */
export const MAX_BATCH_OPERATIONS = 256;
const TRANSACTION_TIMEOUT_MS = 30_000;

export class DatabaseWriter {
  private readonly queue: Queued[] = [];
  private draining = false;
  private idleWaiters: Array<() => void> = [];
  /**
   * Runs first in every transaction and throws to refuse it: the leadership's term check
   * (leadership/), so a controller that lost the leader lock commits nothing. With a fence,
   * every batch is a transaction (no lone INSERT).
   */
  fence: ((tx: Tx) => Promise<void>) | undefined;
  /** the SQL dialect of raw statements (db/raw-sql.ts) written through this writer */
  readonly dialect: Dialect;

  constructor(
    private readonly prisma: PrismaClient,
    /** what the last commit found: /healthz reports it */
    readonly storage = new StorageHealth(),
  ) {
    this.dialect = dialectOf(prisma);
  }

  /**
   * Queues an operation. `prepare` runs synchronously against the in-memory index when the
   * operation's turn comes; it throws to refuse (nothing changes) or returns its writes.
   */
  run<T>(prepare: () => Prepared<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ prepare, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
  }

  /** Resolves once every queued operation has been answered. */
  idle(): Promise<void> {
    if (!this.draining && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        // Let the event loop read the requests already waiting on their sockets first: they
        // join this batch and share its commit (one fsync) instead of queueing one by one.
        // Measured with 16 clients: 814 -> 1,650 allocations/s; one client pays one turn.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const batch = this.queue.splice(0, MAX_BATCH_OPERATIONS);
        await this.commit(batch);
      }
    } finally {
      this.draining = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** A batch that is one INSERT statement is atomic by itself: no interactive transaction. */
  private async insertAlone(rows: BulkRow[]): Promise<unknown[]> {
    const out: unknown[] = new Array(rows.length);
    await insertRows(this.prisma as unknown as Tx, this.dialect, rows, (row, i) => (out[i] = row));
    return out;
  }

  private async commit(batch: Queued[]): Promise<void> {
    const accepted: Array<{ item: Queued; prepared: Prepared<unknown> }> = [];
    for (const item of batch) {
      try {
        accepted.push({ item, prepared: item.prepare() });
      } catch (error) {
        item.reject(error);
      }
    }
    if (accepted.length === 0) return;

    let results: unknown[];
    try {
      results =
        !this.fence && accepted.every((a) => a.prepared.bulk) && fitsOneStatement(accepted.map((a) => a.prepared.bulk!))
          ? await this.insertAlone(accepted.map((a) => a.prepared.bulk!))
          : await this.prisma.$transaction(
              async (tx) => {
                await this.fence?.(tx as unknown as Tx);
                const out: unknown[] = new Array(accepted.length);
                const bulk: number[] = [];
                for (const [i, { prepared }] of accepted.entries()) {
                  if (prepared.bulk) bulk.push(i);
                  else out[i] = await prepared.write!(tx);
                }
                if (bulk.length > 0)
                  await insertRows(
                    tx,
                    this.dialect,
                    bulk.map((i) => accepted[i]!.prepared.bulk!),
                    (row, j) => (out[bulk[j]!] = row),
                  );
                return out;
              },
              { timeout: TRANSACTION_TIMEOUT_MS, maxWait: TRANSACTION_TIMEOUT_MS },
            );
    } catch (error) {
      for (const { prepared } of [...accepted].reverse()) prepared.undo();
      // The disk, not an operation: every operation would fail alone too. Answer all at once.
      const unwritable = this.storage.failed(error);
      if (unwritable) {
        for (const { item } of accepted) item.reject(unwritable);
        return;
      }
      // Not the leader (any more): no operation may be written, alone or not.
      if (error instanceof ApiError && error.code === 'NOT_LEADER') {
        for (const { item } of accepted) item.reject(error);
        return;
      }
      if (accepted.length === 1) {
        accepted[0]!.item.reject(mapDatabaseError(error));
        return;
      }
      // One operation spoiled the batch: isolate it by committing each alone.
      for (const { item } of accepted) await this.commit([item]);
      return;
    }

    this.storage.succeeded();
    accepted.forEach(({ item, prepared }, i) => {
      try {
        prepared.committed?.(results[i]);
      } finally {
        item.resolve(results[i]);
      }
    });
  }
}

function fitsOneStatement(rows: BulkRow[]): boolean {
  const first = rows[0]!;
  return rows.every((r) => r.table === first.table) && rows.length * Object.keys(first.values).length <= MAX_PARAMETERS;
}
