// The executor's loop: connect out to the controller (WebSocket, or HTTP polling where a
// WebSocket cannot be held), say hello with what it observes, run each job it is sent and
// report the results, and reconnect with backoff. Given several controllers (one leader and its
// standbys), it attaches to the leader: a standby's 503 NOT_LEADER names it and is followed at
// once; an unreachable controller passes the turn to the next of the list. Drift is reported the moment the host
// announces it (route, firewall and Docker monitors through the drivers), and a digest of the
// state on a timer is the backstop. A lost controller changes nothing on the host.
import os from 'node:os';
import WebSocket from 'ws';
import {
  INITIAL_SYNC_HEADER,
  INITIAL_SYNC_VALUE,
  PROTOCOL_VERSION,
  RESULT_ERROR_MAX_CHARS,
  observedDigest,
  parseControllerMessage,
  type ControllerMessage,
  type ExecutorMessage,
  type JobMessage,
} from '@crossdock/shared';
import { ControllerTrust, describeTrustFailure, trustedRequest } from '@crossdock/shared/trust';
import { backoffDelay, realSleep, type Sleep } from './backoff.ts';
import { ControllerRotation } from './controllers.ts';
import { createLogger, type Logger } from './log.ts';
import { observeHost, type Drivers } from './observe.ts';
import { runJob, type JobOptions, type JobOutcome } from './run-job.ts';
import { debounce, type Watch } from './drivers/watch.ts';
import { removeEverything } from './revoke.ts';
import { EXECUTOR_VERSION } from './version.ts';

export { EXECUTOR_VERSION };
/** Used until the controller's welcome says otherwise. */
export const DEFAULT_RECONCILE_INTERVAL_MS = 30_000;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
/** Missing this many heartbeats in a row means the controller is gone. */
const MISSED_HEARTBEATS_BEFORE_RECONNECT = 3;
const WEBSOCKET_FAILURES_BEFORE_POLLING = 3;
const POLLING_FALLBACK_PERIOD_MS = 5 * 60_000;
const POLL_WAIT_S = 25;
/** A long poll's ?wait= counts whole seconds. */
const POLL_WAIT_GRANULARITY_MS = 1_000;
/** How long past a long poll's wait an HTTP request may take. */
const HTTP_SLACK_S = 15;
const HTTP_TIMEOUT_MS = (POLL_WAIT_S + HTTP_SLACK_S) * 1000;
const WEBSOCKET_HANDSHAKE_TIMEOUT_MS = 10_000;
/** A job for a host in a large fleet carries a route to every peer subnet. */
const MAX_CONTROLLER_MESSAGE_BYTES = 256 * 2 ** 20;
/**
 * After the host announces a change, how long before it is observed: a burst (a chain
 * rewritten rule by rule, a job's own changes) becomes one observation.
 */
export const DRIFT_DEBOUNCE_MS = 100;
/** At most this much jitter on top of a controller's Retry-After. */
const RETRY_JITTER_MS = 1_000;
/** WebSocket close code: the endpoint is going away. */
const CLOSE_GOING_AWAY = 1001;
/** How much of an error response that is not ours (a proxy's page) goes into a message. */
const FOREIGN_ERROR_EXCERPT_CHARS = 200;

export type Transport = 'auto' | 'websocket' | 'polling';

export interface AgentOptions {
  /** the controllers to attach to, the leader among them found at run time (one URL: a lone controller) */
  controllers: readonly string[];
  token: string;
  drivers: Drivers;
  job: JobOptions;
  transport?: Transport;
  /** overrides the interval the controller asks for */
  reconcileIntervalMs?: number;
  sleep?: Sleep;
  random?: () => number;
  log?: Logger;
  /** report changes the host announces at once (default true); false leaves only the timer */
  watchHost?: boolean;
  /** how the controller's certificate is verified (pinned CA, CA file); default: the system's CAs */
  trust?: ControllerTrust;
}

export type AgentExit = { reason: 'stopped' } | { reason: 'revoked'; message: string };

class AuthError extends Error {}
/** A standby answered: `leader` is the leader it names (undefined while it knows none). */
class NotLeaderError extends Error {
  constructor(
    readonly leader: string | undefined,
    message: string,
  ) {
    super(message);
  }
}
/** The controller speaks a protocol version this executor does not: nothing it sends is run. */
class ProtocolError extends Error {}
/** The controller is syncing others (a reconnect storm) and said when to come back: not a failure. */
class RetryLater extends Error {
  constructor(
    message: string,
    readonly afterMs: number,
  ) {
    super(message);
  }
}
/** Retry-After seconds honoured, at most: a controller cannot park an executor for long. */
const MAX_RETRY_AFTER_S = 60;

/**
 * Errors that mean the controller could not be reached at all (it is down, restarting, or the
 * network is): HTTP polling would fail the same way, so they are no reason to give up on the
 * WebSocket. Only a controller that answers but will not upgrade (a proxy in between) is.
 */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

function isUnreachable(error: unknown): boolean {
  return UNREACHABLE_CODES.has((error as NodeJS.ErrnoException).code ?? '');
}

export class Agent {
  private readonly abort = new AbortController();
  private readonly sleep: Sleep;
  private readonly log: Logger;
  /** every connection to the controller, WebSocket and HTTP alike, takes its TLS options from here */
  private readonly trust: ControllerTrust;
  /** serializes jobs, observations and reports: nothing observes the host mid-job */
  private queue: Promise<unknown> = Promise.resolve();
  private reconcileIntervalMs: number;
  private heartbeatIntervalMs = DEFAULT_HEARTBEAT_INTERVAL_MS;
  private revoked: string | undefined;
  /** Set when the controller of this session speaks another protocol version: nothing more is taken from it. */
  private refusal: ProtocolError | undefined;
  private send: (message: ExecutorMessage) => Promise<void> = async () => {};
  /** the digest the controller last heard from this executor (hello, report or job result) */
  private lastDigest: string | undefined;
  /** Whether a hello has gone out since this executor started: until then it asks, as a newcomer, not to wait behind a storm. */
  private saidHello = false;
  /** drift reports sent because the host announced a change (for tests and logs) */
  driftReports = 0;
  /** Attempts since the last successful connection (for tests and logs). */
  attempts = 0;
  connected = false;
  transportInUse: 'websocket' | 'polling' | undefined;
  /** the controller of the current (or last tried) session */
  controllerUrl: string;
  /** standby redirects followed (for tests and logs) */
  leaderRedirects = 0;
  private readonly rotation: ControllerRotation;

  constructor(private readonly options: AgentOptions) {
    this.rotation = new ControllerRotation(options.controllers);
    this.controllerUrl = this.rotation.next();
    this.sleep = options.sleep ?? realSleep;
    this.log = options.log ?? createLogger();
    this.reconcileIntervalMs = options.reconcileIntervalMs ?? DEFAULT_RECONCILE_INTERVAL_MS;
    this.trust = options.trust ?? new ControllerTrust();
  }

  stop(): void {
    this.abort.abort();
  }

  /** Runs until stop() or until the controller revokes this host. */
  async run(): Promise<AgentExit> {
    const watch = this.watchHost();
    try {
      return await this.connectLoop();
    } finally {
      watch.stop();
    }
  }

  /** Follows what the host announces: a change that makes it differ from what the controller last heard is reported at once. */
  private watchHost(): Watch {
    if (this.options.watchHost === false) return { stop() {} };
    // One observation waiting in the queue looks at everything announced before it starts: a
    // burst that outlasts the debounce (a job's own changes, a network Docker takes apart)
    // queues one more, not one per wave, so a report or a state.request answer behind them is
    // not held up by observations that would all find the same thing.
    let waiting: { what: string } | undefined;
    const changed = debounce((what) => {
      if (waiting) {
        waiting.what = what;
        return;
      }
      const next = { what };
      waiting = next;
      void this.enqueue(() => {
        waiting = undefined;
        return this.reportIfChanged(next.what);
      });
    }, DRIFT_DEBOUNCE_MS);
    const { ip, iptables, docker, vxlan } = this.options.drivers;
    const watches = [ip.watch(changed), iptables.watch(changed), docker.watch(changed), ...(vxlan ? [vxlan.watch(changed)] : [])];
    return {
      stop() {
        changed.cancel();
        for (const w of watches) w.stop();
      },
    };
  }

  private async connectLoop(): Promise<AgentExit> {
    let websocketFailures = 0;
    let pollUntil = 0;
    while (!this.abort.signal.aborted && this.revoked === undefined) {
      const wanted = this.options.transport ?? 'auto';
      const usePolling = wanted === 'polling' || (wanted === 'auto' && Date.now() < pollUntil);
      const url = this.rotation.next();
      this.controllerUrl = url;
      let openedAtAll = false;
      let failed = false;
      try {
        if (usePolling) openedAtAll = await this.runPolling(wanted === 'auto' ? pollUntil : Infinity);
        else openedAtAll = await this.runWebSocket();
      } catch (error) {
        if (error instanceof RetryLater) {
          // The controller gave this executor its own turn; up to a second of jitter on top, so
          // the executors given the same second do not return in the same instant.
          const delay = Math.round(error.afterMs + Math.min(error.afterMs, RETRY_JITTER_MS) * (this.options.random ?? Math.random)());
          this.log.info({ inMs: delay, controller: url }, error.message);
          await this.sleep(delay, this.abort.signal);
          continue;
        }
        if (error instanceof NotLeaderError) {
          const following = this.rotation.notLeader(url, error.leader);
          if (following) this.leaderRedirects++;
          this.log.info(
            { controller: url, leader: error.leader ?? null },
            following ? 'controller is a standby; following it to the leader' : 'controller is a standby; trying the next controller',
          );
        } else {
          failed = true;
          // Not the pinned controller: nothing it sends is run; polling would be refused the same way.
          const untrusted = describeTrustFailure(error, url, this.trust);
          const auth = error instanceof AuthError || error instanceof ProtocolError;
          this.log[auth || untrusted ? 'error' : 'warn'](
            { error: (error as Error).message, controller: url },
            untrusted ?? (auth ? (error as Error).message : 'controller connection failed'),
          );
          if (!usePolling && !auth && !untrusted && !isUnreachable(error)) websocketFailures++;
        }
      }
      this.connected = false;
      if (openedAtAll) {
        this.rotation.attached(url);
        this.attempts = 0;
        websocketFailures = 0;
      } else if (failed) this.rotation.failed(url);
      if (this.abort.signal.aborted || this.revoked !== undefined) break;
      if (wanted === 'auto' && websocketFailures >= WEBSOCKET_FAILURES_BEFORE_POLLING) {
        this.log.warn('no WebSocket to the controller; falling back to HTTP polling for a while');
        pollUntil = Date.now() + POLLING_FALLBACK_PERIOD_MS;
        websocketFailures = 0;
        continue;
      }
      // The next controller of the list, or the leader a standby named, is tried at once; only
      // a round that found no leader (or a session that ended) waits.
      if (!openedAtAll && !this.rotation.roundFailed()) continue;
      const delay = backoffDelay(this.attempts++, this.options.random);
      this.log.info({ inMs: delay, attempt: this.attempts, controllers: this.rotation.all }, 'reconnecting');
      await this.sleep(delay, this.abort.signal);
      this.rotation.resetRound();
    }
    await this.queue.catch(() => {});
    return this.revoked !== undefined ? { reason: 'revoked', message: this.revoked } : { reason: 'stopped' };
  }

  // ---- transports ----

  /** path may carry a query (`/jobs?wait=25`): it goes in the URL's search, not its pathname, which would escape the `?`. */
  private agentUrl(path: string, websocket = false): string {
    const base = new URL(this.controllerUrl);
    if (websocket) base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
    const [pathname = '', query] = path.split('?', 2);
    base.pathname = `${base.pathname.replace(/\/$/, '')}/v1/agent${pathname}`;
    base.search = query === undefined ? '' : `?${query}`;
    return base.toString();
  }

  /** One WebSocket session; resolves when it ends. Returns whether it ever opened. */
  private async runWebSocket(): Promise<boolean> {
    const url = this.agentUrl('', true);
    const tlsOptions = await this.trust.tlsOptions(url);
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, {
        ...tlsOptions,
        headers: {
          authorization: `Bearer ${this.options.token}`,
          ...(this.saidHello ? {} : { [INITIAL_SYNC_HEADER]: INITIAL_SYNC_VALUE }),
        },
        handshakeTimeout: WEBSOCKET_HANDSHAKE_TIMEOUT_MS,
        maxPayload: MAX_CONTROLLER_MESSAGE_BYTES,
      });
      let opened = false;
      let lastHeard = Date.now();
      // One timer, due when the controller will have been silent too long: hearing from it only
      // moves lastHeard, and the timer, when due, sets itself again from there (an idle host
      // wakes for it about once a heartbeat, not every second). A welcome that changes the
      // interval sets it again at once.
      const silenceLimitMs = () => this.heartbeatIntervalMs * MISSED_HEARTBEATS_BEFORE_RECONNECT;
      let armedFor = silenceLimitMs();
      const check = () => {
        const silentMs = Date.now() - lastHeard;
        armedFor = silenceLimitMs();
        if (silentMs >= armedFor) {
          this.log.warn('controller stopped answering heartbeats; reconnecting');
          socket.terminate();
          return;
        }
        watchdog = setTimeout(check, armedFor - silentMs);
      };
      let watchdog = setTimeout(check, armedFor);
      const onAbort = () => socket.close(CLOSE_GOING_AWAY, 'executor stopping');
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
      const finish = (error?: Error) => {
        clearTimeout(watchdog);
        this.disarmReports();
        this.abort.signal.removeEventListener('abort', onAbort);
        this.transportInUse = undefined;
        if (error && (!opened || error instanceof ProtocolError)) reject(error);
        else resolve(opened);
      };

      socket.on('unexpected-response', (_req, res) => {
        const status = res.statusCode ?? 0;
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          const message = safeErrorMessage(body) ?? `HTTP ${status}`;
          const standby = notLeader(status, body);
          const retryAfterS = Number(res.headers['retry-after']);
          finish(
            standby ??
              (status === 401
                ? new AuthError(`the controller refused this host's token: ${message}`)
                : status === 503 && Number.isInteger(retryAfterS) && retryAfterS >= 0
                  ? new RetryLater(`controller busy: ${message}`, Math.min(retryAfterS, MAX_RETRY_AFTER_S) * 1000)
                  : new Error(`controller answered ${status}: ${message}`)),
          );
          socket.terminate();
        });
      });
      socket.on('open', () => {
        opened = true;
        this.attempts = 0;
        this.connected = true;
        this.transportInUse = 'websocket';
        lastHeard = Date.now();
        this.send = async (message) => {
          if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
        };
        this.log.info({ transport: 'websocket' }, 'connected to the controller');
        void this.enqueue(() => this.hello());
        this.armReports();
      });
      socket.on('ping', () => (lastHeard = Date.now()));
      this.refusal = undefined;
      socket.on('message', (data) => {
        lastHeard = Date.now();
        this.receive(data.toString());
        if (silenceLimitMs() !== armedFor) {
          clearTimeout(watchdog);
          check();
        }
        if (this.refusal && socket.readyState !== WebSocket.CLOSED) {
          finish(this.refusal);
          socket.terminate();
        }
      });
      socket.on('close', (code, reason) => {
        if (opened) this.log.warn({ code, reason: reason.toString() }, 'controller connection closed');
        finish();
      });
      socket.on('error', (error) => finish(error));
    });
  }

  /** Polls until the period ends, the agent stops, or an error. Returns whether it got through. */
  private async runPolling(until: number): Promise<boolean> {
    this.transportInUse = 'polling';
    this.send = async (message) => {
      const path = message.type === 'result' ? `/jobs/${message.jobId}/result` : '/state';
      const reply = await this.http('POST', path, message);
      for (const item of reply.items) this.receive(item);
    };
    // The interval may change with the controller's welcome: recompute the next report each turn.
    let lastReport = Date.now();
    this.refusal = undefined;
    await this.enqueue(() => this.hello());
    if (this.refusal) throw this.refusal;
    this.attempts = 0;
    this.connected = true;
    this.log.info({ transport: 'polling' }, 'connected to the controller');
    while (!this.abort.signal.aborted && this.revoked === undefined && Date.now() < until) {
      // Never wait past the next state report: drift is caught on the same schedule as over
      // a WebSocket. Under a second to go, wait here rather than poll in a tight loop.
      const nextReport = lastReport + this.reconcileIntervalMs;
      const remainingMs = nextReport - Date.now();
      if (remainingMs > 0 && remainingMs < POLL_WAIT_GRANULARITY_MS) await this.sleep(remainingMs, this.abort.signal);
      const waitS = Math.max(0, Math.min(POLL_WAIT_S, Math.floor((nextReport - Date.now()) / POLL_WAIT_GRANULARITY_MS)));
      const reply = await this.http('GET', `/jobs?wait=${waitS}`);
      for (const item of reply.items) this.receive(item);
      if (this.refusal) throw this.refusal;
      if (Date.now() >= lastReport + this.reconcileIntervalMs) {
        lastReport = Date.now();
        void this.enqueue(() => this.report(false));
      }
    }
    await this.queue.catch(() => {});
    return true;
  }

  private async http(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ items: unknown[] }> {
    const { status, text } = await trustedRequest(this.trust, this.agentUrl(path), {
      method,
      headers: { authorization: `Bearer ${this.options.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(HTTP_TIMEOUT_MS)]),
    });
    const response = { status, ok: status >= 200 && status < 300 };
    const standby = notLeader(response.status, text);
    if (standby) throw standby;
    if (response.status === 401) throw new AuthError(`the controller refused this host's token: ${safeErrorMessage(text) ?? 'HTTP 401'}`);
    if (response.status === 409 && text.includes('"PROTOCOL_MISMATCH"')) {
      this.refusal = new ProtocolError(`the controller refused this executor: ${safeErrorMessage(text)}`);
      throw this.refusal;
    }
    if (!response.ok)
      throw new Error(`controller answered ${response.status} to ${method} ${path}: ${safeErrorMessage(text) ?? text.slice(0, FOREIGN_ERROR_EXCERPT_CHARS)}`);
    return text ? (JSON.parse(text) as { items: unknown[] }) : { items: [] };
  }

  // ---- messages ----

  private receive(raw: unknown): void {
    const parsed = parseControllerMessage(typeof raw === 'string' ? raw : JSON.stringify(raw));
    if (this.refusal) return;
    if (!parsed.ok && parsed.protocol !== undefined) {
      this.refusal = new ProtocolError(
        `refusing the controller at ${this.controllerUrl}: it speaks protocol version ${parsed.protocol}, this executor (${EXECUTOR_VERSION}) speaks version ${PROTOCOL_VERSION}; install the executor of the controller's release (the join line POST /v1/hosts answers with)`,
      );
      return;
    }
    if (!parsed.ok) {
      this.log.warn({ error: parsed.error }, 'ignored a message from the controller');
      return;
    }
    const message: ControllerMessage = parsed.message;
    switch (message.type) {
      case 'welcome':
        this.heartbeatIntervalMs = message.heartbeatIntervalMs;
        if (this.options.reconcileIntervalMs === undefined) this.reconcileIntervalMs = message.reconcileIntervalMs;
        if (this.transportInUse === 'websocket') this.armReports();
        this.log.info({ host: message.host.name, reconcileIntervalMs: this.reconcileIntervalMs }, 'welcomed');
        return;
      case 'job':
        void this.enqueue(() => this.runJob(message));
        return;
      case 'state.request':
        void this.enqueue(() => this.report(true));
        return;
      case 'revoked':
        void this.enqueue(() => this.revoke(message.reason));
        return;
    }
  }

  private reportTimer: NodeJS.Timeout | undefined;

  /** (Re)starts the periodic state report at the current interval. */
  private armReports(): void {
    this.disarmReports();
    const tick = () => {
      this.reportTimer = setTimeout(() => void this.enqueue(() => this.report(false)).finally(() => this.reportTimer && tick()), this.reconcileIntervalMs);
    };
    tick();
  }

  private disarmReports(): void {
    clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.queue.then(task).catch((error: unknown) => this.log.error({ error: (error as Error).message }, 'step failed'));
    this.queue = next;
    return next;
  }

  private async hello(): Promise<void> {
    const state = await observeHost(this.options.drivers);
    this.lastDigest = observedDigest(state);
    await this.send({
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      executorVersion: EXECUTOR_VERSION,
      hostname: os.hostname(),
      state,
      digest: this.lastDigest,
    });
    this.saidHello = true;
  }

  private async report(full: boolean): Promise<void> {
    const state = await observeHost(this.options.drivers);
    this.lastDigest = observedDigest(state);
    await this.send({ type: 'state', digest: this.lastDigest, ...(full ? { state } : {}) });
  }

  /**
   * The host announced a change. If it now differs from what the controller last heard, the
   * whole state goes at once (the controller plans from it without asking); a change that
   * leaves the digest alone (crossdock's own job, whose result carried the new digest, or
   * something crossdock does not keep) sends nothing.
   */
  private async reportIfChanged(what: string): Promise<void> {
    if (!this.connected) return;
    const state = await observeHost(this.options.drivers);
    const digest = observedDigest(state);
    if (digest === this.lastDigest) return;
    this.lastDigest = digest;
    this.driftReports++;
    this.log.info({ change: what }, 'the host changed; reporting its state');
    await this.send({ type: 'state', digest, state });
  }

  /**
   * Runs a job and always answers it: a job that failed to run, or a host that could not be
   * observed afterwards, still gets a result saying so (the controller would otherwise wait
   * out the job timeout); the next report repairs whatever the result could not say.
   */
  private async runJob(job: JobMessage): Promise<void> {
    const outcome = await runJob(job.commands, this.options.drivers, this.options.job).catch(
      (error: unknown): JobOutcome => ({
        accepted: false,
        error: `the executor failed while running the job (some commands may have run): ${(error as Error).message}`,
        results: [],
      }),
    );
    const failed = outcome.results.filter((r) => !r.ok).length;
    if (!outcome.accepted) this.log.error({ jobId: job.jobId, error: outcome.error }, 'refused a job');
    else this.log[failed ? 'warn' : 'info']({ jobId: job.jobId, commands: outcome.results.length, failed }, 'ran a job');
    let observed: { digest: string } | { observeError: string };
    try {
      observed = { digest: observedDigest(await observeHost(this.options.drivers)) };
      this.lastDigest = observed.digest;
    } catch (error) {
      this.log.warn({ jobId: job.jobId, error: (error as Error).message }, 'could not observe the host after a job; reporting the result without a digest');
      observed = { observeError: (error as Error).message.slice(0, RESULT_ERROR_MAX_CHARS) };
    }
    await this.send({
      type: 'result',
      jobId: job.jobId,
      generation: job.generation,
      accepted: outcome.accepted,
      ...(outcome.accepted ? {} : { error: outcome.error.slice(0, RESULT_ERROR_MAX_CHARS) }),
      results: outcome.results,
      ...observed,
    });
  }

  private async revoke(reason: string): Promise<void> {
    this.log.warn({ reason }, 'this host was revoked by the controller; removing what crossdock created');
    const report = await removeEverything(this.options.drivers);
    for (const line of report.refused) this.log.warn(line);
    this.log.info({ routes: report.routes, networks: report.networks }, 'removed crossdock state');
    this.revoked = reason;
    this.abort.abort();
  }
}

/** A standby's 503 NOT_LEADER, with the leader it names; null for any other answer. */
function notLeader(status: number, body: string): NotLeaderError | null {
  if (status !== 503) return null;
  let error: { code?: unknown; message?: unknown; leader?: unknown } | undefined;
  try {
    error = (JSON.parse(body) as { error?: typeof error }).error;
  } catch {
    return null;
  }
  if (error?.code !== 'NOT_LEADER') return null;
  const leader = typeof error.leader === 'string' && /^https?:\/\//.test(error.leader) ? error.leader : undefined;
  return new NotLeaderError(leader, typeof error.message === 'string' ? error.message : 'the controller is a standby');
}

function safeErrorMessage(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { error?: { message?: string } }).error?.message;
  } catch {
    return undefined;
  }
}
