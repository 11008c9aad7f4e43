// Admission of executor connections. Every executor reconnects at once after a controller
// restart or a takeover, each with its host's whole state in its hello. Taking them all would
// queue thousands of full tables in memory and starve the API behind them; instead the
// controller lets a bounded number sync at a time and answers the rest 503 CONTROLLER_BUSY
// with a Retry-After, a turn of its own, that the executor honours (with up to a second of jitter). An executor counts
// from its admission until its hello has been planned and sent, its connection ends, or
// HELLO_DEADLINE_MS passes without a hello.
//
// A host that has never been synced (registered during the storm, say) does not wait behind
// it: its executor says it has not synced yet (agents' X-Crossdock-Sync: initial), the
// controller checks that the host has never applied a job, and it takes a place of a second
// lane as large as the first (admitNewcomer). Only such a claim costs a token lookup before a place.

/** An admitted connection's hold on its place; release() is idempotent. */
export interface AdmissionTicket {
  /** the executor is synced (or gone): its place is free, and it counts toward the rate of finished syncs */
  release(): void;
  /** the connection was refused after all (a bad token): its place is free, and no sync finished */
  cancel(): void;
}

export type Admitted = { admitted: true; ticket: AdmissionTicket } | { admitted: false; retryAfterS: number; syncing: number };

/** A connection that never says hello gives its place back after this long. */
export const HELLO_DEADLINE_MS = 30_000;
/** Retry-After bounds, in seconds: the executor adds up to a second of jitter. */
const MIN_RETRY_AFTER_S = 1;
const MAX_RETRY_AFTER_S = 15;
/** The rate of finished syncs is measured over this window. */
const RATE_WINDOW_MS = 5_000;
/**
 * The rate assumed while none has been measured (a storm's first second): places free up about
 * this many times a second for each place of the limit. A host already in sync costs a few ms.
 */
const ASSUMED_SYNCS_PER_PLACE_PER_S = 1;

export class Admission {
  private syncing = 0;
  /** newcomers syncing, in their own lane */
  private newcomers = 0;
  /** when recent syncs finished, oldest first, within RATE_WINDOW_MS */
  private readonly finished: number[] = [];
  /** connections refused since start, for the metrics */
  refused = 0;
  /** when the last turn promised to a refused executor comes */
  private nextTurnAt = 0;

  /** limit: how many executors may be syncing at once (0: no limit). */
  constructor(
    readonly limit: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** executors syncing, both lanes */
  get inProgress(): number {
    return this.syncing + this.newcomers;
  }

  /** Whether admit() would refuse now. */
  get full(): boolean {
    return this.limit > 0 && this.syncing >= this.limit;
  }

  admit(): Admitted {
    if (this.full) {
      this.refused++;
      return { admitted: false, retryAfterS: this.retryAfterS(), syncing: this.syncing };
    }
    this.syncing++;
    return { admitted: true, ticket: this.ticket(false) };
  }

  /**
   * A place in the newcomers' lane, for the executor of a host that has never been synced:
   * it is not made to wait its turn behind a storm of hosts that were. The lane is as large as
   * the other; its syncs do not count toward the rate the others' turns are spread at.
   */
  admitNewcomer(): Admitted {
    if (this.limit > 0 && this.newcomers >= this.limit) {
      this.refused++;
      return { admitted: false, retryAfterS: MIN_RETRY_AFTER_S, syncing: this.syncing + this.newcomers };
    }
    this.newcomers++;
    return { admitted: true, ticket: this.ticket(true) };
  }

  private ticket(newcomer: boolean): AdmissionTicket {
    let held = true;
    const deadline = setTimeout(() => ticket.release(), HELLO_DEADLINE_MS);
    deadline.unref();
    const giveBack = (synced: boolean) => {
      if (!held) return;
      held = false;
      clearTimeout(deadline);
      if (newcomer) {
        this.newcomers--;
        return;
      }
      this.syncing--;
      if (!synced) return;
      const now = this.now();
      this.finished.push(now);
      this.forgetBefore(now - RATE_WINDOW_MS);
    };
    const ticket: AdmissionTicket = { release: () => giveBack(true), cancel: () => giveBack(false) };
    return ticket;
  }

  /**
   * Each refused executor is given its own turn: the turns already promised are spread at the
   * rate syncs have been finishing (or, before any has, at an assumed rate), so a storm's
   * executors come back spread over the seconds they will be served in, not all together at
   * the end of one common wait.
   */
  private retryAfterS(): number {
    const now = this.now();
    this.forgetBefore(now - RATE_WINDOW_MS);
    const measured = this.finished.length / (RATE_WINDOW_MS / 1000);
    const perSecond = measured > 0 ? measured : Math.max(1, this.limit * ASSUMED_SYNCS_PER_PLACE_PER_S);
    // Turns beyond the longest wait it may ask for are not promised: those come back and ask again.
    this.nextTurnAt = Math.min(Math.max(this.nextTurnAt, now) + 1000 / perSecond, now + MAX_RETRY_AFTER_S * 1000);
    const seconds = Math.ceil((this.nextTurnAt - now) / 1000);
    return Math.min(MAX_RETRY_AFTER_S, Math.max(MIN_RETRY_AFTER_S, seconds));
  }

  private forgetBefore(time: number): void {
    let old = 0;
    while (old < this.finished.length && this.finished[old]! < time) old++;
    if (old > 0) this.finished.splice(0, old);
  }
}
