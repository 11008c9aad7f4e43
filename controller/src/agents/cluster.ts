// The planner's view of the cluster: every host with its address, interface and subnets, and
// every pool. Loaded once, then refreshed row by row from IPAM change events, so a change
// costs the rows it touched, not a reload of the world.
import type { PrismaClient } from '../generated/prisma/client.ts';
import { allowFromOf, type PoolFacts } from '../ipam/ipam.ts';
import type { PlanHost, PlanSubnet } from '../planner/desired.ts';

const hostSelect = {
  id: true,
  name: true,
  address: true,
  interface: true,
  subnets: { select: { id: true, cidr: true, gateway: true, network: true, mode: true }, orderBy: { id: 'asc' } },
} as const;

type HostRow = { id: number; name: string; address: string; interface: string; subnets: Array<{ id: number; cidr: string; gateway: string; network: string; mode: string }> };

function toPlanHost(row: HostRow): PlanHost {
  return {
    id: row.id,
    name: row.name,
    address: row.address,
    interface: row.interface,
    subnets: row.subnets.map((s): PlanSubnet => ({ ...s, mode: s.mode as PlanSubnet['mode'] })),
  };
}

export class Cluster {
  readonly hosts = new Map<number, PlanHost>();
  /** in id order, which is creation order */
  private poolRows: PoolFacts[] = [];

  constructor(private readonly prisma: PrismaClient) {}

  get pools(): string[] {
    return this.poolRows.map((p) => p.cidr);
  }

  async load(): Promise<void> {
    this.hosts.clear();
    for (const row of await this.prisma.host.findMany({ select: hostSelect })) this.hosts.set(row.id, toPlanHost(row));
    const pools = await this.prisma.pool.findMany({ select: { id: true, name: true, cidr: true, allowFrom: true }, orderBy: { id: 'asc' } });
    this.poolRows = pools.map((p) => ({ ...p, allowFrom: allowFromOf(p.allowFrom) }));
  }

  // Updates from IPAM change events: each returns the host as it was before.

  setPool(pool: PoolFacts): void {
    const i = this.poolRows.findIndex((p) => p.id === pool.id);
    if (i >= 0) this.poolRows[i] = pool;
    else this.poolRows.push(pool); // ids only grow: still in id order
  }

  removePool(poolId: number): void {
    this.poolRows = this.poolRows.filter((p) => p.id !== poolId);
  }

  addHost(host: PlanHost): void {
    this.hosts.set(host.id, host);
  }

  addSubnet(hostId: number, subnet: PlanSubnet): { before: PlanHost; after: PlanHost } | undefined {
    const before = this.hosts.get(hostId);
    if (!before) return undefined;
    // Ids only grow, so appending keeps the list in id order.
    const after = { ...before, subnets: [...before.subnets.filter((s) => s.id !== subnet.id), subnet] };
    this.hosts.set(hostId, after);
    return { before, after };
  }

  removeSubnet(hostId: number, subnetId: number): { before: PlanHost; after: PlanHost } | undefined {
    const before = this.hosts.get(hostId);
    if (!before) return undefined;
    const after = { ...before, subnets: before.subnets.filter((s) => s.id !== subnetId) };
    this.hosts.set(hostId, after);
    return { before, after };
  }

  updateHost(hostId: number, change: { address: string; interface: string }): { before: PlanHost; after: PlanHost } | undefined {
    const before = this.hosts.get(hostId);
    if (!before) return undefined;
    const after = { ...before, address: change.address, interface: change.interface };
    this.hosts.set(hostId, after);
    return { before, after };
  }

  removeHost(id: number): PlanHost | undefined {
    const before = this.hosts.get(id);
    this.hosts.delete(id);
    return before;
  }
}
