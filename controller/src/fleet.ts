// The fleet model: every pool, every host with its address, interface and subnets, and the
// firewall policy they make. It is the controller's one copy of what the database holds.
// Loaded once at start (loadFleetRows), then changed only when an IPAM operation commits
// (the allocator calls the mutators below from its commit callback, synchronously), row by
// row, so a change costs the rows it touched, not a reload of the world. Each mutation is
// announced on `events` as a FleetEvent, with the hosts as they were before and are after:
// the reconciler plans from that, and nothing else needs to read the database to follow.
import { EventEmitter } from 'node:events';
import { parseIPv4, type FirewallRule } from '@crossdock/shared';
import type { Host, Pool, PrismaClient, Subnet } from './generated/prisma/client.ts';
import type { FleetChange } from './planner/change.ts';
import {
  DEFAULT_ENCAPSULATION,
  DEFAULT_VXLAN,
  ENCAPSULATIONS,
  firewallPolicy,
  type Encapsulation,
  type FirewallPolicy,
  type PlanHost,
  type PlanSubnet,
  type ReachPolicy,
  type VxlanSettings,
} from './planner/desired.ts';

/** Everything the controller keeps in memory, as the database has it. */
export interface FleetRows {
  pools: Array<Pick<Pool, 'id' | 'name' | 'cidr' | 'subnetPrefixLength' | 'allowFrom' | 'encapsulation' | 'mtu'> & { reserved: Array<{ cidr: string }> }>;
  hosts: Array<Pick<Host, 'id' | 'name' | 'address' | 'interface'>>;
  subnets: Array<Pick<Subnet, 'id' | 'cidr' | 'gateway' | 'network' | 'mode' | 'poolId' | 'hostId'>>;
}

/** The one read of the fleet at start. */
export async function loadFleetRows(prisma: PrismaClient): Promise<FleetRows> {
  const [pools, hosts, subnets] = await Promise.all([
    prisma.pool.findMany({
      select: {
        id: true,
        name: true,
        cidr: true,
        subnetPrefixLength: true,
        allowFrom: true,
        encapsulation: true,
        mtu: true,
        reserved: { select: { cidr: true }, orderBy: { id: 'asc' } },
      },
      orderBy: { id: 'asc' },
    }),
    prisma.host.findMany({ select: { id: true, name: true, address: true, interface: true }, orderBy: { id: 'asc' } }),
    prisma.subnet.findMany({ select: { id: true, cidr: true, gateway: true, network: true, mode: true, poolId: true, hostId: true }, orderBy: { id: 'asc' } }),
  ]);
  return { pools, hosts, subnets };
}

/** A pool as the model holds it. */
export interface FleetPool {
  id: number;
  name: string;
  cidr: string;
  subnetPrefixLength: number;
  /** ranges never handed out, in address order */
  reserved: string[];
  /** networks outside the fleet whose traffic may reach the pool's subnets */
  allowFrom: string[];
  /** when a peer's subnets of this pool go through VXLAN */
  encapsulation: Encapsulation;
  /** the MTU of the pool's Docker networks; null: the underlay's less 50 where encapsulation is possible */
  mtu: number | null;
}

/** A subnet row's place in the model. */
export interface SubnetPlace {
  hostId: number;
  poolId: number;
  subnet: PlanSubnet;
}

/** One committed change, as the model announces it on `events` ('change'). */
export interface FleetEvent {
  change: FleetChange;
  /** the firewall policy before the change (the same object when the change left it alone) */
  policyBefore: FirewallPolicy;
  /** what happened, in words, for the job history */
  reason: string;
}

/** The allowFrom column: a JSON array of CIDRs; null (a pool from before the column) is none. */
export function allowFromOf(column: string | null): string[] {
  return column === null ? [] : (JSON.parse(column) as string[]);
}

/** A pool row (with its reserved ranges) as the model holds it. */
export function fleetPool(row: FleetRows['pools'][number]): FleetPool {
  return {
    id: row.id,
    name: row.name,
    cidr: row.cidr,
    subnetPrefixLength: row.subnetPrefixLength,
    reserved: row.reserved.map((r) => r.cidr),
    allowFrom: allowFromOf(row.allowFrom),
    encapsulation: (ENCAPSULATIONS as readonly string[]).includes(row.encapsulation) ? (row.encapsulation as Encapsulation) : DEFAULT_ENCAPSULATION,
    mtu: row.mtu,
  };
}

export class Fleet {
  /** by id; each host's subnets in id order */
  readonly hosts = new Map<number, PlanHost>();
  private readonly hostIdByName = new Map<string, number>();
  private readonly hostIdByAddress = new Map<string, number>();
  /** each host's address, parsed once (parsing is most of the policy's cost otherwise) */
  private readonly addresses = new Map<number, number>();
  private readonly subnets = new Map<number, { hostId: number; poolId: number }>();
  /** per host: network name -> subnet id (what the allocator checks a new network name against) */
  private readonly networks = new Map<number, Map<string, number>>();
  /** per host: its bip subnet (an engine has one default bridge) */
  private readonly bips = new Map<number, number>();
  /** by id, in id order (ids only grow, and an update keeps its place) */
  private readonly pools = new Map<number, FleetPool>();
  private readonly poolIdByName = new Map<string, number>();
  private readonly subnetsPerPool = new Map<number, number>();
  /**
   * The firewall policy every host's chains include. Replaced only when its rules change, so
   * a caller that kept the previous object learns whether a change touched it by identity.
   */
  policy: FirewallPolicy = firewallPolicy([], []);
  /** subnets across the fleet: what bounds the routes any one host may hold */
  subnetCount = 0;
  /** 'change' (FleetEvent), after each committed mutation */
  readonly events = new EventEmitter();
  /** some pool allows encapsulation: kept by putPool/removePool */
  private encapsulating = false;
  /** How hosts reach each other's subnets: read by the planner, following the pools. */
  readonly reach: ReachPolicy;

  constructor(vxlan: VxlanSettings = DEFAULT_VXLAN) {
    const fleet = this;
    this.reach = {
      vxlan,
      encapsulationOf: (subnet) => fleet.pools.get(fleet.subnets.get(subnet.id)?.poolId ?? -1)?.encapsulation ?? DEFAULT_ENCAPSULATION,
      mtuOf: (subnet) => fleet.pools.get(fleet.subnets.get(subnet.id)?.poolId ?? -1)?.mtu ?? null,
      get possible() {
        return fleet.encapsulating;
      },
    };
  }

  static fromRows(rows: FleetRows, vxlan: VxlanSettings = DEFAULT_VXLAN): Fleet {
    const fleet = new Fleet(vxlan);
    for (const p of rows.pools) fleet.putPool(fleetPool(p));
    const subnetsOf = new Map<number, PlanSubnet[]>(rows.hosts.map((h) => [h.id, []]));
    for (const s of rows.subnets) {
      const list = subnetsOf.get(s.hostId);
      if (!list || !fleet.pools.has(s.poolId)) throw new Error(`subnet ${s.cidr} refers to a missing host or pool`);
      const subnet = planSubnet(s);
      list.push(subnet);
      fleet.placeSubnet(s.id, s.hostId, s.poolId, subnet);
    }
    for (const h of rows.hosts) fleet.putHost({ ...h, subnets: subnetsOf.get(h.id)! });
    fleet.policy = firewallPolicy([...fleet.pools.values()], fleet.addresses.values());
    return fleet;
  }

  // ---- queries ----

  hostByName(name: string): PlanHost | undefined {
    const id = this.hostIdByName.get(name);
    return id === undefined ? undefined : this.hosts.get(id);
  }

  hostByAddress(address: string): PlanHost | undefined {
    const id = this.hostIdByAddress.get(address);
    return id === undefined ? undefined : this.hosts.get(id);
  }

  /** Where a subnet is: its host, its pool and its facts. */
  subnet(id: number): SubnetPlace | undefined {
    const place = this.subnets.get(id);
    const subnet = place && this.hosts.get(place.hostId)?.subnets.find((s) => s.id === id);
    return place && subnet ? { ...place, subnet } : undefined;
  }

  /** The id of the host's subnet for a Docker network name, if it has one. */
  subnetOfNetwork(hostId: number, network: string): number | undefined {
    return this.networks.get(hostId)?.get(network);
  }

  /** The id of the host's bip subnet, if it has one. */
  bipSubnet(hostId: number): number | undefined {
    return this.bips.get(hostId);
  }

  /** The pool a subnet was allocated from. */
  poolOfSubnet(id: number): number | undefined {
    return this.subnets.get(id)?.poolId;
  }

  pool(id: number): FleetPool | undefined {
    return this.pools.get(id);
  }

  poolByName(name: string): FleetPool | undefined {
    const id = this.poolIdByName.get(name);
    return id === undefined ? undefined : this.pools.get(id);
  }

  /** In id order, which is creation order. */
  allPools(): IterableIterator<FleetPool> {
    return this.pools.values();
  }

  /** Subnets allocated from a pool. */
  subnetsInPool(poolId: number): number {
    return this.subnetsPerPool.get(poolId) ?? 0;
  }

  // ---- mutations: only from a committed IPAM operation ----

  addPool(pool: FleetPool): void {
    const possible = this.encapsulating;
    this.putPool(pool);
    this.announce({ type: 'pools.changed', reach: possible !== this.encapsulating }, `pool ${pool.name} created`);
  }

  updatePool(pool: FleetPool): void {
    const before = this.pools.get(pool.id);
    this.putPool(pool);
    const reach = before?.encapsulation !== pool.encapsulation || before.mtu !== pool.mtu;
    const what = before && before.encapsulation !== pool.encapsulation ? ` (encapsulation ${before.encapsulation} -> ${pool.encapsulation})` : '';
    this.announce({ type: 'pools.changed', reach }, `pool ${pool.name} changed${what}`);
  }

  removePool(poolId: number): void {
    const pool = this.pools.get(poolId);
    if (!pool) return;
    const possible = this.encapsulating;
    this.pools.delete(poolId);
    this.poolIdByName.delete(pool.name);
    this.subnetsPerPool.delete(poolId);
    this.encapsulating = [...this.pools.values()].some((p) => p.encapsulation !== 'never');
    this.announce({ type: 'pools.changed', reach: possible !== this.encapsulating }, `pool ${pool.name} deleted`);
  }

  addHost(host: Omit<PlanHost, 'subnets'>, subnets: Array<PlanSubnet & { poolId: number }> = []): void {
    const added: PlanHost = { ...host, subnets: subnets.map(planSubnet) };
    this.putHost(added);
    for (const s of subnets) this.placeSubnet(s.id, host.id, s.poolId, s);
    this.announce({ type: 'host.added', host: added }, `host ${host.name} registered`);
  }

  addSubnet(hostId: number, subnet: PlanSubnet & { poolId: number }): void {
    const before = this.hosts.get(hostId);
    if (!before) throw new Error(`subnet ${subnet.cidr} committed for host ${hostId}, which the model does not hold`);
    // Ids only grow, so appending keeps the list in id order.
    const planned = planSubnet(subnet);
    const after = { ...before, subnets: [...before.subnets, planned] };
    this.putHost(after);
    this.placeSubnet(subnet.id, hostId, subnet.poolId, subnet);
    this.announce({ type: 'subnet.added', after, subnet: planned }, `subnet ${subnet.cidr} allocated to ${after.name}`);
  }

  removeSubnet(subnetId: number): void {
    const place = this.subnet(subnetId);
    if (!place) return;
    const before = this.hosts.get(place.hostId)!;
    const after = { ...before, subnets: before.subnets.filter((s) => s.id !== subnetId) };
    this.putHost(after);
    this.unplaceSubnet(subnetId, place.subnet);
    this.announce({ type: 'subnet.removed', before, after, subnet: place.subnet }, `subnet ${place.subnet.cidr} released from ${after.name}`);
  }

  updateHost(hostId: number, change: { address: string; interface: string }): void {
    const before = this.hosts.get(hostId);
    if (!before) return;
    const after = { ...before, address: change.address, interface: change.interface };
    this.putHost(after);
    const reason = before.address !== after.address ? `host ${after.name} moved from ${before.address} to ${after.address}` : `host ${after.name} changed`;
    this.announce({ type: 'host.moved', before, after }, reason);
  }

  removeHost(hostId: number): void {
    const host = this.hosts.get(hostId);
    if (!host) return;
    this.hosts.delete(hostId);
    this.hostIdByName.delete(host.name);
    this.hostIdByAddress.delete(host.address);
    this.addresses.delete(hostId);
    this.subnetCount -= host.subnets.length;
    for (const s of host.subnets) this.unplaceSubnet(s.id, s);
    this.networks.delete(hostId);
    this.announce({ type: 'host.removed', host }, `host ${host.name} deleted`);
  }

  // ---- bookkeeping ----

  private putPool(pool: FleetPool): void {
    const previous = this.pools.get(pool.id);
    if (previous && previous.name !== pool.name) this.poolIdByName.delete(previous.name);
    this.pools.set(pool.id, pool);
    this.poolIdByName.set(pool.name, pool.id);
    this.encapsulating = [...this.pools.values()].some((p) => p.encapsulation !== 'never');
  }

  /** Stores a host (new or a new version of one) and keeps the lookups and counts true. */
  private putHost(host: PlanHost): void {
    const previous = this.hosts.get(host.id);
    if (previous) {
      this.hostIdByName.delete(previous.name);
      this.hostIdByAddress.delete(previous.address);
    }
    this.subnetCount += host.subnets.length - (previous?.subnets.length ?? 0);
    this.hosts.set(host.id, host);
    this.hostIdByName.set(host.name, host.id);
    this.hostIdByAddress.set(host.address, host.id);
    if (previous?.address !== host.address) this.addresses.set(host.id, mustParseIPv4(host.address));
  }

  private placeSubnet(id: number, hostId: number, poolId: number, subnet: Pick<PlanSubnet, 'network' | 'mode'>): void {
    this.subnets.set(id, { hostId, poolId });
    let networks = this.networks.get(hostId);
    if (!networks) this.networks.set(hostId, (networks = new Map()));
    networks.set(subnet.network, id);
    if (subnet.mode === 'bip') this.bips.set(hostId, id);
    this.subnetsPerPool.set(poolId, this.subnetsInPool(poolId) + 1);
  }

  private unplaceSubnet(id: number, subnet: Pick<PlanSubnet, 'network' | 'mode'>): void {
    const place = this.subnets.get(id);
    if (!place) return;
    this.subnets.delete(id);
    this.networks.get(place.hostId)?.delete(subnet.network);
    if (this.bips.get(place.hostId) === id) this.bips.delete(place.hostId);
    this.subnetsPerPool.set(place.poolId, this.subnetsInPool(place.poolId) - 1);
  }

  /** Rebuilds the policy (mostly a sort of the addresses) and tells the listeners. */
  private announce(change: FleetChange, reason: string): void {
    const policyBefore = this.policy;
    const touchesPolicy = change.type !== 'subnet.added' && change.type !== 'subnet.removed';
    if (touchesPolicy) {
      const next = firewallPolicy([...this.pools.values()], this.addresses.values());
      if (!samePolicy(policyBefore, next)) this.policy = next;
    }
    this.events.emit('change', { change, policyBefore, reason } satisfies FleetEvent);
  }
}

function planSubnet(row: Pick<Subnet, 'id' | 'cidr' | 'gateway' | 'network' | 'mode'>): PlanSubnet {
  return { id: row.id, cidr: row.cidr, gateway: row.gateway, network: row.network, mode: row.mode as PlanSubnet['mode'] };
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
