// Leader election on PostgreSQL (see leadership.ts). A dedicated connection, outside the
// Prisma pool, holds the session-level advisory lock; standbys try it on a short interval.
// The leader checks that connection every second: when it dies (server gone, backend
// terminated, network cut) the controller stops leading at once, and rejoins as a standby
// on a new connection once the database answers again.
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { notLeaderError, type FenceTx, type Leadership, type LeadershipEvents, type Role } from './leadership.ts';

/** The advisory lock's two keys: "cros", "dock". One lock per database: one fleet per database. */
export const LEADER_LOCK_KEYS = [0x63726f73, 0x646f636b] as const;
/** How often a standby tries to take the lock: bounds the takeover time once the old leader's session is gone. */
export const ELECTION_INTERVAL_MS = 250;
/** How often the leader checks its lock connection (and its term). */
export const LEADER_CHECK_INTERVAL_MS = 1_000;
/** A query on the lock connection that takes longer means the connection is gone (a network cut sends no reset). */
export const LOCK_QUERY_TIMEOUT_MS = 2_000;
/** Wait between attempts to reconnect to a database that cannot be reached. */
export const RECONNECT_DELAY_MS = 1_000;
/**
 * A write transaction left idle this long is ended by the server: one from a leader cut off
 * mid-transaction holds the term row, and the next leader's election waits for it.
 */
export const FENCED_IDLE_IN_TRANSACTION_TIMEOUT_MS = 5_000;

/** The one row that names the leader and its term. */
const LEADER_TABLE = '"Leadership"';

/** The dedicated connection: node-postgres' Client has this shape. */
export interface LockClient {
  query<R extends object = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  /** Drops the connection without waiting for the server (it may be unreachable). */
  destroy(): void;
}

/** How long connecting the lock connection may take. */
const LOCK_CONNECT_TIMEOUT_MS = 5_000;
/** TCP keepalive on the lock connection: a silent peer is noticed by the kernel too. */
const LOCK_KEEPALIVE_IDLE_MS = 1_000;

/** The lock connection: a node-postgres client of its own, outside Prisma's pool. */
export async function connectLockClient(url: string): Promise<LockClient> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: LOCK_CONNECT_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: LOCK_KEEPALIVE_IDLE_MS,
    application_name: 'crossdock-leader-lock',
  });
  // Until the caller listens: an error while connecting is the rejection below, not a crash.
  client.on('error', () => {});
  await client.connect();
  return {
    query: async <R extends object>(sql: string, params?: unknown[]) => (await client.query(sql, params)) as unknown as { rows: R[] },
    on: ((event: 'error' | 'end', listener: (...args: never[]) => void) => client.on(event, listener as () => void)) as LockClient['on'],
    destroy: () => {
      // end() waits for the server, which may be unreachable: drop the socket instead.
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      void client.end().catch(() => {});
    },
  };
}

interface Logger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface PostgresLeadershipOptions {
  advertiseUrl: string;
  connect: () => Promise<LockClient>;
  log: Logger;
  electionIntervalMs?: number;
  checkIntervalMs?: number;
  queryTimeoutMs?: number;
  reconnectDelayMs?: number;
}

class ConnectionLost extends Error {}

export class PostgresLeadership implements Leadership {
  readonly events = new EventEmitter<LeadershipEvents>();
  /** this controller's URL as clients reach it, recorded when it leads */
  advertiseUrl: string;
  private state: Role = 'standby';
  private currentTerm: number | null = null;
  private knownLeader: string | null = null;
  private stopped = false;
  private running: Promise<void> | undefined;
  private client: LockClient | undefined;
  /** wakes the loop's sleep early (connection lost, stop) */
  private wake: (() => void) | undefined;
  private lostReason: string | undefined;
  private readonly firstAttempt = deferred();
  private readonly electionIntervalMs: number;
  private readonly checkIntervalMs: number;
  private readonly queryTimeoutMs: number;
  private readonly reconnectDelayMs: number;

  constructor(private readonly options: PostgresLeadershipOptions) {
    this.advertiseUrl = options.advertiseUrl;
    this.electionIntervalMs = options.electionIntervalMs ?? ELECTION_INTERVAL_MS;
    this.checkIntervalMs = options.checkIntervalMs ?? LEADER_CHECK_INTERVAL_MS;
    this.queryTimeoutMs = options.queryTimeoutMs ?? LOCK_QUERY_TIMEOUT_MS;
    this.reconnectDelayMs = options.reconnectDelayMs ?? RECONNECT_DELAY_MS;
  }

  role(): Role {
    return this.state;
  }

  leaderUrl(): string | null {
    return this.state === 'leader' ? this.advertiseUrl : this.knownLeader;
  }

  term(): number | null {
    return this.currentTerm;
  }

  async fence(tx: FenceTx): Promise<void> {
    const term = this.currentTerm;
    if (this.state !== 'leader' || term === null) throw notLeaderError(this.knownLeader, 'this controller is not the leader (any more)');
    // FOR SHARE: the next leader's term bump waits for this transaction to end, so whatever
    // it commits is in the state that leader loads; a transaction that starts later sees the
    // new term and commits nothing.
    const rows = await tx.$queryRawUnsafe<Array<{ term: number | bigint }>>(
      `SELECT term, set_config('idle_in_transaction_session_timeout', '${FENCED_IDLE_IN_TRANSACTION_TIMEOUT_MS}', true) FROM ${LEADER_TABLE} WHERE id = 1 FOR SHARE`,
    );
    const current = rows[0] === undefined ? null : Number(rows[0].term);
    if (current !== term) {
      this.depose(`another controller was elected (term ${current} after this controller's ${term})`);
      throw notLeaderError(null, 'this controller is not the leader any more');
    }
  }

  start(): void {
    this.running ??= this.run();
  }

  settled(): Promise<void> {
    return this.firstAttempt.promise;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.depose('stopping');
    this.client?.destroy();
    this.wake?.();
    await this.running;
  }

  // ---- the loop ----

  private async run(): Promise<void> {
    let unreachableSince: number | undefined;
    while (!this.stopped) {
      let client: LockClient;
      try {
        client = await this.options.connect();
      } catch (error) {
        if (unreachableSince === undefined) {
          unreachableSince = Date.now();
          this.options.log.error({ error: (error as Error).message }, 'cannot reach the database for the leader election; retrying every second');
        }
        this.firstAttempt.resolve();
        await this.sleep(this.reconnectDelayMs);
        continue;
      }
      if (unreachableSince !== undefined)
        this.options.log.info({ afterMs: Date.now() - unreachableSince }, 'the database answers again; rejoining the election');
      unreachableSince = undefined;
      this.lostReason = undefined;
      this.client = client;
      const lost = (reason: string) => {
        if (this.lostReason !== undefined) return;
        this.lostReason = reason;
        if (this.state !== 'leader') this.options.log.warn({ reason }, 'standby lost its database connection; reconnecting');
        // At once, before the loop wakes: nothing may be written on a lock this controller may not hold.
        this.depose(`lost the database connection that holds the leader lock (${reason})`);
        this.wake?.();
      };
      client.on('error', (error) => lost(error.message));
      client.on('end', () => lost('connection closed'));
      try {
        await this.campaign(client);
        if (!this.stopped && this.lostReason === undefined) await this.lead(client);
      } catch (error) {
        lost(error instanceof ConnectionLost ? error.message : `query failed: ${(error as Error).message}`);
      } finally {
        this.firstAttempt.resolve();
        this.client = undefined;
        client.destroy();
      }
      if (!this.stopped) await this.sleep(this.reconnectDelayMs);
    }
  }

  /** Waits as a standby until the lock is ours (or the connection is lost). */
  private async campaign(client: LockClient): Promise<void> {
    let announced: string | null | undefined;
    while (!this.stopped && this.lostReason === undefined) {
      const { rows } = await this.query<{ locked: boolean }>(client, 'SELECT pg_try_advisory_lock($1, $2) AS locked', [...LEADER_LOCK_KEYS]);
      if (rows[0]?.locked) return;
      const leader = await this.query<{ url: string }>(client, `SELECT url FROM ${LEADER_TABLE} WHERE id = 1`);
      this.knownLeader = leader.rows[0]?.url ?? null;
      this.firstAttempt.resolve();
      if (announced !== this.knownLeader) {
        announced = this.knownLeader;
        this.options.log.info(
          { role: 'standby', leader: this.knownLeader },
          `standby: ${this.knownLeader ? `the leader is ${this.knownLeader}` : 'no leader yet'}`,
        );
      }
      await this.sleep(this.electionIntervalMs);
    }
  }

  /** Holds the lock: records the new term, then checks the connection until it is lost or stop(). */
  private async lead(client: LockClient): Promise<void> {
    const { rows } = await this.query<{ term: number | bigint }>(
      client,
      `INSERT INTO ${LEADER_TABLE} (id, term, url, "electedAt") VALUES (1, 1, $1, now())
       ON CONFLICT (id) DO UPDATE SET term = ${LEADER_TABLE}.term + 1, url = EXCLUDED.url, "electedAt" = EXCLUDED."electedAt"
       RETURNING term`,
      [this.advertiseUrl],
    );
    const term = Number(rows[0]!.term);
    if (this.stopped || this.lostReason !== undefined) return;
    this.currentTerm = term;
    this.state = 'leader';
    this.knownLeader = this.advertiseUrl;
    this.options.log.info({ role: 'leader', term, url: this.advertiseUrl }, `elected leader (term ${term})`);
    this.events.emit('elected', term);
    this.firstAttempt.resolve();
    while (!this.stopped && this.lostReason === undefined && this.state === 'leader') {
      await this.sleep(this.checkIntervalMs);
      if (this.stopped || this.lostReason !== undefined || this.state !== 'leader') return;
      const check = await this.query<{ term: number | bigint; url: string }>(client, `SELECT term, url FROM ${LEADER_TABLE} WHERE id = 1`);
      const current = check.rows[0] === undefined ? null : Number(check.rows[0].term);
      if (current !== term) {
        this.knownLeader = check.rows[0]?.url ?? null;
        this.depose(`another controller was elected (term ${current} after this controller's ${term})`);
        return;
      }
    }
  }

  private depose(reason: string): void {
    if (this.state !== 'leader') return;
    const term = this.currentTerm;
    this.state = 'standby';
    this.currentTerm = null;
    if (this.knownLeader === this.advertiseUrl) this.knownLeader = null;
    this.options.log[reason === 'stopping' ? 'info' : 'error']({ role: 'standby', term, reason }, `stopped leading: ${reason}`);
    this.events.emit('deposed', reason);
  }

  private async query<R extends object>(client: LockClient, sql: string, params?: unknown[]): Promise<{ rows: R[] }> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        client.query<R>(sql, params),
        new Promise<never>((_resolve, reject) => {
          // setImmediate: a busy event loop runs timers before reading sockets; an answer that
          // is already waiting must win over a timer that is merely late.
          timer = setTimeout(
            () => setImmediate(() => reject(new ConnectionLost(`the database did not answer within ${this.queryTimeoutMs} ms`))),
            this.queryTimeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
