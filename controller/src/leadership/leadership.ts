// Which controller leads. Several controllers may share one PostgreSQL database; exactly one
// leads: the one holding a session-level advisory lock on a connection of its own, which the
// server releases the moment that connection dies. Each election bumps a term recorded in the
// database with the leader's advertised URL (standbys name it), and every write transaction
// checks the term (fence()), so a controller that lost the lock can never commit on it, even
// before it notices. With SQLite there is no election: the controller simply leads.
import { EventEmitter } from 'node:events';
import { ApiError } from '../errors.ts';

export type Role = 'leader' | 'standby';

/** What fence() runs its check with: the open write transaction. */
export interface FenceTx {
  $queryRawUnsafe<T = unknown>(sql: string, ...values: unknown[]): Promise<T>;
  $executeRawUnsafe(sql: string, ...values: unknown[]): Promise<number>;
}

export interface LeadershipEvents {
  /** This controller now leads, with this term: load the state and serve. */
  elected: [term: number];
  /** This controller stopped leading (lost its database connection or was stopped). */
  deposed: [reason: string];
}

export interface Leadership {
  readonly events: EventEmitter<LeadershipEvents>;
  /** this controller's URL as clients reach it, recorded when it leads */
  advertiseUrl: string;
  role(): Role;
  /** the leader's advertised URL: this controller's own while it leads; null when none is known */
  leaderUrl(): string | null;
  /** the term this controller leads in, or null */
  term(): number | null;
  /**
   * Runs first in every write transaction: throws NOT_LEADER unless this controller still
   * holds its term. None where there is no election (SQLite).
   */
  fence?(tx: FenceTx): Promise<void>;
  start(): void;
  /** Resolves once the first election attempt after start() decided this controller's role. */
  settled(): Promise<void>;
  /** Stops leading or waiting (releasing the lock at once), and stops. */
  stop(): Promise<void>;
}

export function notLeaderError(leader: string | null, context = 'this controller is a standby'): ApiError {
  return new ApiError(
    'NOT_LEADER',
    leader
      ? `${context}; the leader is ${leader}: send the request there (executors and the CLI follow it themselves when given every controller's URL)`
      : `${context} and no leader is known right now (an election takes a few seconds); retry, or try another controller`,
    { leader },
  );
}

/** SQLite: one controller, always the leader; nothing to fence. */
export class SoleLeadership implements Leadership {
  readonly events = new EventEmitter<LeadershipEvents>();
  private leading = false;

  constructor(public advertiseUrl: string) {}

  role(): Role {
    return this.leading ? 'leader' : 'standby';
  }

  leaderUrl(): string | null {
    return this.leading ? this.advertiseUrl : null;
  }

  term(): number | null {
    return this.leading ? 1 : null;
  }

  start(): void {
    this.leading = true;
    queueMicrotask(() => this.events.emit('elected', 1));
  }

  async settled(): Promise<void> {}

  async stop(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    this.events.emit('deposed', 'stopping');
  }
}
