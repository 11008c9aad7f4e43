// The planner's view of the cluster: every host with its address, interface and subnets, and
// every pool. Loaded once, then refreshed row by row from IPAM change events, so a change
// costs the rows it touched, not a reload of the world.
import type { PrismaClient } from '../generated/prisma/client.ts';
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
  pools: string[] = [];

  constructor(private readonly prisma: PrismaClient) {}

  async load(): Promise<void> {
    this.hosts.clear();
    for (const row of await this.prisma.host.findMany({ select: hostSelect })) this.hosts.set(row.id, toPlanHost(row));
    await this.reloadPools();
  }

  async reloadPools(): Promise<void> {
    this.pools = (await this.prisma.pool.findMany({ select: { cidr: true }, orderBy: { id: 'asc' } })).map((p) => p.cidr);
  }

  /** Re-reads one host; returns the previous and current view (undefined where absent). */
  async reloadHost(id: number): Promise<{ before: PlanHost | undefined; after: PlanHost | undefined }> {
    const before = this.hosts.get(id);
    const row = await this.prisma.host.findUnique({ where: { id }, select: hostSelect });
    const after = row ? toPlanHost(row) : undefined;
    if (after) this.hosts.set(id, after);
    else this.hosts.delete(id);
    return { before, after };
  }

  removeHost(id: number): PlanHost | undefined {
    const before = this.hosts.get(id);
    this.hosts.delete(id);
    return before;
  }
}
