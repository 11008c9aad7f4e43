// The executor sessions: at most one per host, over WebSocket or HTTP polling, and the one
// record of which hosts are online and when each was last heard from. Everything the
// controller tells an executor goes through send(), whatever the transport.
import { EventEmitter } from 'node:events';
import type { ControllerMessage } from '@crossdock/shared';

export type HostStatus = 'pending' | 'online' | 'offline';

export interface Session {
  readonly hostId: number;
  readonly transport: 'websocket' | 'polling';
  send(message: ControllerMessage): void;
  close(code: number, reason: string): void;
}

export const CLOSE_REPLACED = 4000;
export const CLOSE_REVOKED = 4001;
export const CLOSE_TOKEN_ROTATED = 4002;

/** What a host's executor said of itself in its last hello. */
export interface ExecutorInfo {
  version: string;
  protocol: number;
}

export class AgentHub {
  private readonly sessions = new Map<number, Session>();
  private readonly lastSeenAt = new Map<number, Date>();
  /** 'status' (hostId) when a host's executor attaches or detaches: what the event stream follows */
  readonly events = new EventEmitter();
  /** Kept in memory only: every executor says hello again when it reconnects to a restarted controller. */
  private readonly executors = new Map<number, ExecutorInfo>();

  constructor(
    private readonly onAttach: (session: Session) => void,
    private readonly onDetach: (hostId: number) => void,
  ) {}

  attach(session: Session): void {
    const previous = this.sessions.get(session.hostId);
    this.sessions.set(session.hostId, session);
    if (previous && previous !== session) previous.close(CLOSE_REPLACED, 'replaced by a newer connection of the same host');
    this.onAttach(session);
    this.events.emit('status', session.hostId);
  }

  detach(session: Session): void {
    if (this.sessions.get(session.hostId) !== session) return;
    this.sessions.delete(session.hostId);
    this.onDetach(session.hostId);
    this.events.emit('status', session.hostId);
  }

  /** The host's executor was heard from (a message, a poll, a pong). */
  seen(hostId: number, at: Date): void {
    this.lastSeenAt.set(hostId, at);
  }

  /** The freshest of what this process saw and what the database recorded. */
  lastSeen(hostId: number, stored: Date | null): Date | null {
    return this.lastSeenAt.get(hostId) ?? stored;
  }

  statusOf(hostId: number, stored: Date | null): HostStatus {
    if (this.sessions.has(hostId)) return 'online';
    return this.lastSeen(hostId, stored) ? 'offline' : 'pending';
  }

  /** The host's executor said hello. */
  greeted(hostId: number, executor: ExecutorInfo): void {
    this.executors.set(hostId, executor);
  }

  /** The executor's version and protocol from its last hello to this controller process, or null. */
  executorOf(hostId: number): ExecutorInfo | null {
    return this.executors.get(hostId) ?? null;
  }

  /** A deleted host is forgotten. */
  forget(hostId: number): void {
    this.lastSeenAt.delete(hostId);
    this.executors.delete(hostId);
  }

  get(hostId: number): Session | undefined {
    return this.sessions.get(hostId);
  }

  isOnline(hostId: number): boolean {
    return this.sessions.has(hostId);
  }

  send(hostId: number, message: ControllerMessage): boolean {
    const session = this.sessions.get(hostId);
    if (!session) return false;
    session.send(message);
    return true;
  }

  disconnect(hostId: number, code: number, reason: string): void {
    const session = this.sessions.get(hostId);
    if (!session) return;
    session.close(code, reason);
    this.detach(session);
  }

  closeAll(code: number, reason: string): void {
    for (const session of [...this.sessions.values()]) {
      session.close(code, reason);
      this.detach(session);
    }
  }

  all(): Session[] {
    return [...this.sessions.values()];
  }

  get size(): number {
    return this.sessions.size;
  }
}

/** A polling executor's session: messages wait in an outbox until it asks for them. */
export class PollingSession implements Session {
  readonly transport = 'polling' as const;
  private outbox: ControllerMessage[] = [];
  private waiter: (() => void) | undefined;
  lastPollAt = Date.now();
  closed = false;

  constructor(readonly hostId: number) {}

  send(message: ControllerMessage): void {
    this.outbox.push(message);
    this.waiter?.();
  }

  close(): void {
    this.closed = true;
    this.waiter?.();
  }

  /** Takes what is queued, waiting up to waitMs for something to arrive. */
  async take(waitMs: number): Promise<ControllerMessage[]> {
    this.lastPollAt = Date.now();
    if (this.outbox.length === 0 && waitMs > 0 && !this.closed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, waitMs);
        const self = this;
        function done() {
          clearTimeout(timer);
          self.waiter = undefined;
          resolve();
        }
        this.waiter = done;
      });
    }
    this.lastPollAt = Date.now();
    const taken = this.outbox;
    this.outbox = [];
    return taken;
  }
}
