// The fleet model: every host with its address, interface and subnets, every pool, and the
// firewall policy they make. The database is read once at start (loadFleetRows); the allocator
// builds its index from the same rows, and the model is then changed only by committed IPAM
// events, row by row, so a change costs the rows it touched, not a reload of the world.
import { parseIPv4, type FirewallRule } from '@crossdock/shared';
import type { Host, Pool, PrismaClient, Subnet } from './generated/prisma/client.ts';
import { allowFromOf, type PoolFacts } from './ipam/ipam.ts';
import { firewallPolicy, type FirewallPolicy, type PlanHost, type PlanSubnet } from './planner/desired.ts';

/** Everything the controller keeps in memory, as the database has it. */
export interface FleetRows {
  pools: Array<Pick<Pool, 'id' | 'name' | 'cidr' | 'subnetPrefixLength' | 'allowFrom'> & { reserved: Array<{ cidr: string }> }>;
  hosts: Array<Pick<Host, 'id' | 'name' | 'address' | 'interface'>>;
  subnets: Array<Pick<Subnet, 'id' | 'cidr' | 'gateway' | 'network' | 'mode' | 'poolId' | 'hostId'>>;
}

/** The one read of the fleet at start: the model and the allocator's index are built from it. */
export async function loadFleetRows(prisma: PrismaClient): Promise<FleetRows> {
  const [pools, hosts, subnets] = await Promise.all([
    prisma.pool.findMany({
      select: { id: true, name: true, cidr: true, subnetPrefixLength: true, allowFrom: true, reserved: { select: { cidr: true } } },
      orderBy: { id: 'asc' },
    }),
    prisma.host.findMany({ select: { id: true, name: true, address: true, interface: true }, orderBy: { id: 'asc' } }),
    prisma.subnet.findMany({ select: { id: true, cidr: true, gateway: true, network: true, mode: true, poolId: true, hostId: true }, orderBy: { id: 'asc' } }),
  ]);
  return { pools, hosts, subnets };
}

export class Fleet {
  readonly hosts = new Map<number, PlanHost>();
  /** each host's address, parsed once (parsing is most of the policy's cost otherwise) */
  private readonly addresses = new Map<number, number>();
  /** in id order, which is creation order */
  private pools: PoolFacts[] = [];
  /**
   * The firewall policy every host's chains include. Replaced only when its rules change, so
   * a caller that kept the previous object learns whether a change touched it by identity.
   */
  policy: FirewallPolicy = firewallPolicy([], []);
  /** subnets across the fleet: what bounds the routes any one host may hold */
  subnetCount = 0;

  static fromRows(rows: FleetRows): Fleet {
    const fleet = new Fleet();
    const subnetsOf = new Map<number, PlanSubnet[]>();
    for (const s of rows.subnets) {
      const list = subnetsOf.get(s.hostId) ?? [];
      list.push({ id: s.id, cidr: s.cidr, gateway: s.gateway, network: s.network, mode: s.mode as PlanSubnet['mode'] });
      subnetsOf.set(s.hostId, list);
    }
    for (const h of rows.hosts) fleet.setHost({ ...h, subnets: subnetsOf.get(h.id) ?? [] });
    fleet.pools = rows.pools.map((p) => ({ id: p.id, name: p.name, cidr: p.cidr, allowFrom: allowFromOf(p.allowFrom) }));
    fleet.refreshPolicy();
    return fleet;
  }

  /** Rebuilds the policy from the hosts' addresses and the pools: mostly a sort of the addresses. */
  private refreshPolicy(): void {
    const next = firewallPolicy(this.pools, this.addresses.values());
    if (!samePolicy(this.policy, next)) this.policy = next;
  }

  // Updates from IPAM change events: each returns the host as it was before.

  setPool(pool: PoolFacts): void {
    const i = this.pools.findIndex((p) => p.id === pool.id);
    if (i >= 0) this.pools[i] = pool;
    else this.pools.push(pool); // ids only grow: still in id order
    this.refreshPolicy();
  }

  removePool(poolId: number): void {
    this.pools = this.pools.filter((p) => p.id !== poolId);
    this.refreshPolicy();
  }

  private setHost(host: PlanHost): void {
    this.subnetCount += host.subnets.length - (this.hosts.get(host.id)?.subnets.length ?? 0);
    this.hosts.set(host.id, host);
    this.addresses.set(host.id, mustParseIPv4(host.address));
  }

  addHost(host: PlanHost): void {
    this.setHost(host);
    this.refreshPolicy();
  }

  addSubnet(hostId: number, subnet: PlanSubnet): { before: PlanHost; after: PlanHost } | undefined {
    const before = this.hosts.get(hostId);
    if (!before) return undefined;
    // Ids only grow, so appending keeps the list in id order.
    const after = { ...before, subnets: [...before.subnets.filter((s) => s.id !== subnet.id), subnet] };
    this.subnetCount += after.subnets.length - before.subnets.length;
    this.hosts.set(hostId, after);
    return { before, after };
  }

  removeSubnet(hostId: number, subnetId: number): { before: PlanHost; after: PlanHost } | undefined {
    const before = this.hosts.get(hostId);
    if (!before) return undefined;
    const after = { ...before, subnets: before.subnets.filter((s) => s.id !== subnetId) };
    this.subnetCount += after.subnets.length - before.subnets.length;
    this.hosts.set(hostId, after);
    return { before, after };
  }

  updateHost(hostId: number, change: { address: string; interface: string }): { before: PlanHost; after: PlanHost } | undefined {
    const before = this.hosts.get(hostId);
    if (!before) return undefined;
    const after = { ...before, address: change.address, interface: change.interface };
    this.setHost(after);
    if (after.address !== before.address) this.refreshPolicy();
    return { before, after };
  }

  removeHost(id: number): PlanHost | undefined {
    const before = this.hosts.get(id);
    this.subnetCount -= before?.subnets.length ?? 0;
    this.hosts.delete(id);
    this.addresses.delete(id);
    if (before) this.refreshPolicy();
    return before;
  }
}

function mustParseIPv4(address: string): number {
  const value = parseIPv4(address);
  if (value === null) throw new Error(`host address ${address} is not an IPv4 address`);
  return value;
}

function samePolicy(a: FirewallPolicy, b: FirewallPolicy): boolean {
  const rule = (r: FirewallRule) => `${r.source} ${r.destination} ${r.target} ${r.comment}`;
  return (
    a.hostRulesLeftOut === b.hostRulesLeftOut &&
    a.pools.length === b.pools.length &&
    a.pools.every((p, i) => p === b.pools[i]) &&
    a.reach.length === b.reach.length &&
    a.reach.every((r, i) => rule(r) === rule(b.reach[i]!))
  );
}
