// The controller's loop: it turns IPAM changes and executor reports into jobs.
//
// Level-based: correctness never depends on a message arriving. A change fans out as the few
// commands it implies (a route to the new subnet on every other host: constant per host,
// linear per change). Executors report a digest of what they observe; a digest that differs
// from the digest of the host's desired state makes the controller ask for the whole
// snapshot and send the full diff.
import { EventEmitter } from 'node:events';
import { addHash, itemHash, subtractHash, type Command, type Hello, type JobResult, type JobResultItem, type ObservedState } from '@crossdock/shared';
import type { FastifyBaseLogger } from 'fastify';
import { isStorageUnavailable } from '../db/storage.ts';
import {
  UNKNOWN_ENVIRONMENT,
  desiredDigest,
  desiredState,
  environmentOf,
  MAX_REACH_RULES,
  desiredPeerItems,
  peerEntries,
  routeDigestSum,
  subnetReach,
  type HostEnvironment,
  type PlanHost,
} from '../planner/desired.ts';
import { planChange, type HostDelta } from '../planner/change.ts';
import { plan } from '../planner/plan.ts';
import type { Fleet, FleetEvent } from '../fleet.ts';
import type { PeerDto } from '../schemas.ts';
import { CLOSE_REVOKED, type AgentHub, type Session } from './hub.ts';
import type { JobStatus, JobStore, StoredResult } from './jobs.ts';

export interface ReconcilerOptions {
  jobTimeoutMs: number;
  reconcileIntervalMs: number;
  heartbeatIntervalMs: number;
}

export const DEFAULT_RECONCILER_OPTIONS: ReconcilerOptions = {
  jobTimeoutMs: 60_000,
  reconcileIntervalMs: 30_000,
  heartbeatIntervalMs: 10_000,
};

const SWEEP_INTERVAL_MS = 1_000;
const PROGRESS_FLUSH_INTERVAL_MS = 2_000;
const PRUNE_INTERVAL_MS = 60_000;
const SNAPSHOT_WAIT_MS = 5_000;
/**
 * Stale routes of ours a host may report beyond what the fleet could give it: a fleet that
 * shrank while the host was away. Past that, a report is refused rather than planned on.
 */
const OBSERVED_ROUTE_SLACK = 4_096;
/**
 * Hellos planned together: their jobs share one insert. Bounded so a storm's batch holds a
 * bounded number of full route tables at once (each host's plan is dropped once its job is sent).
 */
const HELLO_BATCH = 100;
/** Planning a batch of hellos yields to other requests after this much work. */
const PLAN_SLICE_MS = 20;
/** Route deletions one job carries; the rest follow in the next jobs, report by report. */
export const MAX_ROUTE_DELETES_PER_JOB = 2_000;
/** What one executor message may hold besides routes: chains, networks, interfaces, output. */
const MESSAGE_BASE_BYTES = 4 * 2 ** 20;
/** One route in a report (about 80 bytes of JSON) or its item in a job result (about 200). */
const MESSAGE_BYTES_PER_ROUTE = 256;

interface Inflight {
  generation: number;
  deadline: number;
  commandCount: number;
}

/** Why a result was not taken: it is dropped and the job is left as it was. */
export type ResultRefusal = { reason: 'not-waiting'; message: string } | { reason: 'invalid'; message: string };

interface HostRuntime {
  env: HostEnvironment;
  /** cached sum of the hashes of the host's desired routes; null: recompute */
  routeSum: number | null;
  desiredGeneration: number;
  appliedGeneration: number;
  inflight: Map<number, Inflight>;
  helloSeen: boolean;
  snapshotWaiters: Array<(state: ObservedState) => void>;
  /** what the last plan left alone, to log it once, not on every report */
  skipped: string;
}

interface Dispatch {
  hostId: number;
  commands: Command[];
  reason: string;
  /** the host's desired state changed: bump its generation */
  bump: boolean;
}

export class Reconciler {
  /** 'host' (hostId) when its last-seen time or generations moved: what the event stream follows; 'work' (count) when a batch of hellos was planned and sent, or a result taken */
  readonly progress = new EventEmitter();
  private readonly runtimes = new Map<number, HostRuntime>();
  private chain: Promise<void> = Promise.resolve();
  /** host progress not yet written: last-seen times and generations */
  private readonly unsaved = new Map<number, { lastSeenAt?: Date; desiredGeneration?: number; appliedGeneration?: number }>();
  private readonly jobbedHosts = new Set<number>();
  /** hellos waiting to be planned, by host: a newer hello replaces an older one */
  private readonly hellos = new Map<number, { hello: Hello; handled: () => void }>();
  private helloFlush: Promise<void> | undefined;
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly fleet: Fleet,
    private readonly hub: AgentHub,
    private readonly jobs: JobStore,
    private readonly log: FastifyBaseLogger,
    readonly options: ReconcilerOptions,
  ) {}

  /** Loads the hosts' generations, starts the sweep timers. */
  async start(): Promise<void> {
    const generations = await this.jobs.loadHostProgress();
    const fromJobs = await this.jobs.highestJobGenerations();
    for (const g of generations) {
      const rt = this.runtime(g.id);
      rt.desiredGeneration = Math.max(g.desiredGeneration, fromJobs.get(g.id) ?? 0);
      rt.appliedGeneration = Math.min(g.appliedGeneration, rt.desiredGeneration);
    }
    if (this.fleet.policy.hostRulesLeftOut > 0) this.warnHostRulesLeftOut();
    const abandoned = await this.jobs.abandonUnfinished();
    if (abandoned > 0) this.log.info({ abandoned }, 'marked jobs of the previous run as timed out');
    this.timers.push(setInterval(() => this.enqueue(() => this.sweep()), SWEEP_INTERVAL_MS));
    this.timers.push(setInterval(() => void this.flushProgress(), PROGRESS_FLUSH_INTERVAL_MS));
    this.timers.push(setInterval(() => void this.prune(), PRUNE_INTERVAL_MS));
    for (const t of this.timers) t.unref();
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.chain;
    await this.flushProgress();
  }

  /** Resolves when every queued event has been handled. */
  idle(): Promise<void> {
    return this.chain;
  }

  private enqueue(task: () => Promise<void> | void): Promise<void> {
    const next = this.chain.then(task).catch((error: unknown) => this.logFailure(error, 'reconcile step failed'));
    this.chain = next;
    return next;
  }

  /** A storage failure is logged by StorageHealth (once a minute at most), not once per step. */
  private logFailure(error: unknown, message: string, fields: object = {}): void {
    if (!isStorageUnavailable(error)) this.log.error({ ...fields, err: error }, message);
  }

  private runtime(hostId: number): HostRuntime {
    let rt = this.runtimes.get(hostId);
    if (!rt) {
      rt = {
        env: UNKNOWN_ENVIRONMENT,
        routeSum: null,
        desiredGeneration: 0,
        appliedGeneration: 0,
        inflight: new Map(),
        helloSeen: false,
        snapshotWaiters: [],
        skipped: '',
      };
      this.runtimes.set(hostId, rt);
    }
    return rt;
  }

  /** The most routes a report may hold: twice what the fleet could give one host, plus slack. */
  routeBudget(): number {
    return 2 * this.fleet.subnetCount + OBSERVED_ROUTE_SLACK;
  }

  /**
   * The most bytes one executor message may take, checked before it is parsed: parsing a
   * 10 MB report blocks the event loop for everyone else (a 200,000-route hello took 0.7 s).
   */
  messageByteLimit(): number {
    return MESSAGE_BASE_BYTES + this.routeBudget() * MESSAGE_BYTES_PER_ROUTE;
  }

  /** Why a snapshot is too large to plan on, or null. */
  reportProblem(state: ObservedState | undefined): string | null {
    if (!state || state.routes.length <= this.routeBudget()) return null;
    return `the report holds ${state.routes.length} routes of crossdock's protocol, more than the ${this.routeBudget()} a host of this fleet (${this.fleet.subnetCount} subnets) could have; check \`ip route show proto 252\` on the host`;
  }

  /** Whether the host has never applied a job: a newcomer to the fleet (or one whose every job failed). */
  neverSynced(hostId: number): boolean {
    return (this.runtimes.get(hostId)?.appliedGeneration ?? 0) === 0;
  }

  generationOf(hostId: number): { desired: number; applied: number } {
    const rt = this.runtimes.get(hostId);
    return { desired: rt?.desiredGeneration ?? 0, applied: rt?.appliedGeneration ?? 0 };
  }

  private note(hostId: number, data: { lastSeenAt?: Date; desiredGeneration?: number; appliedGeneration?: number }): void {
    this.unsaved.set(hostId, { ...this.unsaved.get(hostId), ...data });
    this.progress.emit('host', hostId);
  }

  touch(hostId: number): void {
    const now = new Date();
    this.note(hostId, { lastSeenAt: now });
    this.hub.seen(hostId, now);
  }

  /** The host has `generation` (default: what it should have now) in place. */
  private markApplied(hostId: number, rt: HostRuntime, generation = rt.desiredGeneration): void {
    if (rt.appliedGeneration >= generation) return;
    rt.appliedGeneration = generation;
    this.note(hostId, { appliedGeneration: rt.appliedGeneration });
  }

  // ---- executor events ----

  onAttach(session: Session): void {
    this.touch(session.hostId);
    // A polling executor may ask for jobs before saying hello: ask it for its state.
    if (session.transport === 'polling') void this.enqueue(() => void this.hub.send(session.hostId, { type: 'state.request' }));
  }

  onDetach(hostId: number): void {
    this.touch(hostId);
    const rt = this.runtimes.get(hostId);
    if (rt) rt.helloSeen = false;
  }

  /**
   * A host said hello with its whole state. Hellos that arrive together (every executor
   * reconnecting after a controller restart or a takeover) are planned together, in batches
   * that share one job insert; a host whose digest already matches costs no planning and no job.
   */
  onHello(hostId: number, hello: Hello): Promise<void> {
    this.touch(hostId);
    return new Promise((handled) => {
      // A newer hello of the same host replaces the older: both are answered by the newer's plan.
      const earlier = this.hellos.get(hostId);
      this.hellos.set(hostId, {
        hello,
        handled: () => {
          earlier?.handled();
          handled();
        },
      });
      this.helloFlush ??= this.enqueue(() => this.flushHellos());
    });
  }

  private async flushHellos(): Promise<void> {
    // Let the event loop read the hellos already waiting on their sockets: they join this batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.helloFlush = undefined;
    const batch = [...this.hellos].slice(0, HELLO_BATCH);
    for (const [hostId] of batch) this.hellos.delete(hostId);
    // Hellos beyond this batch, or arriving while it is sent, make the next one.
    if (this.hellos.size > 0) this.helloFlush = this.enqueue(() => this.flushHellos());
    try {
      await this.dispatch(await this.planHellos(batch.map(([hostId, { hello }]) => [hostId, hello])));
    } finally {
      for (const [, { handled }] of batch) handled();
      this.progress.emit('work', batch.length);
    }
  }

  private async planHellos(batch: Array<[number, Hello]>): Promise<Dispatch[]> {
    const dispatches: Dispatch[] = [];
    const superseded: number[] = [];
    let sliceStarted = performance.now();
    for (const [hostId, hello] of batch) {
      // A batch of full tables is long work: let /healthz and the API in between. A change
      // committed meanwhile is planned against the model it leaves, as always; the hosts of
      // this batch not yet planned are not reachable for it, and get it in their own plan.
      if (performance.now() - sliceStarted > PLAN_SLICE_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStarted = performance.now();
      }
      const rt = this.runtime(hostId);
      rt.helloSeen = true;
      const host = this.fleet.hosts.get(hostId);
      if (!host) continue;
      rt.env = environmentOf(hello.state);
      // Jobs sent to the executor's previous connection: it ran them or lost them, and the
      // state it says hello with shows which. Waiting for their results would hold the host
      // out of sync until they time out.
      if (rt.inflight.size > 0) {
        superseded.push(...rt.inflight.keys());
        rt.inflight.clear();
      }
      if (rt.inflight.size === 0 && this.expectedDigest(hostId) === hello.digest) {
        this.markApplied(hostId, rt);
        continue;
      }
      const planned = this.planSnapshot(hostId, hello.state, 'connect');
      if (planned) dispatches.push(planned);
    }
    if (superseded.length > 0) {
      void this.jobs
        .timeOut(superseded, 'the executor reconnected before its result arrived; its new state was planned instead')
        .catch((error: unknown) => this.logFailure(error, 'could not record superseded jobs', { jobs: superseded.length }));
    }
    return dispatches;
  }

  onState(hostId: number, digest: string, state: ObservedState | undefined): Promise<void> {
    this.touch(hostId);
    return this.enqueue(async () => {
      const rt = this.runtime(hostId);
      if (state) {
        rt.helloSeen = true;
        const waiters = rt.snapshotWaiters;
        rt.snapshotWaiters = [];
        for (const w of waiters) w(state);
        await this.planFromSnapshot(hostId, state, 'drift');
        return;
      }
      if (!rt.helloSeen) {
        this.hub.send(hostId, { type: 'state.request' });
        return;
      }
      await this.compareDigest(hostId, digest, true);
    });
  }

  /**
   * Takes a job's result, only from the host the job was sent to and only while the job waits
   * for it (once). The check and the claim are synchronous, so two results for one job can
   * never both be taken; a refused result changes nothing.
   */
  onResult(hostId: number, result: JobResult): { accepted: true; recorded: Promise<void> } | ({ accepted: false } & ResultRefusal) {
    const rt = this.runtimes.get(hostId);
    const inflight = rt?.inflight.get(result.jobId);
    if (!rt || !inflight) {
      return { accepted: false, reason: 'not-waiting', message: `job ${result.jobId} is not waiting for a result from this host` };
    }
    const problem = checkResultItems(result, inflight.commandCount);
    if (problem) return { accepted: false, reason: 'invalid', message: problem };
    rt.inflight.delete(result.jobId);
    this.touch(hostId);
    const recorded = this.enqueue(async () => {
      const ok = result.accepted && result.results.every((r) => r.ok);
      const status: JobStatus = ok ? 'succeeded' : 'failed';
      const expected = this.expectedDigest(hostId);
      const inSync = expected !== undefined && expected === result.digest && rt.inflight.size === 0;
      const error =
        [result.error, result.observeError && `observing the host after the job failed: ${result.observeError}`].filter(Boolean).join('; ') || undefined;
      // The generation counts as applied once the job's record says so too, so a reader who
      // sees it applied finds the job finished. Not awaited here: results of one fan-out
      // share one write.
      const generation = rt.desiredGeneration;
      void this.jobs
        .finish(result.jobId, { status, results: withoutTexts(result.results), error })
        .then(() => inSync && this.markApplied(hostId, rt, generation))
        .catch((err: unknown) => this.logFailure(err, 'could not record a job result', { jobId: result.jobId }));
      if (!inSync && ok && rt.inflight.size === 0) this.hub.send(hostId, { type: 'state.request' });
      // A failed job is retried from the next periodic report, not at once: no tight loops.
      if (!ok) this.log.warn({ host: hostId, jobId: result.jobId, generation: inflight.generation, error }, 'job failed');
    });
    this.progress.emit('work', 1);
    return { accepted: true, recorded };
  }

  /**
   * How the host reaches each other host, as its desired state says (from what it last reported
   * of its interfaces), and whether it has that state in place (its applied generation).
   */
  peersOf(hostId: number): PeerDto[] {
    const host = this.fleet.hosts.get(hostId);
    if (!host) return [];
    const rt = this.runtime(hostId);
    const applied = rt.appliedGeneration >= rt.desiredGeneration;
    const peers: PeerDto[] = [];
    for (const peer of this.fleet.hosts.values()) {
      if (peer.id === hostId) continue;
      const entries = peerEntries(host, rt.env, peer, peer.subnets, this.fleet.reach);
      const kinds = new Set(entries.reaches);
      // A peer without subnets yet: how its first subnet of the default mode would be reached.
      const reach =
        kinds.size === 0 ? subnetReach(entries.onLink, this.fleet.reach.possible ? 'crossSubnet' : 'never') : kinds.size === 1 ? [...kinds][0]! : 'mixed';
      peers.push({
        host: peer.name,
        address: peer.address,
        onLink: entries.onLink,
        reach,
        ...(entries.unreachable.length > 0 ? { reason: entries.unreachable.map((u) => `${u.subnet.cidr}: ${u.reason}`).join('; ') } : {}),
        applied,
      });
    }
    return peers;
  }

  /** Asks an online executor for a fresh snapshot (for dry runs). */
  async snapshot(hostId: number): Promise<ObservedState | undefined> {
    if (!this.hub.isOnline(hostId)) return undefined;
    const rt = this.runtime(hostId);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        rt.snapshotWaiters = rt.snapshotWaiters.filter((w) => w !== done);
        resolve(undefined);
      }, SNAPSHOT_WAIT_MS);
      const done = (state: ObservedState) => {
        clearTimeout(timer);
        resolve(state);
      };
      rt.snapshotWaiters.push(done);
      this.hub.send(hostId, { type: 'state.request' });
    });
  }

  /** The full plan for a host against a snapshot (pure; used by the dry-run route too). */
  planFor(hostId: number, observed: ObservedState, skipped?: string[]): Command[] | undefined {
    const host = this.fleet.hosts.get(hostId);
    if (!host) return undefined;
    return plan(desiredState(host, this.fleet.hosts.values(), this.fleet.policy, environmentOf(observed), this.fleet.reach), observed, undefined, skipped);
  }

  private async planFromSnapshot(hostId: number, state: ObservedState, reason: string): Promise<void> {
    const planned = this.planSnapshot(hostId, state, reason);
    if (planned) await this.dispatch([planned]);
  }

  /** The full plan for a host from its snapshot, as a dispatch; none when it is in sync. */
  private planSnapshot(hostId: number, state: ObservedState, reason: string): Dispatch | undefined {
    const host = this.fleet.hosts.get(hostId);
    if (!host) return undefined;
    const rt = this.runtime(hostId);
    rt.env = environmentOf(state);
    const desired = desiredState(host, this.fleet.hosts.values(), this.fleet.policy, rt.env, this.fleet.reach);
    let routeSum = 0;
    for (const item of desiredPeerItems(desired)) routeSum = addHash(routeSum, itemHash(item));
    rt.routeSum = routeSum;
    const skipped: string[] = [];
    const commands = plan(desired, state, { maxRouteDeletes: MAX_ROUTE_DELETES_PER_JOB }, skipped);
    if (skipped.join('\n') !== rt.skipped) {
      rt.skipped = skipped.join('\n');
      if (skipped.length > 0) this.log.warn({ host: hostId, skipped }, 'the host reports things crossdock cannot act on; they are left alone');
    }
    if (commands.length === 0) {
      if (rt.inflight.size === 0) this.markApplied(hostId, rt);
      return undefined;
    }
    return { hostId, commands, reason, bump: false };
  }

  private async compareDigest(hostId: number, digest: string, fromTimer: boolean): Promise<void> {
    const rt = this.runtime(hostId);
    if (rt.inflight.size > 0) return;
    const expected = this.expectedDigest(hostId);
    if (expected === undefined) return;
    if (expected === digest) {
      this.markApplied(hostId, rt);
      return;
    }
    if (fromTimer) this.log.info({ host: hostId, expected, observed: digest }, 'state differs from desired; asking for a snapshot');
    this.hub.send(hostId, { type: 'state.request' });
  }

  private expectedDigest(hostId: number): string | undefined {
    const host = this.fleet.hosts.get(hostId);
    if (!host) return undefined;
    const rt = this.runtime(hostId);
    rt.routeSum ??= routeDigestSum(host, this.fleet.hosts.values(), rt.env, this.fleet.reach);
    return desiredDigest(host, this.fleet.policy, rt.env, rt.routeSum, this.fleet.reach);
  }

  // ---- fleet changes ----

  /**
   * A committed change of the fleet model. It is planned at once, against the model as the
   * change left it (the model moves on with the next commit); sending its jobs waits its turn
   * behind the events queued before it.
   */
  onChange(event: FleetEvent): void {
    const { change, policyBefore, reason } = event;
    const policy = this.fleet.policy;
    if (policy !== policyBefore && policy.hostRulesLeftOut > 0 && policyBefore.hostRulesLeftOut === 0) this.warnHostRulesLeftOut();
    if (change.type === 'host.added') this.runtime(change.host.id);
    const deltas = planChange(change, {
      hosts: this.fleet.hosts,
      policy,
      policyBefore,
      reach: this.fleet.reach,
      envOf: (hostId) => this.runtime(hostId).env,
      sendsTo: (hostId) => this.reachable(hostId),
    });
    const dispatches = deltas.map((d) => this.dispatchOf(d, reason));
    void this.enqueue(async () => {
      if (change.type === 'host.removed') this.revoke(change.host);
      await this.dispatch(dispatches);
    });
  }

  /** A deleted host's executor is told so, and forgotten. */
  private revoke(host: PlanHost): void {
    this.hub.send(host.id, { type: 'revoked', reason: `host ${host.name} was deleted from the controller` });
    this.hub.disconnect(host.id, CLOSE_REVOKED, 'host deleted');
    this.hub.forget(host.id);
    this.runtimes.delete(host.id);
  }

  /**
   * A host's part of a change. Attached hosts get its commands and keep their route digest
   * current; the others are planned in full from their snapshot when they come back, so only
   * their generation moves.
   */
  private dispatchOf(delta: HostDelta, reason: string): Dispatch {
    const rt = this.runtime(delta.hostId);
    if (delta.replan || !this.reachable(delta.hostId)) {
      rt.routeSum = null;
      if (delta.replan) this.hub.send(delta.hostId, { type: 'state.request' });
      return { hostId: delta.hostId, commands: [], reason, bump: true };
    }
    if (rt.routeSum !== null) {
      for (const item of delta.addedItems) rt.routeSum = addHash(rt.routeSum, itemHash(item));
      for (const item of delta.removedItems) rt.routeSum = subtractHash(rt.routeSum, itemHash(item));
    }
    return { hostId: delta.hostId, commands: delta.commands, reason, bump: true };
  }

  private warnHostRulesLeftOut(): void {
    this.log.warn(
      { hostRules: this.fleet.policy.hostRulesLeftOut, max: MAX_REACH_RULES },
      "the hosts' addresses need more firewall rules than a chain may hold, so hosts reach containers only where a host's FORWARD policy accepts them; list the hosts' segments in the pools' allowFrom (PATCH /v1/pools/:name)",
    );
  }

  /** An executor is attached and has said hello: jobs for it are sent now. */
  private reachable(hostId: number): boolean {
    return (this.runtimes.get(hostId)?.helloSeen ?? false) && this.hub.isOnline(hostId);
  }

  /** Bumps generations, records the jobs of online hosts in one transaction, sends them. */
  private async dispatch(dispatches: Dispatch[]): Promise<void> {
    if (dispatches.length === 0) return;
    const toSend: Array<{ hostId: number; commands: Command[]; reason: string; generation: number }> = [];
    for (const d of dispatches) {
      const rt = this.runtime(d.hostId);
      if (d.bump) {
        rt.desiredGeneration++;
        this.note(d.hostId, { desiredGeneration: rt.desiredGeneration });
      }
      if (d.commands.length > 0 && rt.helloSeen && this.hub.isOnline(d.hostId)) {
        toSend.push({ hostId: d.hostId, commands: d.commands, reason: d.reason, generation: rt.desiredGeneration });
      }
    }
    const ids = await this.jobs.create(toSend.map((j) => ({ ...j, status: 'running' as const })));
    const deadline = Date.now() + this.options.jobTimeoutMs;
    toSend.forEach((job, i) => {
      const jobId = ids[i]!;
      this.runtime(job.hostId).inflight.set(jobId, { generation: job.generation, deadline, commandCount: job.commands.length });
      this.jobbedHosts.add(job.hostId);
      this.hub.send(job.hostId, { type: 'job', jobId, generation: job.generation, commands: job.commands });
    });
  }

  private async sweep(): Promise<void> {
    const now = Date.now();
    const expired: number[] = [];
    const retry = new Set<number>();
    for (const [hostId, rt] of this.runtimes) {
      for (const [jobId, job] of rt.inflight) {
        if (job.deadline > now) continue;
        expired.push(jobId);
        rt.inflight.delete(jobId);
        if (rt.inflight.size === 0) retry.add(hostId);
      }
    }
    if (expired.length > 0)
      this.log.warn(
        { jobs: expired.slice(0, 20), count: expired.length, hosts: [...retry].slice(0, 20) },
        'jobs timed out; asking their hosts for their state',
      );
    if (expired.length === 0) return;
    // A host whose job went unanswered is asked for its state now rather than at its next
    // report: the plan from that state finishes what the job did not.
    for (const hostId of retry) if (this.reachable(hostId)) this.hub.send(hostId, { type: 'state.request' });
    await this.jobs.timeOut(expired);
  }

  private async flushProgress(): Promise<void> {
    const progress = new Map(this.unsaved);
    this.unsaved.clear();
    await this.jobs.saveHostProgress(progress).catch((error: unknown) => {
      // Keep what was not written for the next flush, under anything newer noted meanwhile.
      for (const [id, data] of progress) this.unsaved.set(id, { ...data, ...this.unsaved.get(id) });
      this.logFailure(error, 'could not record host progress');
    });
  }

  private async prune(): Promise<void> {
    const hosts = [...this.jobbedHosts];
    this.jobbedHosts.clear();
    await this.jobs.prune(hosts).catch((error: unknown) => this.logFailure(error, 'could not prune job history'));
  }
}

/** A result describes the job's own commands: at most one item per command, each index once. */
function checkResultItems(result: JobResult, commandCount: number): string | null {
  if (result.results.length > commandCount) {
    return `job ${result.jobId} had ${commandCount} command(s); its result carries ${result.results.length} items, at most one per command`;
  }
  const seen = new Set<number>();
  for (const item of result.results) {
    if (item.index >= commandCount || seen.has(item.index)) {
      return `result item index ${item.index} is ${seen.has(item.index) ? 'repeated' : 'out of range'}; job ${result.jobId} has commands 0 to ${commandCount - 1}`;
    }
    seen.add(item.index);
  }
  return null;
}

/**
 * A result's text is the executor's rendering of its command. Where it is ours too, it is not
 * stored (the jobs view renders the command): a chain's text is as large as the chain, and a
 * host joining sends every host one, so storing them cost a 1,000-host fan-out 3 MB of writes.
 * An executor of another version that renders differently keeps its own text on record.
 */
/** What a result is recorded as: the history renders each command's text itself, so the executor's is not kept. */
function withoutTexts(results: JobResultItem[]): StoredResult[] {
  return results.map(({ text: _text, ...rest }) => rest);
}
