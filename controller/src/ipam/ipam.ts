// The allocator: an in-memory index of pools, subnets and hosts, rebuilt from the database at
// start-up, guarded by the database, and changed only through the DatabaseWriter. Every path
// that creates a subnet goes through allocate(), so first fit and the overlap checks hold
// under any concurrency.
import { EventEmitter } from 'node:events';
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
import { StorageHealth } from '../db/storage.ts';
import { prismaTimestamp } from '../db/timestamp.ts';
import { ApiError, notFound } from '../errors.ts';
import type { Host, PrismaClient, Subnet } from '../generated/prisma/client.ts';
import { loadFleetRows, type FleetRows } from '../fleet.ts';
import type { PlanHost, PlanSubnet } from '../planner/desired.ts';
import { IntervalSet } from './interval-set.ts';
import { requireSubnetPrefixLength, resolveGateway } from './rules.ts';
import { insertRows } from '../db/raw-sql.ts';
import { DatabaseWriter, type BulkRow, type Prepared, type Tx } from '../db/writer.ts';

export const DEFAULT_POOL_NAME = 'default';
export const DEFAULT_NETWORK_NAME = 'crossdock';

export type SubnetMode = 'network' | 'bip';

interface PoolEntry {
  id: number;
  name: string;
  cidr: Cidr;
  subnetPrefixLength: number;
  reserved: Cidr[];
  reservedSet: IntervalSet;
  /** reserved ranges and subnets */
  occupied: IntervalSet;
  subnetCount: number;
}

interface SubnetEntry {
  id: number;
  poolId: number;
  hostId: number;
  cidr: Cidr;
  network: string;
  mode: SubnetMode;
}

interface HostEntry {
  id: number;
  name: string;
  address: string;
  subnets: Map<number, SubnetEntry>;
  /** subnets reserved for this host whose write has not committed yet */
  pending: Set<SubnetEntry>;
  /** network names taken on this host, including ones not yet committed */
  networks: Set<string>;
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

/** A subnet as the fleet model holds it: the planner's own shape. */
export type SubnetFacts = PlanSubnet;

/** What changed, carrying the committed rows, so listeners need no database read. */
export type IpamChange =
  | { type: 'host.created'; host: Omit<PlanHost, 'subnets'>; subnets: SubnetFacts[] }
  | { type: 'host.updated'; hostId: number; address: string; interface: string }
  | { type: 'host.deleted'; hostId: number; name: string; subnets: Array<{ id: number; cidr: string }> }
  | { type: 'subnet.created'; hostId: number; subnet: SubnetFacts }
  | { type: 'subnet.deleted'; subnetId: number; hostId: number; cidr: string }
  | { type: 'pool.created' | 'pool.updated'; pool: PoolFacts }
  | { type: 'pool.deleted'; poolId: number; poolName: string };

/** A pool as the planner needs it. */
export interface PoolFacts {
  id: number;
  name: string;
  cidr: string;
  allowFrom: string[];
}

/** The allowFrom column: a JSON array of CIDRs; null (a pool from before the column) is none. */
export function allowFromOf(column: string | null): string[] {
  return column === null ? [] : (JSON.parse(column) as string[]);
}

type PoolRow = { id: number; name: string; cidr: string; allowFrom: string | null };

function poolFacts(row: PoolRow): PoolFacts {
  return { id: row.id, name: row.name, cidr: row.cidr, allowFrom: allowFromOf(row.allowFrom) };
}

export const subnetInclude = { pool: { select: { name: true } }, host: { select: { name: true } } } as const;

export class Ipam {
  private readonly pools = new Map<string, PoolEntry>();
  private readonly poolsById = new Map<number, PoolEntry>();
  private readonly subnets = new Map<number, SubnetEntry>();
  private readonly hostsByName = new Map<string, HostEntry>();
  private readonly hostsById = new Map<number, HostEntry>();
  private readonly hostsByAddress = new Map<string, HostEntry>();
  readonly writer: DatabaseWriter;
  /** Emits 'change' (IpamChange) after each committed operation. */
  readonly events = new EventEmitter();

  private constructor(prisma: PrismaClient, storage: StorageHealth) {
    this.writer = new DatabaseWriter(prisma, storage);
  }

  /** Builds the index from the database. */
  /** Builds the index from the database (tests; the controller uses fromRows with the fleet's rows). */
  static async load(prisma: PrismaClient, storage = new StorageHealth()): Promise<Ipam> {
    return Ipam.fromRows(await loadFleetRows(prisma), prisma, storage);
  }

  /** Builds the index from the rows the fleet model was loaded from: one read of the database. */
  static fromRows(rows: FleetRows, prisma: PrismaClient, storage = new StorageHealth()): Ipam {
    const ipam = new Ipam(prisma, storage);
    for (const p of rows.pools) {
      ipam.indexPool(
        p.id,
        p.name,
        mustParseCidr(p.cidr),
        p.subnetPrefixLength,
        p.reserved.map((r) => mustParseCidr(r.cidr)),
      );
    }
    for (const h of rows.hosts) ipam.indexHost({ id: h.id, name: h.name, address: h.address, subnets: new Map(), pending: new Set(), networks: new Set() });
    for (const s of rows.subnets) {
      ipam.indexSubnet({ id: s.id, cidr: mustParseCidr(s.cidr), poolId: s.poolId, hostId: s.hostId, network: s.network, mode: s.mode as SubnetMode });
    }
    return ipam;
  }

  // ---- index maintenance (synchronous, used by prepare/undo) ----

  private indexPool(id: number, name: string, cidr: Cidr, subnetPrefixLength: number, reserved: Cidr[]): PoolEntry {
    const entry: PoolEntry = { id, name, cidr, subnetPrefixLength, reserved, reservedSet: new IntervalSet(), occupied: new IntervalSet(), subnetCount: 0 };
    for (const r of reserved) {
      entry.reservedSet.add({ start: r.network, end: lastAddress(r) });
      entry.occupied.add({ start: r.network, end: lastAddress(r) });
    }
    this.pools.set(name, entry);
    if (id > 0) this.poolsById.set(id, entry);
    return entry;
  }

  private unindexPool(entry: PoolEntry): void {
    this.pools.delete(entry.name);
    this.poolsById.delete(entry.id);
  }

  private indexHost(entry: HostEntry): void {
    this.hostsByName.set(entry.name, entry);
    this.hostsByAddress.set(entry.address, entry);
    if (entry.id > 0) this.hostsById.set(entry.id, entry);
  }

  private unindexHost(entry: HostEntry): void {
    this.hostsByName.delete(entry.name);
    this.hostsByAddress.delete(entry.address);
    this.hostsById.delete(entry.id);
  }

  private indexSubnet(entry: SubnetEntry, pool = this.poolsById.get(entry.poolId), host = this.hostsById.get(entry.hostId)): void {
    if (!pool || !host) throw new Error(`subnet ${formatCidr(entry.cidr)} refers to a missing pool or host`);
    pool.occupied.add({ start: entry.cidr.network, end: lastAddress(entry.cidr) });
    pool.subnetCount++;
    host.networks.add(entry.network);
    if (entry.id > 0) {
      host.subnets.set(entry.id, entry);
      this.subnets.set(entry.id, entry);
    } else {
      host.pending.add(entry);
    }
  }

  private unindexSubnet(entry: SubnetEntry, pool: PoolEntry, host: HostEntry): void {
    pool.occupied.remove(entry.cidr.network, lastAddress(entry.cidr));
    pool.subnetCount--;
    host.networks.delete(entry.network);
    host.pending.delete(entry);
    host.subnets.delete(entry.id);
    this.subnets.delete(entry.id);
  }

  // ---- queries ----

  poolNames(): string[] {
    return [...this.pools.keys()];
  }

  hasPool(name: string): boolean {
    return this.pools.has(name);
  }

  hostIdByName(name: string): number | undefined {
    const id = this.hostsByName.get(name)?.id;
    return id !== undefined && id > 0 ? id : undefined;
  }

  /** Utilization in subnets of the pool's own size. */
  utilization(name: string): { total: number; allocated: number; free: number; reserved: number } {
    const pool = this.requirePool(name);
    const size = blockSize(pool.subnetPrefixLength);
    const start = pool.cidr.network;
    const end = lastAddress(pool.cidr);
    const total = blockSize(pool.cidr.prefixLength) / size;
    const usable = pool.reservedSet.countFree(start, end, size);
    const free = pool.occupied.countFree(start, end, size);
    return { total, allocated: usable - free, free, reserved: total - usable };
  }

  /** The next free subnets of a pool, lowest first, without reserving them. */
  available(name: string, prefixLength: number | undefined, limit: number): string[] {
    const pool = this.requirePool(name);
    const length = requireSubnetPrefixLength(prefixLength ?? pool.subnetPrefixLength, pool.cidr, 'prefixLength');
    return pool.occupied
      .firstFit(pool.cidr.network, lastAddress(pool.cidr), blockSize(length), limit)
      .map((network) => formatCidr({ network, prefixLength: length }));
  }

  private requirePool(name: string): PoolEntry {
    const pool = this.pools.get(name);
    if (!pool || pool.id <= 0) throw notFound.pool(name, this.poolNames());
    return pool;
  }

  // ---- operations ----

  createPool(input: { name: string; cidr: Cidr; subnetPrefixLength: number; reserved: Cidr[]; allowFrom?: Cidr[] }) {
    return this.writer.run(() => {
      if (this.pools.has(input.name)) throw new ApiError('POOL_EXISTS', `a pool named "${input.name}" already exists; choose another name`);
      for (const other of this.pools.values()) {
        if (overlaps(other.cidr, input.cidr)) {
          throw new ApiError(
            'POOL_OVERLAP',
            `${formatCidr(input.cidr)} overlaps pool "${other.name}" (${formatCidr(other.cidr)}); choose a range outside every existing pool`,
          );
        }
      }
      for (const host of this.hostsByAddress.values()) {
        if (containsAddress(input.cidr, parseIPv4(host.address) ?? -1)) {
          throw new ApiError(
            'ADDRESS_IN_POOL',
            `${formatCidr(input.cidr)} contains ${host.address}, the address of host "${host.name}"; a pool's addresses go to containers, so choose a range without host addresses`,
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
      const entry = this.indexPool(0, input.name, input.cidr, input.subnetPrefixLength, reserved);
      return {
        write: (tx: Tx) =>
          tx.pool.create({
            data: {
              name: input.name,
              cidr: formatCidr(input.cidr),
              subnetPrefixLength: input.subnetPrefixLength,
              allowFrom: JSON.stringify((input.allowFrom ?? []).map(formatCidr)),
              reserved: { create: reserved.map((r) => ({ cidr: formatCidr(r) })) },
            },
            include: { reserved: { orderBy: { id: 'asc' } } },
          }),
        undo: () => this.unindexPool(entry),
        committed: (pool) => {
          entry.id = pool.id;
          this.poolsById.set(pool.id, entry);
          this.emit({ type: 'pool.created', pool: poolFacts(pool) });
        },
      };
    });
  }

  deletePool(name: string) {
    return this.writer.run(() => {
      const pool = this.requirePool(name);
      if (pool.subnetCount > 0) {
        throw new ApiError(
          'POOL_IN_USE',
          `pool "${name}" still holds ${pool.subnetCount} subnet(s); release them first (GET /v1/subnets?pool=${name} lists them)`,
        );
      }
      this.unindexPool(pool);
      return {
        write: (tx: Tx) => tx.pool.delete({ where: { id: pool.id } }).then(() => undefined),
        undo: () => {
          this.pools.set(pool.name, pool);
          this.poolsById.set(pool.id, pool);
        },
        committed: () => this.emit({ type: 'pool.deleted', poolId: pool.id, poolName: name }),
      };
    });
  }

  /** Replaces a pool's allowFrom list; every host's chains follow. */
  updatePool(name: string, patch: { allowFrom: Cidr[] }) {
    return this.writer.run(() => {
      const pool = this.requirePool(name);
      return {
        write: (tx: Tx) =>
          tx.pool.update({
            where: { id: pool.id },
            data: { allowFrom: JSON.stringify(patch.allowFrom.map(formatCidr)) },
            include: { reserved: { orderBy: { id: 'asc' } } },
          }),
        undo: () => {},
        committed: (row) => this.emit({ type: 'pool.updated', pool: poolFacts(row) }),
      };
    });
  }

  /**
   * Checks a subnet request against the index and reserves its range. Returns the reservation
   * and its undo; the caller writes the row.
   */
  private reserveSubnet(host: HostEntry, request: SubnetRequest) {
    if (host.networks.has(request.network)) {
      throw new ApiError(
        'NETWORK_NAME_IN_USE',
        `host "${host.name}" already has a subnet for network "${request.network}"; give the new subnet another network name`,
      );
    }
    if (request.mode === 'bip' && [...host.subnets.values()].some((s) => s.mode === 'bip')) {
      throw new ApiError(
        'NETWORK_NAME_IN_USE',
        `host "${host.name}" already has a bip subnet (an engine has one default bridge); use mode "network" for another subnet`,
      );
    }
    let pool: PoolEntry;
    let cidr: Cidr;
    if (request.cidr) {
      cidr = request.cidr;
      // Callers parse CIDRs, which refuses host bits; this keeps a hand-built Cidr from slipping past.
      if (!Number.isInteger(cidr.prefixLength) || cidr.prefixLength < 0 || cidr.prefixLength > 32 || !isAligned(cidr.network, cidr.prefixLength)) {
        const block = formatCidr({ network: (cidr.network & maskOf(cidr.prefixLength)) >>> 0, prefixLength: cidr.prefixLength });
        throw new ApiError('CIDR_HOST_BITS_SET', `${formatIPv4(cidr.network)}/${cidr.prefixLength} is not aligned to its prefix length; use ${block}`);
      }
      const named = request.pool === undefined ? undefined : this.requirePool(request.pool);
      const found = named ?? [...this.pools.values()].find((p) => p.id > 0 && containsCidr(p.cidr, cidr));
      if (!found || !containsCidr(found.cidr, cidr)) {
        const where = found ? `pool "${found.name}" (${formatCidr(found.cidr)})` : `any pool (${this.describePools()})`;
        throw new ApiError(
          'SUBNET_OUTSIDE_POOL',
          `${formatCidr(cidr)} is not inside ${where}; request a CIDR inside a pool, or create a pool that contains it`,
        );
      }
      pool = found;
      if (request.prefixLength !== undefined && request.prefixLength !== cidr.prefixLength) {
        throw new ApiError('INVALID_PREFIX_LENGTH', `prefixLength ${request.prefixLength} contradicts cidr ${formatCidr(cidr)}; give one or make them agree`);
      }
      requireSubnetPrefixLength(cidr.prefixLength, pool.cidr, 'the prefix length of cidr');
      const start = cidr.network;
      const end = lastAddress(cidr);
      const reserved = pool.reservedSet.findOverlap(start, end);
      if (reserved) {
        throw new ApiError(
          'SUBNET_RESERVED',
          `${formatCidr(cidr)} overlaps a reserved range of pool "${pool.name}" (${pool.reserved.map(formatCidr).join(', ')}); choose addresses outside it`,
        );
      }
      const taken = pool.occupied.findOverlap(start, end);
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
      if (!this.pools.has(poolName) && request.pool === undefined) {
        throw new ApiError('POOL_NOT_FOUND', `no pool was named and there is no pool "${DEFAULT_POOL_NAME}"; name one of: ${this.describePools()}`);
      }
      pool = this.requirePool(poolName);
      const length = requireSubnetPrefixLength(request.prefixLength ?? pool.subnetPrefixLength, pool.cidr, 'prefixLength');
      const [network] = pool.occupied.firstFit(pool.cidr.network, lastAddress(pool.cidr), blockSize(length), 1);
      if (network === undefined) {
        throw new ApiError(
          'POOL_EXHAUSTED',
          `pool "${pool.name}" (${formatCidr(pool.cidr)}) has no free /${length}; release a subnet, ask for a longer prefix, or use another pool`,
        );
      }
      cidr = { network, prefixLength: length };
    }
    const gateway = resolveGateway(cidr, request.gateway);
    const entry: SubnetEntry = { id: 0, poolId: pool.id, hostId: host.id, cidr, network: request.network, mode: request.mode };
    this.indexSubnet(entry, pool, host);
    return {
      entry,
      pool,
      data: { cidr: formatCidr(cidr), prefixLength: cidr.prefixLength, gateway, network: request.network, mode: request.mode, poolId: pool.id },
      undo: () => this.unindexSubnet(entry, pool, host),
    };
  }

  /**
   * Records a committed subnet; false if a later operation of the same batch deleted its host
   * (that delete already released the range, and its cascade removed the row).
   */
  private commitSubnet(entry: SubnetEntry, host: HostEntry, id: number): boolean {
    if (!host.pending.delete(entry)) return false;
    entry.id = id;
    entry.hostId = host.id;
    host.subnets.set(id, entry);
    this.subnets.set(id, entry);
    return true;
  }

  allocate(hostName: string, request: SubnetRequest): Promise<AllocatedSubnet> {
    let facts: { pool: string; host: string; createdAt: string } | undefined;
    return this.writer
      .run(() => {
        const host = this.hostsByName.get(hostName);
        if (!host || host.id <= 0) throw notFound.host(hostName);
        const reservation = this.reserveSubnet(host, request);
        const createdAt = prismaTimestamp(new Date());
        facts = { pool: reservation.pool.name, host: host.name, createdAt };
        return {
          bulk: subnetInsert(reservation.data, host.id, createdAt),
          undo: reservation.undo,
          committed: (row: Record<string, unknown>) => {
            const subnet = { ...reservation.data, id: Number(row.id) };
            if (this.commitSubnet(reservation.entry, host, subnet.id)) this.emit({ type: 'subnet.created', hostId: host.id, subnet: subnetFacts(subnet) });
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
      const entry = this.subnets.get(id);
      if (!entry) throw notFound.subnet(id);
      const pool = this.poolsById.get(entry.poolId)!;
      const host = this.hostsById.get(entry.hostId)!;
      this.unindexSubnet(entry, pool, host);
      return {
        write: (tx: Tx) => tx.subnet.delete({ where: { id } }).then(() => undefined),
        undo: () => this.indexSubnet(entry, pool, host),
        committed: () => this.emit({ type: 'subnet.deleted', subnetId: id, hostId: host.id, cidr: formatCidr(entry.cidr) }),
      };
    });
  }

  registerHost(input: HostRequest, firstSubnet: SubnetRequest | null) {
    return this.writer.run(() => {
      this.checkHostUnique(input.name, input.address);
      this.checkAddressOutsidePools(input.address);
      const host: HostEntry = { id: 0, name: input.name, address: input.address, subnets: new Map(), pending: new Set(), networks: new Set() };
      this.indexHost(host);
      let reservation: ReturnType<Ipam['reserveSubnet']> | undefined;
      try {
        reservation = firstSubnet ? this.reserveSubnet(host, firstSubnet) : undefined;
      } catch (error) {
        this.unindexHost(host);
        throw error;
      }
      const undo = () => {
        reservation?.undo();
        this.unindexHost(host);
      };
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
          let subnet: SubnetRow | undefined;
          if (reservation) {
            await insertRows(
              tx,
              [subnetInsert(reservation.data, created.id, prismaTimestamp(new Date()))],
              (row) => (subnet = subnetFacts({ ...reservation.data, id: Number(row.id) })),
            );
          }
          return { host: created, subnet };
        },
        undo,
        committed: ({ host: created, subnet }: { host: HostRow; subnet?: SubnetRow }) => {
          host.id = created.id;
          this.hostsById.set(created.id, host);
          if (reservation && subnet) this.commitSubnet(reservation.entry, host, subnet.id);
          this.emit({
            type: 'host.created',
            host: { id: created.id, name: created.name, address: created.address, interface: created.interface },
            subnets: subnet ? [subnetFacts(subnet)] : [],
          });
        },
      } satisfies Prepared<{ host: HostRow; subnet?: SubnetRow }>;
    });
  }

  updateHost(name: string, patch: { address?: string; interface?: string; labels?: Record<string, string> }) {
    return this.writer.run(() => {
      const host = this.hostsByName.get(name);
      if (!host || host.id <= 0) throw notFound.host(name);
      const oldAddress = host.address;
      const addressChanged = patch.address !== undefined && patch.address !== oldAddress;
      if (addressChanged) {
        this.checkHostUnique(undefined, patch.address!);
        this.checkAddressOutsidePools(patch.address!);
        this.hostsByAddress.delete(oldAddress);
        host.address = patch.address!;
        this.hostsByAddress.set(host.address, host);
      }
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
        undo: () => {
          if (!addressChanged) return;
          this.hostsByAddress.delete(host.address);
          host.address = oldAddress;
          this.hostsByAddress.set(oldAddress, host);
        },
        committed: (row: HostRow) => this.emit({ type: 'host.updated', hostId: host.id, address: row.address, interface: row.interface }),
      };
    });
  }

  /** Runs a write that touches one host but not the index (token rotation, status). */
  updateHostRow<T>(name: string, write: (tx: Tx, hostId: number) => Promise<T>) {
    return this.writer.run(() => {
      const host = this.hostsByName.get(name);
      if (!host || host.id <= 0) throw notFound.host(name);
      return { write: (tx: Tx) => write(tx, host.id), undo: () => {} };
    });
  }

  deleteHost(name: string) {
    return this.writer.run(() => {
      const host = this.hostsByName.get(name);
      if (!host || host.id <= 0) throw notFound.host(name);
      // Pending subnets too: a request queued before this one in the same batch may still be
      // committing one for this host, and the delete's cascade removes its row.
      const released = [...host.subnets.values(), ...host.pending];
      for (const s of released) this.unindexSubnet(s, this.poolsById.get(s.poolId)!, host);
      this.unindexHost(host);
      return {
        write: (tx: Tx) => tx.host.delete({ where: { id: host.id } }).then(() => undefined),
        undo: () => {
          this.indexHost(host);
          for (const s of released) this.indexSubnet(s);
        },
        committed: () =>
          this.emit({
            type: 'host.deleted',
            hostId: host.id,
            name,
            subnets: released.filter((s) => s.id > 0).map((s) => ({ id: s.id, cidr: formatCidr(s.cidr) })),
          }),
      };
    });
  }

  private checkHostUnique(name: string | undefined, address: string): void {
    if (name !== undefined && this.hostsByName.has(name)) {
      throw new ApiError('HOST_EXISTS', `a host named "${name}" is already registered; choose another name or DELETE /v1/hosts/${name} first`);
    }
    const holder = this.hostsByAddress.get(address);
    if (holder) {
      throw new ApiError('ADDRESS_IN_USE', `address ${address} is already registered to host "${holder.name}"; each host needs its own address`);
    }
  }

  /** A host address inside a pool would be handed out again, as a container's or a gateway. */
  private checkAddressOutsidePools(address: string): void {
    const value = parseIPv4(address) ?? -1;
    for (const pool of this.pools.values()) {
      if (containsAddress(pool.cidr, value)) {
        throw new ApiError(
          'ADDRESS_IN_POOL',
          `address ${address} is inside pool "${pool.name}" (${formatCidr(pool.cidr)}), whose addresses go to containers; use the host's own address on the shared network, outside every pool`,
        );
      }
    }
  }

  private describePools(): string {
    const pools = [...this.pools.values()].filter((p) => p.id > 0);
    return pools.length === 0 ? 'none exist; POST /v1/pools creates one' : pools.map((p) => `"${p.name}" ${formatCidr(p.cidr)}`).join(', ');
  }

  private describeRange(start: number, end: number): string {
    for (const s of this.subnets.values()) {
      if (s.cidr.network === start && lastAddress(s.cidr) === end) {
        return `${formatCidr(s.cidr)} (host "${this.hostsById.get(s.hostId)?.name ?? '?'}", id ${s.id})`;
      }
    }
    return formatCidr({ network: start, prefixLength: 32 - Math.log2(end - start + 1) });
  }

  private emit(change: IpamChange): void {
    this.events.emit('change', change);
  }
}

/** The database rows, as Prisma declares them. */
type HostRow = Pick<Host, 'id' | 'name' | 'address' | 'interface'>;

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

type SubnetRow = Pick<Subnet, 'id' | 'cidr' | 'gateway' | 'network' | 'mode'>;

/** The row every path that creates a subnet inserts. */
function subnetInsert(data: Record<string, string | number>, hostId: number, createdAt: string): BulkRow {
  return { table: 'Subnet', key: 'cidr', values: { ...data, hostId, createdAt } };
}

function subnetFacts(row: SubnetRow): SubnetFacts {
  return { id: row.id, cidr: row.cidr, gateway: row.gateway, network: row.network, mode: row.mode as SubnetMode };
}
