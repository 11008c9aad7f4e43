// The fleet at a glance, from memory: hosts by status, hosts behind on their generation, pools'
// utilization, executor sessions. What GET /v1/status answers and what /metrics exports, so
// neither reads the database per request (10,000 hosts make a scrape cost a walk of a Map).
import type { AgentHub, HostStatus } from './agents/hub.ts';
import type { Reconciler } from './agents/reconciler.ts';
import { ApiError } from './errors.ts';
import type { Fleet } from './fleet.ts';
import type { Ipam } from './ipam/ipam.ts';
import type { PrismaClient } from './generated/prisma/client.ts';

export const HOST_STATUSES = ['pending', 'online', 'offline'] as const satisfies readonly HostStatus[];
export const TRANSPORTS = ['websocket', 'polling'] as const;

export interface BehindHost {
  name: string;
  status: HostStatus;
  generation: { desired: number; applied: number };
}

export interface PoolUtilization {
  name: string;
  total: number;
  allocated: number;
  free: number;
  reserved: number;
}

export interface FleetSummary {
  hosts: Record<HostStatus, number> & { total: number };
  /** every host whose applied generation is below its desired one, by name */
  behind: BehindHost[];
  sessions: Record<(typeof TRANSPORTS)[number], number>;
  pools: PoolUtilization[];
}

export class FleetStatus {
  private constructor(
    private readonly fleet: Fleet,
    private readonly hub: AgentHub,
    private readonly reconciler: Reconciler,
    private readonly ipam: Ipam,
    /** hosts an executor had reached before this process started: offline, not pending */
    private readonly seenBefore: ReadonlySet<number>,
  ) {}

  /** One read at start (which hosts were ever seen); memory answers everything after. */
  static async load(deps: { prisma: PrismaClient; fleet: Fleet; hub: AgentHub; reconciler: Reconciler; ipam: Ipam }): Promise<FleetStatus> {
    const seen = await deps.prisma.host.findMany({ where: { lastSeenAt: { not: null } }, select: { id: true } });
    return new FleetStatus(deps.fleet, deps.hub, deps.reconciler, deps.ipam, new Set(seen.map((h) => h.id)));
  }

  hostStatus(hostId: number): HostStatus {
    return this.hub.statusOf(hostId, this.seenBefore.has(hostId) ? new Date(0) : null);
  }

  summary(): FleetSummary {
    const hosts = { total: 0, pending: 0, online: 0, offline: 0 };
    const behind: BehindHost[] = [];
    for (const host of this.fleet.hosts.values()) {
      const status = this.hostStatus(host.id);
      hosts.total++;
      hosts[status]++;
      const generation = this.reconciler.generationOf(host.id);
      if (generation.applied < generation.desired) behind.push({ name: host.name, status, generation });
    }
    behind.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const sessions = { websocket: 0, polling: 0 };
    for (const session of this.hub.all()) sessions[session.transport]++;
    return { hosts, behind, sessions, pools: this.pools() };
  }

  pools(): PoolUtilization[] {
    const pools: PoolUtilization[] = [];
    for (const name of this.ipam.poolNames()) {
      try {
        pools.push({ name, ...this.ipam.utilization(name) });
      } catch (error) {
        // A pool whose creation is still being written is not found yet: it is left out.
        if (!(error instanceof ApiError && error.code === 'POOL_NOT_FOUND')) throw error;
      }
    }
    return pools;
  }
}
