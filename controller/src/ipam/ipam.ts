// The allocator. It reads the fleet model (fleet.ts) for what is committed and keeps only what
// allocation needs beside it: per pool, an interval set of the ranges taken, and the claims of
// the batch being written (a host name, an address, a range, a network name an operation has
// taken but not yet committed). Operations run through the DatabaseWriter: each is checked and
// claims what it takes synchronously, in turn, so two operations of one batch never take the
// same thing; when the batch commits, each operation hands its rows to the model (which tells
// the reconciler) and drops its claims; when it fails, each gives its claims back. Every path
// that creates a subnet goes through allocate() or registerHost(), so first fit and the
// overlap checks hold under any concurrency.
import {
  blockSize,
  containsAddress,
  containsCidr,
  formatCidr,
  formatIPv4,
  isAligned,
  lastAddress,
  maskOf,
  mustParseCidr,
  overlaps,
  parseIPv4,
  type Cidr,
} from '@crossdock/shared';
import { insertRows } from '../db/raw-sql.ts';
import { StorageHealth } from '../db/storage.ts';
import { prismaTimestamp } from '../db/timestamp.ts';
import { DatabaseWriter, type BulkRow, type Prepared, type Tx } from '../db/writer.ts';
import { ApiError, notFound } from '../errors.ts';
import { Fleet, fleetPool, loadFleetRows, type FleetRows } from '../fleet.ts';
import type { Host, PrismaClient } from '../generated/prisma/client.ts';
import { DEFAULT_ENCAPSULATION, type Encapsulation, type PlanHost } from '../planner/desired.ts';
import { IntervalSet } from './interval-set.ts';
import { requireSubnetPrefixLength, resolveGateway } from './rules.ts';

export const DEFAULT_POOL_NAME = 'default';
export const DEFAULT_NETWORK_NAME = 'crossdock';

export type SubnetMode = 'network' | 'bip' | 'docker';

/** The network name a subnet of a Docker-owned network is recorded under: Docker's IPAM API never names the network. */
export function dockerOwnedNetworkName(cidr: string): string {
  return `docker/${cidr}`;
}

export interface SubnetRequest {
  pool?: string;
  prefixLength?: number;
  cidr?: Cidr;
  gateway?: string;
  network: string;
  mode: SubnetMode;
}

export interface HostRequest {
  name: string;
  address: string;
  interface: string;
  labels: Record<string, string>;
  tokenHash: string;
}

/** What allocate() answers with: the subnet row with its pool's and host's names. */
export interface AllocatedSubnet {
  id: number;
  cidr: string;
  gateway: string;
  network: string;
  mode: string;
  createdAt: Date;
  pool: { name: string };
  host: { name: string };
}

/** The allocation index of one pool: its ranges, parsed, and what in it is taken. */
interface PoolIndex {
  cidr: Cidr;
  reserved: Cidr[];
  reservedSet: IntervalSet;
  /** reserved ranges and subnets, claimed ones included */
  occupied: IntervalSet;
  /** subnets, claimed ones included */
  subnetCount: number;
}

/** A pool as an operation sees it: committed (id > 0) or being created in this batch (id 0). */
interface PoolView {
  id: number;
  name: string;
  subnetPrefixLength: number;
  index: PoolIndex;
}

/** A host as an operation sees it: committed (id > 0) or being registered in this batch (id 0). */
interface HostView {
  id: number;
  name: string;
  /** the registration claim of a host not yet committed: its identity within the batch */
  claim?: HostClaim;
}

interface HostClaim {
  name: string;
  address: string;
}

interface SubnetClaim {
  host: HostView;
  pool: PoolIndex;
  cidr: Cidr;
  network: string;
  mode: SubnetMode;
  /** a later operation of the batch deleted the host: the range is free again */
  released: boolean;
}

/** What the operations of the batch being written have taken, until each commits or is undone. */
class Claims {
  readonly pools = new Map<string, PoolView>();
  readonly removedPools = new Set<number>();
  readonly hosts = new Map<string, HostClaim>();
  /** address -> the name of the host taking it (a registration or a move) */
  readonly addresses = new Map<string, string>();
  /** host id -> the address it is moving to */
  readonly moves = new Map<number, string>();
  readonly removedHosts = new Set<number>();
  /** ranges claimed, by host: its id, or its registration claim while it has none */
  private readonly subnets = new Map<number | HostClaim, Set<SubnetClaim>>();
  readonly removedSubnets = new Set<number>();

  subnetsOf(host: HostView): Iterable<SubnetClaim> {
    return this.subnets.get(hostKey(host)) ?? [];
  }

  addSubnet(claim: SubnetClaim): void {
    const key = hostKey(claim.host);
    let set = this.subnets.get(key);
    if (!set) this.subnets.set(key, (set = new Set()));
    set.add(claim);
  }

  deleteSubnet(claim: SubnetClaim): void {
    const key = hostKey(claim.host);
    const set = this.subnets.get(key);
    set?.delete(claim);
    if (set?.size === 0) this.subnets.delete(key);
  }
}

/** A host's identity within a batch: one committed id, or one registration claim. */
function hostKey(host: HostView): number | HostClaim {
  return host.id > 0 ? host.id : host.claim!;
}

export class Ipam {
  readonly writer: DatabaseWriter;
  /** allocation index of each committed pool, by pool id */
  private readonly poolIndexes = new Map<number, PoolIndex>();
  private readonly claims = new Claims();

  constructor(
    /** the model: read for everything committed, changed here only when an operation commits */
    readonly fleet: Fleet,
    prisma: PrismaClient,
    storage = new StorageHealth(),
  ) {
    this.writer = new DatabaseWriter(prisma, storage);
    for (const pool of fleet.allPools()) {
      this.poolIndexes.set(pool.id, poolIndex(mustParseCidr(pool.cidr), pool.reserved.map(mustParseCidr)));
    }
    for (const host of fleet.hosts.values()) {
      for (const s of host.subnets) this.occupy(this.poolIndexes.get(fleet.poolOfSubnet(s.id)!)!, mustParseCidr(s.cidr));
    }
  }

  /** The model and its allocator from the database (tests; the controller builds both at start). */
  static async load(prisma: PrismaClient, storage = new StorageHealth()): Promise<Ipam> {
    return Ipam.fromRows(await loadFleetRows(prisma), prisma, storage);
  }

  static fromRows(rows: FleetRows, prisma: PrismaClient, storage = new StorageHealth()): Ipam {
    return new Ipam(Fleet.fromRows(rows), prisma, storage);
  }

  // ---- queries (committed state) ----

  poolNames(): string[] {
    return [...this.fleet.allPools()].map((p) => p.name);
  }

  hasPool(name: string): boolean {
    return this.fleet.poolByName(name) !== undefined;
  }

  hostIdByName(name: string): number | undefined {
    return this.fleet.hostByName(name)?.id;
  }

  /** Utilization in subnets of the pool's own size. */
  utilization(name: string): { total: number; allocated: number; free: number; reserved: number } {
    const pool = this.requirePool(name);
    const { cidr, reservedSet, occupied } = pool.index;
    const size = blockSize(pool.subnetPrefixLength);
    const end = lastAddress(cidr);
    const total = blockSize(cidr.prefixLength) / size;
    const usable = reservedSet.countFree(cidr.network, end, size);
    const free = occupied.countFree(cidr.network, end, size);
    return { total, allocated: usable - free, free, reserved: total - usable };
  }

  /** The next free subnets of a pool, lowest first, without reserving them. */
  available(name: string, prefixLength: number | undefined, limit: number): string[] {
    const pool = this.requirePool(name);
    const { cidr, occupied } = pool.index;
    const length = requireSubnetPrefixLength(prefixLength ?? pool.subnetPrefixLength, cidr, 'prefixLength');
    return occupied.firstFit(cidr.network, lastAddress(cidr), blockSize(length), limit).map((network) => formatCidr({ network, prefixLength: length }));
  }

  // ---- what an operation sees: the model with the batch's claims over it ----

  private pool(name: string): PoolView | undefined {
    const claimed = this.claims.pools.get(name);
    if (claimed) return claimed;
    const pool = this.fleet.poolByName(name);
    if (!pool || this.claims.removedPools.has(pool.id)) return undefined;
    return { id: pool.id, name: pool.name, subnetPrefixLength: pool.subnetPrefixLength, index: this.poolIndexes.get(pool.id)! };
  }

  private pools(): PoolView[] {
    const committed = [...this.fleet.allPools()].filter((p) => !this.claims.removedPools.has(p.id)).map((p) => this.pool(p.name)!);
    return [...committed, ...this.claims.pools.values()];
  }

  /** A pool operations may allocate from: committed, not being deleted. */
  private requirePool(name: string): PoolView {
    const pool = this.pool(name);
    if (!pool || pool.id === 0) throw notFound.pool(name, this.poolNames());
    return pool;
  }

  private host(name: string): HostView | undefined {
    const claim = this.claims.hosts.get(name);
    if (claim) return { id: 0, name, claim };
    const host = this.fleet.hostByName(name);
    return host && !this.claims.removedHosts.has(host.id) ? { id: host.id, name } : undefined;
  }

  /** A host operations may change: committed, not being deleted. */
  private requireHost(name: string): HostView & { committed: PlanHost } {
    const host = this.host(name);
    const committed = host && host.id > 0 ? this.fleet.hosts.get(host.id) : undefined;
    if (!host || !committed) throw notFound.host(name);
    return { ...host, committed };
  }

  /** The name of the host holding an address, counting registrations and moves in flight. */
  private addressHolder(address: string): string | undefined {
    const claimed = this.claims.addresses.get(address);
    if (claimed !== undefined) return claimed;
    const host = this.fleet.hostByAddress(address);
    return host && !this.claims.removedHosts.has(host.id) && !this.claims.moves.has(host.id) ? host.name : undefined;
  }

  /** Every host address, with its host's name, counting registrations and moves in flight. */
  private *addresses(): Generator<{ address: string; name: string }> {
    for (const host of this.fleet.hosts.values()) {
      if (!this.claims.removedHosts.has(host.id) && !this.claims.moves.has(host.id)) yield { address: host.address, name: host.name };
    }
    for (const [address, name] of this.claims.addresses) yield { address, name };
  }

  /** Whether the host has a subnet for this network name, or a bip subnet, as the batch has it so far. */
  private hasSubnet(host: HostView, which: { network: string } | { mode: 'bip' }): boolean {
    const committed = host.id > 0 ? ('network' in which ? this.fleet.subnetOfNetwork(host.id, which.network) : this.fleet.bipSubnet(host.id)) : undefined;
    if (committed !== undefined && !this.claims.removedSubnets.has(committed)) return true;
    for (const c of this.claims.subnetsOf(host)) {
      if (!c.released && ('network' in which ? c.network === which.network : c.mode === 'bip')) return true;
    }
    return false;
  }

  // ---- claims on the allocation index ----

  private occupy(index: PoolIndex, cidr: Cidr): void {
    index.occupied.add({ start: cidr.network, end: lastAddress(cidr) });
    index.subnetCount++;
  }

  private vacate(index: PoolIndex, cidr: Cidr): void {
    index.occupied.remove(cidr.network, lastAddress(cidr));
    index.subnetCount--;
  }

  // ---- operations ----

  createPool(input: {
    name: string;
    cidr: Cidr;
    subnetPrefixLength: number;
    reserved: Cidr[];
    allowFrom?: Cidr[];
    encapsulation?: Encapsulation;
    mtu?: number | null;
  }) {
    return this.writer.run(() => {
      if (this.pool(input.name)) throw new ApiError('POOL_EXISTS', `a pool named "${input.name}" already exists; choose another name`);
      for (const other of this.pools()) {
        if (overlaps(other.index.cidr, input.cidr)) {
          throw new ApiError(
            'POOL_OVERLAP',
            `${formatCidr(input.cidr)} overlaps pool "${other.name}" (${formatCidr(other.index.cidr)}); choose a range outside every existing pool`,
          );
        }
      }
      for (const { address, name } of this.addresses()) {
        if (containsAddress(input.cidr, parseIPv4(address) ?? -1)) {
          throw new ApiError(
            'ADDRESS_IN_POOL',
            `${formatCidr(input.cidr)} contains ${address}, the address of host "${name}"; a pool's addresses go to containers, so choose a range without host addresses`,
          );
        }
      }
      requireSubnetPrefixLength(input.subnetPrefixLength, input.cidr, 'subnetPrefixLength');
      const reserved = [...input.reserved].sort((a, b) => a.network - b.network);
      reserved.forEach((r, i) => {
        if (!containsCidr(input.cidr, r)) {
          throw new ApiError(
            'RESERVED_OUTSIDE_POOL',
            `reserved range ${formatCidr(r)} is outside the pool ${formatCidr(input.cidr)}; list only ranges inside it`,
          );
        }
        const previous = reserved[i - 1];
        if (previous && overlaps(previous, r)) {
          throw new ApiError('VALIDATION_FAILED', `reserved ranges ${formatCidr(previous)} and ${formatCidr(r)} overlap; list each address once`);
        }
      });
      const claim: PoolView = { id: 0, name: input.name, subnetPrefixLength: input.subnetPrefixLength, index: poolIndex(input.cidr, reserved) };
      this.claims.pools.set(input.name, claim);
      return {
        write: (tx: Tx) =>
          tx.pool.create({
            data: {
              name: input.name,
              cidr: formatCidr(input.cidr),
              subnetPrefixLength: input.subnetPrefixLength,
              allowFrom: JSON.stringify((input.allowFrom ?? []).map(formatCidr)),
              encapsulation: input.encapsulation ?? DEFAULT_ENCAPSULATION,
              mtu: input.mtu ?? null,
              reserved: { create: reserved.map((r) => ({ cidr: formatCidr(r) })) },
            },
            include: { reserved: { orderBy: { id: 'asc' } } },
          }),
        undo: () => this.claims.pools.delete(input.name),
        committed: (row) => {
          this.claims.pools.delete(input.name);
          this.poolIndexes.set(row.id, claim.index);
          this.fleet.addPool(fleetPool(row));
        },
      };
    });
  }

  deletePool(name: string) {
    return this.writer.run(() => {
      const pool = this.requirePool(name);
      if (pool.index.subnetCount > 0) {
        throw new ApiError(
          'POOL_IN_USE',
          `pool "${name}" still holds ${pool.index.subnetCount} subnet(s); release them first (GET /v1/subnets?pool=${name} lists them)`,
        );
      }
      this.claims.removedPools.add(pool.id);
      return {
        write: (tx: Tx) => tx.pool.delete({ where: { id: pool.id } }).then(() => undefined),
        undo: () => this.claims.removedPools.delete(pool.id),
        committed: () => {
          this.claims.removedPools.delete(pool.id);
          this.poolIndexes.delete(pool.id);
          this.fleet.removePool(pool.id);
        },
      };
    });
  }

  /**
   * Changes what is given of a pool's allowFrom list (every host's chains follow), encapsulation
   * and MTU (every host is replanned: how it reaches each peer may change).
   */
  updatePool(name: string, patch: { allowFrom?: Cidr[]; encapsulation?: Encapsulation; mtu?: number | null }) {
    return this.writer.run(() => {
      const pool = this.requirePool(name);
      return {
        write: (tx: Tx) =>
          tx.pool.update({
            where: { id: pool.id },
            data: {
              ...(patch.allowFrom === undefined ? {} : { allowFrom: JSON.stringify(patch.allowFrom.map(formatCidr)) }),
              ...(patch.encapsulation === undefined ? {} : { encapsulation: patch.encapsulation }),
              ...(patch.mtu === undefined ? {} : { mtu: patch.mtu }),
            },
            include: { reserved: { orderBy: { id: 'asc' } } },
          }),
        undo: () => {},
        committed: (row) => this.fleet.updatePool(fleetPool(row)),
      };
    });
  }

  /**
   * Checks a subnet request against the model and the batch's claims, and claims its range.
   * Returns the claim, its row and its undo; the caller writes the row.
   */
  private claimSubnet(host: HostView, request: SubnetRequest) {
    // A Docker-owned subnet is named after its CIDR, unique in the fleet.
    if (request.mode !== 'docker' && this.hasSubnet(host, { network: request.network })) {
      throw new ApiError(
        'NETWORK_NAME_IN_USE',
        `host "${host.name}" already has a subnet for network "${request.network}"; give the new subnet another network name`,
      );
    }
    if (request.mode === 'bip' && this.hasSubnet(host, { mode: 'bip' })) {
      throw new ApiError(
        'NETWORK_NAME_IN_USE',
        `host "${host.name}" already has a bip subnet (an engine has one default bridge); use mode "network" for another subnet`,
      );
    }
    let pool: PoolView;
    let cidr: Cidr;
    if (request.cidr) {
      cidr = request.cidr;
      // Callers parse CIDRs, which refuses host bits; this keeps a hand-built Cidr from slipping past.
      if (!Number.isInteger(cidr.prefixLength) || cidr.prefixLength < 0 || cidr.prefixLength > 32 || !isAligned(cidr.network, cidr.prefixLength)) {
        const block = formatCidr({ network: (cidr.network & maskOf(cidr.prefixLength)) >>> 0, prefixLength: cidr.prefixLength });
        throw new ApiError('CIDR_HOST_BITS_SET', `${formatIPv4(cidr.network)}/${cidr.prefixLength} is not aligned to its prefix length; use ${block}`);
      }
      const named = request.pool === undefined ? undefined : this.requirePool(request.pool);
      const found = named ?? this.pools().find((p) => p.id > 0 && containsCidr(p.index.cidr, cidr));
      if (!found || !containsCidr(found.index.cidr, cidr)) {
        const where = found ? `pool "${found.name}" (${formatCidr(found.index.cidr)})` : `any pool (${this.describePools()})`;
        throw new ApiError(
          'SUBNET_OUTSIDE_POOL',
          `${formatCidr(cidr)} is not inside ${where}; request a CIDR inside a pool, or create a pool that contains it`,
        );
      }
      pool = found;
      if (request.prefixLength !== undefined && request.prefixLength !== cidr.prefixLength) {
        throw new ApiError('INVALID_PREFIX_LENGTH', `prefixLength ${request.prefixLength} contradicts cidr ${formatCidr(cidr)}; give one or make them agree`);
      }
      requireSubnetPrefixLength(cidr.prefixLength, pool.index.cidr, 'the prefix length of cidr');
      const start = cidr.network;
      const end = lastAddress(cidr);
      if (pool.index.reservedSet.findOverlap(start, end)) {
        throw new ApiError(
          'SUBNET_RESERVED',
          `${formatCidr(cidr)} overlaps a reserved range of pool "${pool.name}" (${pool.index.reserved.map(formatCidr).join(', ')}); choose addresses outside it`,
        );
      }
      const taken = pool.index.occupied.findOverlap(start, end);
      if (taken) {
        const other = this.describeRange(taken.start, taken.end);
        const next = this.available(pool.name, cidr.prefixLength, 1)[0];
        throw new ApiError(
          'SUBNET_OVERLAP',
          `${formatCidr(cidr)} overlaps the allocated subnet ${other}${next ? `; the lowest free /${cidr.prefixLength} is ${next}` : ''}`,
        );
      }
    } else {
      const poolName = request.pool ?? DEFAULT_POOL_NAME;
      if (request.pool === undefined && !this.pool(poolName)) {
        throw new ApiError('POOL_NOT_FOUND', `no pool was named and there is no pool "${DEFAULT_POOL_NAME}"; name one of: ${this.describePools()}`);
      }
      pool = this.requirePool(poolName);
      const { cidr: range, occupied } = pool.index;
      const length = requireSubnetPrefixLength(request.prefixLength ?? pool.subnetPrefixLength, range, 'prefixLength');
      const [network] = occupied.firstFit(range.network, lastAddress(range), blockSize(length), 1);
      if (network === undefined) {
        throw new ApiError(
          'POOL_EXHAUSTED',
          `pool "${pool.name}" (${formatCidr(range)}) has no free /${length}; release a subnet, ask for a longer prefix, or use another pool`,
        );
      }
      cidr = { network, prefixLength: length };
    }
    const gateway = resolveGateway(cidr, request.gateway);
    const network = request.mode === 'docker' ? dockerOwnedNetworkName(formatCidr(cidr)) : request.network;
    const claim: SubnetClaim = { host, pool: pool.index, cidr, network, mode: request.mode, released: false };
    this.occupy(pool.index, cidr);
    this.claims.addSubnet(claim);
    return {
      claim,
      pool,
      data: { cidr: formatCidr(cidr), prefixLength: cidr.prefixLength, gateway, network, mode: request.mode, poolId: pool.id },
      undo: () => {
        this.claims.deleteSubnet(claim);
        if (!claim.released) this.vacate(pool.index, cidr);
      },
    };
  }

  allocate(hostName: string, request: SubnetRequest): Promise<AllocatedSubnet> {
    let facts: { pool: string; host: string; createdAt: string } | undefined;
    return this.writer
      .run(() => {
        const host = this.requireHost(hostName);
        const claimed = this.claimSubnet(host, request);
        const createdAt = prismaTimestamp(new Date());
        facts = { pool: claimed.pool.name, host: host.name, createdAt };
        return {
          bulk: subnetInsert(claimed.data, host.id, createdAt),
          undo: claimed.undo,
          committed: (row: Record<string, unknown>) => {
            this.claims.deleteSubnet(claimed.claim);
            this.fleet.addSubnet(host.id, { ...claimed.data, id: Number(row.id) });
          },
        } satisfies Prepared<Record<string, unknown>>;
      })
      .then((row) => ({
        id: Number(row.id),
        cidr: String(row.cidr),
        gateway: String(row.gateway),
        network: String(row.network),
        mode: String(row.mode),
        createdAt: new Date(facts!.createdAt),
        pool: { name: facts!.pool },
        host: { name: facts!.host },
      }));
  }

  releaseSubnet(id: number) {
    return this.writer.run(() => {
      const place = this.claims.removedSubnets.has(id) ? undefined : this.fleet.subnet(id);
      if (!place) throw notFound.subnet(id);
      const index = this.poolIndexes.get(place.poolId)!;
      const cidr = mustParseCidr(place.subnet.cidr);
      this.claims.removedSubnets.add(id);
      this.vacate(index, cidr);
      return {
        write: (tx: Tx) => tx.subnet.delete({ where: { id } }).then(() => undefined),
        undo: () => {
          this.claims.removedSubnets.delete(id);
          this.occupy(index, cidr);
        },
        committed: () => {
          this.claims.removedSubnets.delete(id);
          this.fleet.removeSubnet(id);
        },
      };
    });
  }

  registerHost(input: HostRequest, firstSubnet: SubnetRequest | null) {
    return this.writer.run(() => {
      this.checkHostUnique(input.name, input.address);
      this.checkAddressOutsidePools(input.address);
      const claim: HostClaim = { name: input.name, address: input.address };
      this.claims.hosts.set(input.name, claim);
      this.claims.addresses.set(input.address, input.name);
      const release = () => {
        this.claims.hosts.delete(input.name);
        this.claims.addresses.delete(input.address);
      };
      let subnet: ReturnType<Ipam['claimSubnet']> | undefined;
      try {
        subnet = firstSubnet ? this.claimSubnet({ id: 0, name: input.name, claim }, firstSubnet) : undefined;
      } catch (error) {
        release();
        throw error;
      }
      return {
        write: async (tx: Tx) => {
          const created = await tx.host.create({
            data: {
              name: input.name,
              address: input.address,
              interface: input.interface,
              labels: JSON.stringify(input.labels),
              tokenHash: input.tokenHash,
              updatedAt: new Date(),
            },
          });
          // The same INSERT as allocate(): one way to write a subnet row.
          let row: RegisteredSubnet | undefined;
          if (subnet)
            await insertRows(
              tx,
              this.writer.dialect,
              [subnetInsert(subnet.data, created.id, prismaTimestamp(new Date()))],
              (r) => (row = { ...subnet.data, id: Number(r.id) }),
            );
          return { host: created, subnet: row };
        },
        undo: () => {
          subnet?.undo();
          release();
        },
        committed: ({ host, subnet: row }: { host: HostRow; subnet?: RegisteredSubnet }) => {
          if (subnet) this.claims.deleteSubnet(subnet.claim);
          release();
          this.fleet.addHost({ id: host.id, name: host.name, address: host.address, interface: host.interface }, row ? [row] : []);
        },
      } satisfies Prepared<{ host: HostRow; subnet?: RegisteredSubnet }>;
    });
  }

  updateHost(name: string, patch: { address?: string; interface?: string; labels?: Record<string, string> }) {
    return this.writer.run(() => {
      const host = this.requireHost(name);
      const from = this.claims.moves.get(host.id) ?? host.committed.address;
      const to = patch.address;
      const moving = to !== undefined && to !== from;
      if (moving) {
        this.checkHostUnique(undefined, to);
        this.checkAddressOutsidePools(to);
        this.claims.addresses.set(to, name);
        if (from !== host.committed.address) this.claims.addresses.delete(from);
        this.claims.moves.set(host.id, to);
      }
      const restore = () => {
        if (!moving) return;
        this.claims.addresses.delete(to);
        if (from === host.committed.address) {
          this.claims.moves.delete(host.id);
        } else {
          this.claims.moves.set(host.id, from);
          this.claims.addresses.set(from, name);
        }
      };
      return {
        write: (tx: Tx) =>
          tx.host.update({
            where: { id: host.id },
            data: {
              address: patch.address,
              interface: patch.interface,
              labels: patch.labels === undefined ? undefined : JSON.stringify(patch.labels),
              updatedAt: new Date(),
            },
          }),
        undo: restore,
        committed: (row: HostRow) => {
          // The last move of the batch to commit is where the host is: drop the claims of all.
          if (moving) {
            this.claims.addresses.delete(to);
            if (this.claims.moves.get(host.id) === to) this.claims.moves.delete(host.id);
          }
          this.fleet.updateHost(host.id, { address: row.address, interface: row.interface });
        },
      };
    });
  }

  /** Runs a write that touches one host but not the model (token rotation, status). */
  updateHostRow<T>(name: string, write: (tx: Tx, hostId: number) => Promise<T>) {
    return this.writer.run(() => {
      const host = this.requireHost(name);
      return { write: (tx: Tx) => write(tx, host.id), undo: () => {} };
    });
  }

  deleteHost(name: string) {
    return this.writer.run(() => {
      const host = this.requireHost(name);
      // Its subnets, and ranges claimed for it earlier in this batch: the delete's cascade
      // removes those rows too, so their ranges are free from now on.
      const subnets = host.committed.subnets.filter((s) => !this.claims.removedSubnets.has(s.id));
      const claimed = [...this.claims.subnetsOf(host)].filter((c) => !c.released);
      const freed = subnets.map((s) => ({ id: s.id, index: this.poolIndexes.get(this.fleet.poolOfSubnet(s.id)!)!, cidr: mustParseCidr(s.cidr) }));
      for (const s of freed) {
        this.claims.removedSubnets.add(s.id);
        this.vacate(s.index, s.cidr);
      }
      for (const c of claimed) {
        c.released = true;
        this.vacate(c.pool, c.cidr);
      }
      this.claims.removedHosts.add(host.id);
      const move = this.claims.moves.get(host.id);
      if (move !== undefined) this.claims.addresses.delete(move);
      return {
        write: (tx: Tx) => tx.host.delete({ where: { id: host.id } }).then(() => undefined),
        undo: () => {
          if (move !== undefined) this.claims.addresses.set(move, name);
          this.claims.removedHosts.delete(host.id);
          for (const c of claimed) {
            c.released = false;
            this.occupy(c.pool, c.cidr);
          }
          for (const s of freed) {
            this.claims.removedSubnets.delete(s.id);
            this.occupy(s.index, s.cidr);
          }
        },
        committed: () => {
          this.claims.removedHosts.delete(host.id);
          for (const s of freed) this.claims.removedSubnets.delete(s.id);
          this.fleet.removeHost(host.id);
        },
      };
    });
  }

  private checkHostUnique(name: string | undefined, address: string): void {
    if (name !== undefined && this.host(name)) {
      throw new ApiError('HOST_EXISTS', `a host named "${name}" is already registered; choose another name or DELETE /v1/hosts/${name} first`);
    }
    const holder = this.addressHolder(address);
    if (holder !== undefined) {
      throw new ApiError('ADDRESS_IN_USE', `address ${address} is already registered to host "${holder}"; each host needs its own address`);
    }
  }

  /** A host address inside a pool would be handed out again, as a container's or a gateway. */
  private checkAddressOutsidePools(address: string): void {
    const value = parseIPv4(address) ?? -1;
    for (const pool of this.pools()) {
      if (containsAddress(pool.index.cidr, value)) {
        throw new ApiError(
          'ADDRESS_IN_POOL',
          `address ${address} is inside pool "${pool.name}" (${formatCidr(pool.index.cidr)}), whose addresses go to containers; use the host's own address on the shared network, outside every pool`,
        );
      }
    }
  }

  private describePools(): string {
    const pools = this.pools().filter((p) => p.id > 0);
    return pools.length === 0 ? 'none exist; POST /v1/pools creates one' : pools.map((p) => `"${p.name}" ${formatCidr(p.index.cidr)}`).join(', ');
  }

  /** The committed subnet that is exactly this range, named with its host; else the range. */
  private describeRange(start: number, end: number): string {
    const range = formatCidr({ network: start, prefixLength: 32 - Math.log2(end - start + 1) });
    for (const host of this.fleet.hosts.values()) {
      const subnet = host.subnets.find((s) => s.cidr === range);
      if (subnet) return `${range} (host "${host.name}", id ${subnet.id})`;
    }
    return range;
  }
}

function poolIndex(cidr: Cidr, reserved: Cidr[]): PoolIndex {
  const index: PoolIndex = { cidr, reserved, reservedSet: new IntervalSet(), occupied: new IntervalSet(), subnetCount: 0 };
  for (const r of reserved) {
    index.reservedSet.add({ start: r.network, end: lastAddress(r) });
    index.occupied.add({ start: r.network, end: lastAddress(r) });
  }
  return index;
}

/** A host's first subnet, as registerHost() answers with it. */
interface RegisteredSubnet {
  id: number;
  cidr: string;
  gateway: string;
  network: string;
  mode: SubnetMode;
  poolId: number;
}

/** The host row, as Prisma declares it. */
type HostRow = Pick<Host, 'id' | 'name' | 'address' | 'interface'>;

/** The row every path that creates a subnet inserts. */
function subnetInsert(data: Record<string, string | number>, hostId: number, createdAt: string): BulkRow {
  return { table: 'Subnet', key: 'cidr', values: { ...data, hostId, createdAt } };
}
