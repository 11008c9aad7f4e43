// Which hosts have an executor attached right now. The agent channel keeps it current; the
// host views read it to say pending / online / offline.
export type HostStatus = 'pending' | 'online' | 'offline';

export class Presence {
  private readonly connected = new Set<number>();

  attach(hostId: number): void {
    this.connected.add(hostId);
  }

  detach(hostId: number): void {
    this.connected.delete(hostId);
  }

  isOnline(hostId: number): boolean {
    return this.connected.has(hostId);
  }

  statusOf(hostId: number, lastSeenAt: Date | null): HostStatus {
    if (this.connected.has(hostId)) return 'online';
    return lastSeenAt ? 'offline' : 'pending';
  }

  get size(): number {
    return this.connected.size;
  }
}
