// Job records: created in batches (one transaction per fan-out), finished as results arrive,
// timed out when no answer comes, and pruned to a bounded history per host.
import { EventEmitter } from 'node:events';
import type { Command } from '@crossdock/shared';
import type { JobResultItem } from '@crossdock/shared';
import { prismaTimestamp } from '../db/timestamp.ts';
import type { PrismaClient } from '../generated/prisma/client.ts';
import { insertJobs, pruneJobs, writeFinishes, writeHostProgress } from '../db/raw-sql.ts';
import type { DatabaseWriter } from '../db/writer.ts';

/** Under the bound-parameter limit of every store (SQLite's adapter checks 999). */
const IDS_PER_STATEMENT = 500;

/** A job is created running (sent at once); the API's status also admits 'pending' (DESIGN.md). */
export type JobStatus = 'running' | 'succeeded' | 'failed' | 'timeout';

export interface NewJob {
  hostId: number;
  generation: number;
  reason: string;
  commands: Command[];
  status: JobStatus;
}

export const JOB_HISTORY_PER_HOST = 100;

/** A command's result as recorded: without the executor's text (the history renders its own). */
export type StoredResult = Omit<JobResultItem, 'text'>;

/** What JobStore.events carries, for the metrics: sent jobs, and how each ended. */
export interface JobEvents {
  /** a fan-out's jobs are recorded and about to be sent */
  created: [jobs: Array<{ id: number; hostId: number; reason: string }>];
  /** a result arrived */
  finished: [job: { id: number; status: JobStatus }];
  /** no result arrived within the job timeout */
  timedOut: [jobIds: number[]];
  /** jobs were created, finished or timed out, and the database says so */
  jobs: [jobIds: number[]];
}

export class JobStore {
  /** created, finished and timedOut as they happen (metrics), 'jobs' (ids) once they are in the database (the event stream) */
  readonly events = new EventEmitter<JobEvents>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly writer: DatabaseWriter,
  ) {}

  /** Inserts the jobs of one fan-out in one transaction; returns their ids in order. */
  create(jobs: NewJob[]): Promise<number[]> {
    if (jobs.length === 0) return Promise.resolve([]);
    const createdAt = prismaTimestamp();
    return this.writer
      .run(() => ({
        write: (tx) =>
          insertJobs(
            tx,
            this.writer.dialect,
            jobs.map((j) => ({
              hostId: j.hostId,
              generation: j.generation,
              reason: j.reason,
              status: j.status,
              commands: JSON.stringify(j.commands),
              commandCount: j.commands.length,
              createdAt,
            })),
          ),
        committed: (ids: number[]) =>
          this.events.emit(
            'created',
            jobs.map((j, i) => ({ id: ids[i]!, hostId: j.hostId, reason: j.reason })),
          ),
        undo: () => {},
      }))
      .then((ids) => this.announce(ids));
  }

  private announce<T extends number[]>(ids: T): T {
    if (ids.length > 0) this.events.emit('jobs', ids);
    return ids;
  }

  private finishes: Array<{ id: number; status: JobStatus; results: string; error: string | null; finishedAt: string }> = [];
  private finishing: Promise<void> | undefined;

  /**
   * Records a job's outcome. Outcomes arriving together (a fan-out's results) are written in
   * one UPDATE ... FROM (VALUES ...) statement: one Prisma update each cost about 2 ms, and a
   * fan-out to 1,000 hosts queued 2 s of them ahead of the next change's jobs.
   */
  finish(jobId: number, outcome: { status: JobStatus; results: StoredResult[]; error?: string }): Promise<void> {
    this.events.emit('finished', { id: jobId, status: outcome.status });
    this.finishes.push({
      id: jobId,
      status: outcome.status,
      results: JSON.stringify(outcome.results),
      error: outcome.error ?? null,
      finishedAt: prismaTimestamp(),
    });
    this.finishing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      const batch = this.finishes;
      this.finishes = [];
      this.finishing = undefined;
      return this.writer
        .run(() => ({ write: (tx) => writeFinishes(tx, this.writer.dialect, batch), undo: () => {} }))
        .then(() => void this.announce(batch.map((f) => f.id)));
    });
    return this.finishing;
  }

  /** Jobs whose result will never be taken: past their deadline, or sent to a connection that has since been replaced. */
  timeOut(jobIds: number[], error = 'no result arrived within the job timeout'): Promise<void> {
    if (jobIds.length === 0) return Promise.resolve();
    this.events.emit('timedOut', jobIds);
    return this.writer
      .run(() => ({
        write: async (tx) => {
          // A fan-out times out a job per host at once: more ids than one statement may bind.
          for (let i = 0; i < jobIds.length; i += IDS_PER_STATEMENT) {
            await tx.job.updateMany({
              where: { id: { in: jobIds.slice(i, i + IDS_PER_STATEMENT) }, status: { in: ['pending', 'running'] } },
              data: { status: 'timeout', error, finishedAt: new Date() },
            });
          }
        },
        undo: () => {},
      }))
      .then(() => void this.announce(jobIds));
  }

  /** Keeps the newest JOB_HISTORY_PER_HOST jobs of each given host. */
  prune(hostIds: Iterable<number>): Promise<void> {
    const ids = [...hostIds];
    if (ids.length === 0) return Promise.resolve();
    return this.writer.run(() => ({ write: (tx) => pruneJobs(tx, this.writer.dialect, ids, JOB_HISTORY_PER_HOST), undo: () => {} }));
  }

  /**
   * Writes what the reconciler keeps in memory between flushes (last-seen times, generations):
   * derived figures, so a few seconds' delay costs nothing but saves a write per change per host.
   */
  saveHostProgress(progress: Map<number, { lastSeenAt?: Date; desiredGeneration?: number; appliedGeneration?: number }>): Promise<void> {
    if (progress.size === 0) return Promise.resolve();
    const rows = [...progress].map(([id, p]) => ({
      id,
      lastSeenAt: p.lastSeenAt ? prismaTimestamp(p.lastSeenAt) : null,
      desiredGeneration: p.desiredGeneration ?? null,
      appliedGeneration: p.appliedGeneration ?? null,
    }));
    return this.writer.run(() => ({ write: (tx) => writeHostProgress(tx, this.writer.dialect, rows), undo: () => {} }));
  }

  /** The generations saveHostProgress wrote, read back at start. */
  loadHostProgress(): Promise<Array<{ id: number; desiredGeneration: number; appliedGeneration: number }>> {
    return this.prisma.host.findMany({ select: { id: true, desiredGeneration: true, appliedGeneration: true } });
  }

  /** The highest generation each host's jobs carry: generations never go back after a restart. */
  async highestJobGenerations(): Promise<Map<number, number>> {
    const rows = await this.prisma.job.groupBy({ by: ['hostId'], _max: { generation: true } });
    return new Map(rows.map((r) => [r.hostId, r._max.generation ?? 0]));
  }

  /** Jobs left pending or running by a previous controller process can never be answered. */
  async abandonUnfinished(): Promise<number> {
    const { count } = await this.prisma.job.updateMany({
      where: { status: { in: ['pending', 'running'] } },
      data: { status: 'timeout', error: 'the controller restarted before a result arrived', finishedAt: new Date() },
    });
    return count;
  }
}
