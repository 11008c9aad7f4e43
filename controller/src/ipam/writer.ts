// The one writer for everything the allocator decides: operations are queued, checked and
// applied to the in-memory index one at a time, and committed to the database in batches
// (one transaction for whatever queued up while the previous batch was committing).
// An operation is acknowledged only after its batch has committed: nothing that got a 2xx
// can be lost, and the in-memory index never disagrees with the database for long, since
// a failed commit undoes its batch in memory and retries each operation alone.
import type { Prisma, PrismaClient } from '../generated/prisma/client.ts';

export type Tx = Prisma.TransactionClient;

export interface Prepared<T> {
  /** The database writes, run inside the batch's transaction. */
  write(tx: Tx): Promise<T>;
  /** Reverts what prepare() did to the in-memory index. */
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

export class SerialWriter {
  private readonly queue: Queued[] = [];
  private draining = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly prisma: PrismaClient,
    private readonly mapError: (error: unknown) => unknown = (e) => e,
  ) {}

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
      results = await this.prisma.$transaction(
        async (tx) => {
          const out: unknown[] = [];
          for (const { prepared } of accepted) out.push(await prepared.write(tx));
          return out;
        },
        { timeout: TRANSACTION_TIMEOUT_MS, maxWait: TRANSACTION_TIMEOUT_MS },
      );
    } catch (error) {
      for (const { prepared } of [...accepted].reverse()) prepared.undo();
      if (accepted.length === 1) {
        accepted[0]!.item.reject(this.mapError(error));
        return;
      }
      // One operation spoiled the batch: isolate it by committing each alone.
      for (const { item } of accepted) await this.commit([item]);
      return;
    }

    accepted.forEach(({ item, prepared }, i) => {
      try {
        prepared.committed?.(results[i]);
      } finally {
        item.resolve(results[i]);
      }
    });
  }
}
