// Which hosts have an executor attached right now, and when each was last heard from. The
// agent channel keeps it current; the host views read it to say pending / online / offline.
export type HostStatus = 'pending' | 'online' | 'offline';

export class Presence {
  private readonly connected = new Set<number>();
  private readonly lastSeenAt = new Map<number, Date>();

  attach(hostId: number): void {
    this.connected.add(hostId);
  }

  detach(hostId: number): void {
    this.connected.delete(hostId);
  }

  seen(hostId: number, at: Date): void {
    this.lastSeenAt.set(hostId, at);
  }

  isOnline(hostId: number): boolean {
    return this.connected.has(hostId);
  }

  /** The freshest of what this process saw and what the database recorded. */
  lastSeen(hostId: number, stored: Date | null): Date | null {
    return this.lastSeenAt.get(hostId) ?? stored;
  }

  statusOf(hostId: number, stored: Date | null): HostStatus {
    if (this.connected.has(hostId)) return 'online';
    return this.lastSeen(hostId, stored) ? 'offline' : 'pending';
  }

  get size(): number {
    return this.connected.size;
  }
}
