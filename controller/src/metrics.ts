// Prometheus metrics of one controller. Gauges are computed at scrape time from what the
// controller holds in memory (FleetStatus); counters and histograms are fed by events (jobs
// recorded, results, timeouts, allocations). No label carries a host, a subnet or a job: the
// label values are the bounded sets below, so 10,000 hosts make no more series than 10.
import type { Admission } from './agents/admission.ts';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EventEmitter } from 'node:events';
import type { JobEvents } from './agents/jobs.ts';
import { ApiError } from './errors.ts';
import { HOST_STATUSES, TRANSPORTS, type FleetStatus } from './fleet-status.ts';

/** crossdock_allocations_total{result}: allocated, the pool was full, refused as invalid or conflicting, failed otherwise. */
export const ALLOCATION_RESULTS = ['success', 'exhausted', 'rejected', 'error'] as const;
export type AllocationResult = (typeof ALLOCATION_RESULTS)[number];

/** crossdock_jobs_total{reason}: an executor (re)connected, its report differed from desired, or an IPAM change. */
export const JOB_REASONS = ['connect', 'drift', 'change'] as const;
export type JobReason = (typeof JOB_REASONS)[number];

/** The reconciler's reason texts name hosts and subnets ("subnet 10.1.0.0/24 allocated to h1"); a label takes only the kind. */
export function jobReasonKind(reason: string): JobReason {
  return reason === 'connect' || reason === 'drift' ? reason : 'change';
}

export function allocationResultOf(error: unknown): AllocationResult {
  if (!(error instanceof ApiError)) return 'error';
  if (error.code === 'POOL_EXHAUSTED') return 'exhausted';
  return error.statusCode < 500 ? 'rejected' : 'error';
}

/** A sent job is forgotten after this long without a result or timeout (its host was deleted meanwhile). */
const FORGET_SENT_JOB_MS = 10 * 60_000;

export class ControllerMetrics {
  readonly registry = new Registry();
  private readonly sent = new Map<number, { startedAt: number; reason: JobReason }>();
  private readonly allocations: Counter<'result'>;
  private readonly allocationSeconds: Histogram;
  private readonly detach: () => void;

  constructor(options: { status: FleetStatus; jobEvents: EventEmitter<JobEvents>; version: string; admission?: Admission }) {
    const { registry } = this;
    const { status } = options;
    collectDefaultMetrics({ register: registry });

    new Gauge({
      name: 'crossdock_build_info',
      help: 'The running controller version (always 1).',
      labelNames: ['version'],
      registers: [registry],
    }).set({ version: options.version }, 1);

    // One summary per scrape serves every fleet gauge: the collect of the first one computes it.
    let summary: ReturnType<FleetStatus['summary']> | undefined;
    new Gauge({
      name: 'crossdock_hosts',
      help: 'Registered hosts by status: pending (no executor ever connected), online, offline.',
      labelNames: ['status'],
      registers: [registry],
      collect() {
        summary = status.summary();
        for (const s of HOST_STATUSES) this.set({ status: s }, summary.hosts[s]);
      },
    });
    new Gauge({
      name: 'crossdock_hosts_behind',
      help: 'Hosts whose applied generation is below their desired generation, by host status (offline hosts stay behind until they return).',
      labelNames: ['status'],
      registers: [registry],
      collect() {
        const counts = { pending: 0, online: 0, offline: 0 };
        for (const host of (summary ?? status.summary()).behind) counts[host.status]++;
        for (const s of HOST_STATUSES) this.set({ status: s }, counts[s]);
      },
    });
    new Gauge({
      name: 'crossdock_agent_sessions',
      help: 'Executors attached to this controller, by transport.',
      labelNames: ['transport'],
      registers: [registry],
      collect() {
        const sessions = (summary ?? status.summary()).sessions;
        for (const t of TRANSPORTS) this.set({ transport: t }, sessions[t]);
      },
    });
    const { admission } = options;
    if (admission) {
      new Gauge({
        name: 'crossdock_agent_syncing',
        help: 'Executors connected whose hello is not yet planned and sent (at most the --max-syncing limit).',
        registers: [registry],
        collect() {
          this.set(admission.inProgress);
        },
      });
      new Counter({
        name: 'crossdock_agent_refused_total',
        help: 'Executor connections told to come back later (503 CONTROLLER_BUSY) because --max-syncing executors were syncing.',
        registers: [registry],
        collect() {
          this.reset();
          this.inc(admission.refused);
        },
      });
    }
    new Gauge({
      name: 'crossdock_pool_subnets',
      help: "Blocks of each pool's subnet size: allocated, free, or touched by a reserved range.",
      labelNames: ['pool', 'state'],
      registers: [registry],
      collect() {
        this.reset(); // a deleted pool's series go away
        for (const pool of (summary ?? status.summary()).pools) {
          this.set({ pool: pool.name, state: 'allocated' }, pool.allocated);
          this.set({ pool: pool.name, state: 'free' }, pool.free);
          this.set({ pool: pool.name, state: 'reserved' }, pool.reserved);
        }
        summary = undefined;
      },
    });

    this.allocations = new Counter({
      name: 'crossdock_allocations_total',
      help: 'Subnet allocations (POST /v1/subnets and the first subnet of POST /v1/hosts) by result: success, exhausted, rejected, error.',
      labelNames: ['result'],
      registers: [registry],
    });
    for (const r of ALLOCATION_RESULTS) this.allocations.inc({ result: r }, 0);
    this.allocationSeconds = new Histogram({
      name: 'crossdock_allocation_duration_seconds',
      help: 'Time from an allocation request reaching the allocator to its commit (or refusal), queueing included.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });

    const jobs = new Counter({
      name: 'crossdock_jobs_total',
      help: 'Jobs that ended, by status (succeeded, failed, timeout) and reason (connect, drift, change).',
      labelNames: ['status', 'reason'],
      registers: [registry],
    });
    for (const s of ['succeeded', 'failed', 'timeout']) for (const r of JOB_REASONS) jobs.inc({ status: s, reason: r }, 0);
    const jobSeconds = new Histogram({
      name: 'crossdock_job_duration_seconds',
      help: "Time from a job's dispatch to its result.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    });
    const driftRepairs = new Counter({
      name: 'crossdock_drift_repairs_total',
      help: 'Jobs that put back what had drifted on a host (its report differed from desired) and succeeded.',
      registers: [registry],
    });

    const onCreated: (...args: JobEvents['created']) => void = (created) => {
      const now = performance.now();
      for (const job of created) this.sent.set(job.id, { startedAt: now, reason: jobReasonKind(job.reason) });
      if (this.sent.size > 1000) this.forgetStale(now);
    };
    const onFinished: (...args: JobEvents['finished']) => void = ({ id, status: jobStatus }) => {
      const job = this.sent.get(id);
      this.sent.delete(id);
      const reason = job?.reason ?? 'change';
      jobs.inc({ status: jobStatus, reason });
      if (job) jobSeconds.observe((performance.now() - job.startedAt) / 1000);
      if (jobStatus === 'succeeded' && reason === 'drift') driftRepairs.inc();
    };
    const onTimedOut: (...args: JobEvents['timedOut']) => void = (ids) => {
      for (const id of ids) {
        const job = this.sent.get(id);
        this.sent.delete(id);
        jobs.inc({ status: 'timeout', reason: job?.reason ?? 'change' });
      }
    };
    options.jobEvents.on('created', onCreated);
    options.jobEvents.on('finished', onFinished);
    options.jobEvents.on('timedOut', onTimedOut);
    this.detach = () => {
      options.jobEvents.off('created', onCreated);
      options.jobEvents.off('finished', onFinished);
      options.jobEvents.off('timedOut', onTimedOut);
    };
  }

  /** Runs an allocation, counting its result and timing it. */
  async timeAllocation<T>(allocate: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      const result = await allocate();
      this.recordAllocation('success', start);
      return result;
    } catch (error) {
      this.recordAllocation(allocationResultOf(error), start);
      throw error;
    }
  }

  private recordAllocation(result: AllocationResult, start: number): void {
    this.allocations.inc({ result });
    this.allocationSeconds.observe((performance.now() - start) / 1000);
  }

  private forgetStale(now: number): void {
    for (const [id, job] of this.sent) if (now - job.startedAt > FORGET_SENT_JOB_MS) this.sent.delete(id);
  }

  close(): void {
    this.detach();
  }
}
