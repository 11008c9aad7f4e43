// The allocator against a brute-force model, on real databases (SQLite and PostgreSQL): random pools, reserved
// ranges and request sequences (some fired concurrently), checked after every step and
// after rebuilding the index from the database.
import { blockSize, containsCidr, formatCidr, formatIPv4, isAligned, lastAddress, mustParseCidr, overlaps, parseCidr, type Cidr } from '@crossdock/shared';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, ERROR_STATUS, type ErrorCode } from '../errors.ts';
import { createTestDatabase, describeEachStore } from '../test-support.ts';
import { DEFAULT_POOL_NAME, Ipam, type SubnetRequest } from './ipam.ts';

type Db = Awaited<ReturnType<typeof createTestDatabase>>;
type Prisma = Db['prisma'];

const TEN = 0x0a000000;
/** Runs of the model test; CROSSDOCK_PROPERTY_RUNS=1000 for a deeper search. */
const PROPERTY_RUNS = Number(process.env.CROSSDOCK_PROPERTY_RUNS ?? 30);
const MAX_SUBNET_PREFIX = 30;

let tokenCounter = 0;
function hostInput(name: string, address: string) {
  return { name, address, interface: 'eth0', labels: {}, tokenHash: `hash-${++tokenCounter}` };
}

function blockContaining(address: number, prefixLength: number): Cidr {
  return { network: address - (address % blockSize(prefixLength)), prefixLength };
}

function firstHost(cidr: Cidr): string {
  return formatIPv4(cidr.network + 1);
}

// ---------------------------------------------------------------- the model

interface MPool {
  name: string;
  cidr: Cidr;
  subnetPrefixLength: number;
  reserved: Cidr[];
}
interface MHost {
  name: string;
  address: string;
}
interface MSubnet {
  id: number;
  cidr: Cidr;
  pool: string;
  host: string;
  network: string;
}

type Outcome = { ok: true; cidr?: Cidr } | { ok: false; codes: ErrorCode[] };

class Model {
  pools: MPool[] = [];
  hosts: MHost[] = [];
  subnets: MSubnet[] = [];

  pool(name: string): MPool | undefined {
    return this.pools.find((p) => p.name === name);
  }

  host(name: string): MHost | undefined {
    return this.hosts.find((h) => h.name === name);
  }

  private occupied(pool: MPool): Cidr[] {
    return [...pool.reserved, ...this.subnets.filter((s) => s.pool === pool.name).map((s) => s.cidr)];
  }

  /** Lowest aligned free blocks, by walking every block of the pool in address order. */
  firstFit(pool: MPool, prefixLength: number, limit: number): Cidr[] {
    const taken = this.occupied(pool);
    const out: Cidr[] = [];
    const size = blockSize(prefixLength);
    for (let n = pool.cidr.network; n + size - 1 <= lastAddress(pool.cidr) && out.length < limit; n += size) {
      const candidate = { network: n, prefixLength };
      if (!taken.some((t) => overlaps(t, candidate))) out.push(candidate);
    }
    return out;
  }

  utilization(pool: MPool) {
    const size = blockSize(pool.subnetPrefixLength);
    const subnets = this.subnets.filter((s) => s.pool === pool.name).map((s) => s.cidr);
    let total = 0;
    let reserved = 0;
    let allocated = 0;
    let free = 0;
    for (let n = pool.cidr.network; n + size - 1 <= lastAddress(pool.cidr); n += size) {
      const block = { network: n, prefixLength: pool.subnetPrefixLength };
      total++;
      if (pool.reserved.some((r) => overlaps(r, block))) reserved++;
      else if (subnets.some((s) => overlaps(s, block))) allocated++;
      else free++;
    }
    return { total, allocated, free, reserved };
  }

  /** Allocation by length: exactly one possible answer. */
  allocateByLength(hostName: string, poolName: string | undefined, prefixLength: number | undefined): Outcome {
    if (!this.host(hostName)) return { ok: false, codes: ['HOST_NOT_FOUND'] };
    const pool = this.pool(poolName ?? DEFAULT_POOL_NAME);
    if (!pool) return { ok: false, codes: ['POOL_NOT_FOUND'] };
    const length = prefixLength ?? pool.subnetPrefixLength;
    if (length < pool.cidr.prefixLength || length > MAX_SUBNET_PREFIX) return { ok: false, codes: ['INVALID_PREFIX_LENGTH'] };
    const [cidr] = this.firstFit(pool, length, 1);
    if (!cidr) return { ok: false, codes: ['POOL_EXHAUSTED'] };
    return { ok: true, cidr };
  }

  /** An exact CIDR: every rule it breaks is an acceptable answer. */
  allocateCidr(hostName: string, cidr: Cidr, poolName: string | undefined): Outcome {
    if (!this.host(hostName)) return { ok: false, codes: ['HOST_NOT_FOUND'] };
    let pool: MPool | undefined;
    if (poolName !== undefined) {
      pool = this.pool(poolName);
      if (!pool) return { ok: false, codes: ['POOL_NOT_FOUND'] };
    } else {
      pool = this.pools.find((p) => containsCidr(p.cidr, cidr));
    }
    if (!pool || !containsCidr(pool.cidr, cidr)) return { ok: false, codes: ['SUBNET_OUTSIDE_POOL'] };
    const codes: ErrorCode[] = [];
    if (cidr.prefixLength > MAX_SUBNET_PREFIX) codes.push('INVALID_PREFIX_LENGTH');
    if (pool.reserved.some((r) => overlaps(r, cidr))) codes.push('SUBNET_RESERVED');
    if (this.subnets.some((s) => overlaps(s.cidr, cidr))) codes.push('SUBNET_OVERLAP');
    return codes.length ? { ok: false, codes } : { ok: true, cidr };
  }

  register(name: string, address: string, firstSubnetPool: string | undefined | null): Outcome {
    const codes: ErrorCode[] = [];
    if (this.host(name)) codes.push('HOST_EXISTS');
    if (this.hosts.some((h) => h.address === address)) codes.push('ADDRESS_IN_USE');
    if (codes.length) return { ok: false, codes };
    if (firstSubnetPool === null) return { ok: true };
    this.hosts.push({ name, address });
    const outcome = this.allocateByLength(name, firstSubnetPool, undefined);
    this.hosts.pop();
    return outcome;
  }
}

// ---------------------------------------------------------------- reading the database

async function snapshot(prisma: Prisma) {
  const [pools, hosts, subnets] = await Promise.all([
    prisma.pool.findMany({ include: { reserved: { orderBy: { cidr: 'asc' } } }, orderBy: { name: 'asc' } }),
    prisma.host.findMany({ orderBy: { name: 'asc' } }),
    prisma.subnet.findMany({ include: { pool: true, host: true }, orderBy: { id: 'asc' } }),
  ]);
  return {
    pools: pools.map((p) => ({ name: p.name, cidr: p.cidr, subnetPrefixLength: p.subnetPrefixLength, reserved: p.reserved.map((r) => r.cidr) })),
    hosts: hosts.map((h) => ({ id: h.id, name: h.name, address: h.address, tokenHash: h.tokenHash })),
    subnets: subnets.map((s) => ({
      id: s.id,
      cidr: s.cidr,
      prefixLength: s.prefixLength,
      gateway: s.gateway,
      network: s.network,
      mode: s.mode,
      pool: s.pool.name,
      poolCidr: s.pool.cidr,
      host: s.host.name,
    })),
  };
}
type Snapshot = Awaited<ReturnType<typeof snapshot>>;

/** What must hold of the database whatever happened, with no reference to the model. */
function checkDatabaseInvariants(snap: Snapshot): void {
  const reservedByPool = new Map(snap.pools.map((p) => [p.name, p.reserved.map(mustParseCidr)]));
  const cidrs: Cidr[] = [];
  for (const s of snap.subnets) {
    const parsed = parseCidr(s.cidr);
    expect(parsed.ok, `${s.cidr} is a canonical CIDR`).toBe(true);
    const cidr = mustParseCidr(s.cidr);
    expect(isAligned(cidr.network, cidr.prefixLength)).toBe(true);
    expect(s.prefixLength).toBe(cidr.prefixLength);
    expect(containsCidr(mustParseCidr(s.poolCidr), cidr), `${s.cidr} inside pool ${s.poolCidr}`).toBe(true);
    for (const r of reservedByPool.get(s.pool) ?? []) expect(overlaps(r, cidr), `${s.cidr} touches reserved ${formatCidr(r)}`).toBe(false);
    expect(s.gateway).toBe(firstHost(cidr));
    cidrs.push(cidr);
  }
  const sorted = [...cidrs].sort((a, b) => a.network - b.network);
  for (let i = 1; i < sorted.length; i++) {
    expect(lastAddress(sorted[i - 1]!) < sorted[i]!.network, `${formatCidr(sorted[i - 1]!)} and ${formatCidr(sorted[i]!)} overlap`).toBe(true);
  }
}

function checkDatabaseMatchesModel(snap: Snapshot, model: Model): void {
  expect(snap.pools).toEqual(
    [...model.pools]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((p) => ({ name: p.name, cidr: formatCidr(p.cidr), subnetPrefixLength: p.subnetPrefixLength, reserved: p.reserved.map(formatCidr).sort() })),
  );
  expect(snap.hosts.map((h) => ({ name: h.name, address: h.address }))).toEqual(
    [...model.hosts].sort((a, b) => (a.name < b.name ? -1 : 1)).map((h) => ({ name: h.name, address: h.address })),
  );
  expect(snap.subnets.map((s) => ({ id: s.id, cidr: s.cidr, pool: s.pool, host: s.host, network: s.network }))).toEqual(
    [...model.subnets].sort((a, b) => a.id - b.id).map((s) => ({ id: s.id, cidr: formatCidr(s.cidr), pool: s.pool, host: s.host, network: s.network })),
  );
}

/** The index answers like the model: utilization and the next free blocks of every pool. */
function checkIndexMatchesModel(ipam: Ipam, model: Model, label: string): void {
  expect(ipam.poolNames().sort(), label).toEqual(model.pools.map((p) => p.name).sort());
  for (const pool of model.pools) {
    expect(ipam.utilization(pool.name), `${label}: utilization of ${pool.name}`).toEqual(model.utilization(pool));
    const lengths = new Set([pool.subnetPrefixLength, Math.min(MAX_SUBNET_PREFIX, pool.cidr.prefixLength + 8), pool.cidr.prefixLength]);
    for (const length of lengths) {
      expect(ipam.available(pool.name, length, 3), `${label}: available /${length} in ${pool.name}`).toEqual(model.firstFit(pool, length, 3).map(formatCidr));
    }
  }
}

/** The fleet model the allocator keeps is the database, row for row (it is what the reconciler plans from). */
function checkFleetMatchesDatabase(fleet: Ipam['fleet'], db: Awaited<ReturnType<typeof snapshot>>, label: string): void {
  const pools = [...fleet.allPools()].map((p) => ({ name: p.name, cidr: p.cidr, subnetPrefixLength: p.subnetPrefixLength, reserved: [...p.reserved].sort() }));
  expect(
    pools.sort((a, b) => a.name.localeCompare(b.name)),
    `${label}: pools`,
  ).toEqual(db.pools.map((p) => ({ ...p, reserved: [...p.reserved].sort() })));
  const hosts = [...fleet.hosts.values()].map((h) => ({ id: h.id, name: h.name, address: h.address }));
  expect(
    hosts.sort((a, b) => a.name.localeCompare(b.name)),
    `${label}: hosts`,
  ).toEqual(db.hosts.map(({ id, name, address }) => ({ id, name, address })));
  const subnets = [...fleet.hosts.values()].flatMap((h) =>
    h.subnets.map((s) => ({
      id: s.id,
      cidr: s.cidr,
      gateway: s.gateway,
      network: s.network,
      mode: s.mode,
      host: h.name,
      pool: fleet.pool(fleet.poolOfSubnet(s.id)!)?.name,
    })),
  );
  expect(
    subnets.sort((a, b) => a.id - b.id),
    `${label}: subnets`,
  ).toEqual(db.subnets.map((s) => ({ id: s.id, cidr: s.cidr, gateway: s.gateway, network: s.network, mode: s.mode, host: s.host, pool: s.pool })));
  expect(fleet.subnetCount, `${label}: subnet count`).toBe(db.subnets.length);
  for (const host of fleet.hosts.values()) {
    expect(fleet.hostByName(host.name), `${label}: lookup by name`).toBe(host);
    expect(fleet.hostByAddress(host.address), `${label}: lookup by address`).toBe(host);
    expect(
      host.subnets.map((s) => s.id),
      `${label}: ${host.name}'s subnets in id order`,
    ).toEqual(host.subnets.map((s) => s.id).sort((a, b) => a - b));
  }
}

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Attaches handlers at once, so a refusal that arrives before we look is not "unhandled". */
function settle(promise: Promise<unknown>): Promise<Settled> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

async function expectOutcome(pending: Promise<Settled>, expected: Outcome, what: string): Promise<unknown> {
  const settled = await pending;
  if (expected.ok) {
    if (!settled.ok) throw new Error(`${what}: expected success${expected.cidr ? ` with ${formatCidr(expected.cidr)}` : ''}, got ${String(settled.error)}`);
    return settled.value;
  }
  if (settled.ok) throw new Error(`${what}: expected one of ${expected.codes.join('/')}, but it succeeded with ${JSON.stringify(settled.value)}`);
  expect(settled.error, what).toBeInstanceOf(ApiError);
  const error = settled.error as ApiError;
  expect(expected.codes, `${what}: got ${error.code} (${error.message})`).toContain(error.code);
  expect(error.statusCode).toBe(ERROR_STATUS[error.code]);
  expect(error.message.length).toBeGreaterThan(20);
  return undefined;
}

// ---------------------------------------------------------------- random scenarios

const arbPoolSpec = fc.record({
  prefix: fc.integer({ min: 8, max: 24 }),
  pos: fc.nat(),
  subnetOffset: fc.oneof(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 6 })),
  reserved: fc.array(fc.record({ off: fc.integer({ min: 1, max: 8 }), pos: fc.nat() }), { maxLength: 3 }),
});
type PoolSpec = typeof arbPoolSpec extends fc.Arbitrary<infer T> ? T : never;

function resolvePool(name: string, spec: PoolSpec): MPool {
  const size = blockSize(spec.prefix);
  const cidr = { network: TEN + (spec.pos % 2 ** (spec.prefix - 8)) * size, prefixLength: spec.prefix };
  const reserved: Cidr[] = [];
  for (const r of spec.reserved) {
    const length = Math.min(32, spec.prefix + r.off);
    const block = { network: cidr.network + (r.pos % 2 ** (length - spec.prefix)) * blockSize(length), prefixLength: length };
    if (!reserved.some((x) => overlaps(x, block))) reserved.push(block);
  }
  return {
    name,
    cidr,
    subnetPrefixLength: Math.min(MAX_SUBNET_PREFIX, spec.prefix + spec.subnetOffset),
    reserved: reserved.sort((a, b) => a.network - b.network),
  };
}

const arbPoolChoice = fc.constantFrom<string | undefined>(undefined, undefined, 'default', 'other', 'missing');

const arbAllocLen = fc.record({
  kind: fc.constant('allocLen' as const),
  host: fc.nat(),
  pool: arbPoolChoice,
  // -1: shorter than the pool; 0..8: pool length + n; 9: the pool's own subnet length
  lenOffset: fc.integer({ min: -1, max: 9 }),
});
const arbAllocCidr = fc.record({
  kind: fc.constant('allocCidr' as const),
  host: fc.nat(),
  target: fc.constantFrom('lowest', 'lowest', 'random', 'random', 'existing', 'reserved', 'outside'),
  poolIndex: fc.nat(),
  off: fc.integer({ min: -1, max: 8 }),
  pos: fc.nat(),
  named: fc.constantFrom('none', 'none', 'own', 'other', 'missing'),
});
const arbRegister = fc.record({
  kind: fc.constant('register' as const),
  clash: fc.constantFrom('none', 'none', 'none', 'name', 'address'),
  pick: fc.nat(),
  pool: fc.constantFrom<string | undefined | null>(undefined, undefined, 'default', 'other', 'missing', null),
});
const arbRelease = fc.record({ kind: fc.constant('release' as const), pick: fc.nat(), bogus: fc.boolean() });
const arbDeleteHost = fc.record({ kind: fc.constant('deleteHost' as const), pick: fc.nat(), bogus: fc.boolean() });
const arbDeletePool = fc.record({ kind: fc.constant('deletePool' as const), which: fc.constantFrom('default', 'other') });
const arbReload = fc.record({ kind: fc.constant('reload' as const) });

type Op =
  | (typeof arbAllocLen extends fc.Arbitrary<infer T> ? T : never)
  | (typeof arbAllocCidr extends fc.Arbitrary<infer T> ? T : never)
  | (typeof arbRegister extends fc.Arbitrary<infer T> ? T : never)
  | (typeof arbRelease extends fc.Arbitrary<infer T> ? T : never)
  | (typeof arbDeleteHost extends fc.Arbitrary<infer T> ? T : never)
  | (typeof arbDeletePool extends fc.Arbitrary<infer T> ? T : never)
  | (typeof arbReload extends fc.Arbitrary<infer T> ? T : never);

const arbSingle: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: arbAllocLen },
  { weight: 4, arbitrary: arbAllocCidr },
  { weight: 3, arbitrary: arbRegister },
  { weight: 2, arbitrary: arbRelease },
  { weight: 1, arbitrary: arbDeleteHost },
  { weight: 1, arbitrary: arbReload },
  { weight: 1, arbitrary: arbDeletePool },
);
// Operations fired together: their answers must be those of running them one by one in order.
// A registration in a burst takes a fresh name: a later op of the same burst naming it could
// legitimately be ordered before it (its host is not committed yet), which the model cannot say.
const arbBurstOp: fc.Arbitrary<Op> = fc.oneof(
  arbAllocLen,
  arbAllocCidr,
  arbRelease,
  arbDeleteHost,
  arbRegister.map((op) => ({ ...op, clash: op.clash === 'name' ? 'none' : op.clash })),
);
const arbStep = fc.oneof({ weight: 3, arbitrary: arbSingle.map((op) => [op]) }, { weight: 1, arbitrary: fc.array(arbBurstOp, { minLength: 2, maxLength: 5 }) });

const arbScenario = fc.record({
  first: arbPoolSpec,
  second: fc.option(arbPoolSpec, { nil: undefined }),
  steps: fc.array(arbStep, { minLength: 5, maxLength: 25 }),
});

interface Planned {
  what: string;
  expected: Outcome;
  run: (ipam: Ipam) => Promise<unknown>;
  /** applies a success to the model, with the value the allocator returned */
  apply: (value: unknown) => void;
}

class Scenario {
  constructor(
    readonly model: Model,
    private readonly base: Model,
    private readonly counters: { hosts: number; networks: number },
  ) {}

  private pickHost(pick: number): string {
    const hosts = this.base.hosts;
    return hosts.length ? hosts[pick % hosts.length]!.name : 'ghost';
  }

  /** Resolves an op against the state before its step (`base`) and plans it against the model. */
  plan(op: Exclude<Op, { kind: 'reload' }>): Planned {
    const model = this.model;
    switch (op.kind) {
      case 'allocLen': {
        const host = this.pickHost(op.host);
        const poolName = op.pool;
        const basePool = model.pool(poolName ?? DEFAULT_POOL_NAME);
        const prefix = basePool?.cidr.prefixLength ?? 24;
        const prefixLength = op.lenOffset === 9 ? undefined : prefix + op.lenOffset;
        const network = `n${++this.counters.networks}`;
        const request: SubnetRequest = { pool: poolName, prefixLength, network, mode: 'network' };
        const what = `allocate /${prefixLength ?? 'default'} from ${poolName ?? '(default)'} to ${host}`;
        const expected = model.allocateByLength(host, poolName, prefixLength);
        const placeholder = expected.ok ? { id: -1, cidr: expected.cidr!, pool: poolName ?? DEFAULT_POOL_NAME, host, network } : undefined;
        if (placeholder) model.subnets.push(placeholder);
        return {
          what,
          expected,
          run: (ipam) => ipam.allocate(host, request),
          apply: (value) => {
            const row = value as { id: number; cidr: string; gateway: string };
            expect(row.cidr, what).toBe(formatCidr(placeholder!.cidr));
            expect(row.gateway).toBe(firstHost(placeholder!.cidr));
            placeholder!.id = row.id;
          },
        };
      }
      case 'allocCidr': {
        const host = this.pickHost(op.host);
        const pools = this.base.pools;
        const pool = pools.length ? pools[op.poolIndex % pools.length]! : undefined;
        let cidr: Cidr;
        const length = pool ? Math.min(32, Math.max(pool.cidr.prefixLength - 1, pool.cidr.prefixLength + op.off)) : 24;
        const lowest = pool && length >= pool.cidr.prefixLength ? this.model.firstFit(pool, length, 1)[0] : undefined;
        const existing = this.base.subnets.length ? this.base.subnets[op.pos % this.base.subnets.length] : undefined;
        const reserved = pool?.reserved.length ? pool.reserved[op.pos % pool.reserved.length] : undefined;
        if (!pool || op.target === 'outside') {
          cidr = { network: 0xac100000 + (op.pos % 4096) * 256, prefixLength: 24 }; // inside 172.16.0.0/12: no pool there
        } else if (op.target === 'lowest' && lowest) {
          cidr = lowest;
        } else if (op.target === 'existing' && existing) {
          // the same block, its parent or its first half
          const shift = (op.pos % 3) - 1;
          cidr = blockContaining(existing.cidr.network, Math.min(32, Math.max(8, existing.cidr.prefixLength + shift)));
        } else if (op.target === 'reserved' && reserved) {
          cidr = blockContaining(reserved.network, Math.max(pool.cidr.prefixLength, length));
        } else {
          const within = length < pool.cidr.prefixLength ? 1 : 2 ** (length - pool.cidr.prefixLength);
          cidr = blockContaining(pool.cidr.network + (op.pos % within) * blockSize(length), length);
        }
        const other = pools.find((p) => p !== pool);
        const poolName = op.named === 'none' ? undefined : op.named === 'own' ? pool?.name : op.named === 'other' ? (other?.name ?? 'missing') : 'missing';
        const network = `n${++this.counters.networks}`;
        const what = `allocate ${formatCidr(cidr)} (pool ${poolName ?? '-'}) to ${host}`;
        const expected = model.allocateCidr(host, cidr, poolName);
        if (expected.ok) {
          const owner = poolName ?? model.pools.find((p) => containsCidr(p.cidr, cidr))!.name;
          model.subnets.push({ id: -1, cidr, pool: owner, host, network });
        }
        const placeholder = model.subnets.at(-1)!;
        return {
          what,
          expected,
          run: (ipam) => ipam.allocate(host, { pool: poolName, cidr, network, mode: 'network' }),
          apply: (value) => {
            const row = value as { id: number; cidr: string; gateway: string };
            expect(row.cidr, what).toBe(formatCidr(cidr));
            expect(row.gateway).toBe(firstHost(cidr));
            placeholder.id = row.id;
          },
        };
      }
      case 'register': {
        const n = ++this.counters.hosts;
        const existing = this.base.hosts.length ? this.base.hosts[op.pick % this.base.hosts.length] : undefined;
        let name = `host-${n}`;
        let address = `198.51.${100 + (n >> 8)}.${n & 255}`;
        if (op.clash === 'name' && existing) name = existing.name;
        if (op.clash === 'address' && existing) address = existing.address;
        const what = `register ${name} ${address} (first subnet from ${op.pool === null ? 'nowhere' : (op.pool ?? '(default)')})`;
        const expected = model.register(name, address, op.pool);
        if (expected.ok) {
          model.hosts.push({ name, address });
          if (expected.cidr) model.subnets.push({ id: -1, cidr: expected.cidr, pool: op.pool ?? DEFAULT_POOL_NAME, host: name, network: 'crossdock' });
        }
        const placeholder = model.subnets.at(-1);
        return {
          what,
          expected,
          run: (ipam) => ipam.registerHost(hostInput(name, address), op.pool === null ? null : { pool: op.pool, network: 'crossdock', mode: 'network' }),
          apply: (value) => {
            const result = value as { host: { name: string }; subnet?: { id: number; cidr: string; gateway: string } };
            expect(result.host.name).toBe(name);
            if (!expected.ok || !expected.cidr) {
              expect(result.subnet).toBeUndefined();
              return;
            }
            expect(result.subnet?.cidr, what).toBe(formatCidr(expected.cidr));
            expect(result.subnet?.gateway).toBe(firstHost(expected.cidr));
            placeholder!.id = result.subnet!.id;
          },
        };
      }
      case 'release': {
        const target = this.base.subnets.length && !op.bogus ? this.base.subnets[op.pick % this.base.subnets.length] : undefined;
        const id = target ? target.id : 1_000_000 + op.pick;
        const present = model.subnets.find((s) => s.id === id);
        const expected: Outcome = present ? { ok: true } : { ok: false, codes: ['SUBNET_NOT_FOUND'] };
        if (present) model.subnets.splice(model.subnets.indexOf(present), 1);
        return { what: `release subnet ${id}`, expected, run: (ipam) => ipam.releaseSubnet(id), apply: () => {} };
      }
      case 'deleteHost': {
        const name = op.bogus ? 'no-such-host' : this.pickHost(op.pick);
        const present = model.host(name);
        const expected: Outcome = present ? { ok: true } : { ok: false, codes: ['HOST_NOT_FOUND'] };
        if (present) {
          model.hosts.splice(model.hosts.indexOf(present), 1);
          model.subnets = model.subnets.filter((s) => s.host !== name);
        }
        return { what: `delete host ${name}`, expected, run: (ipam) => ipam.deleteHost(name), apply: () => {} };
      }
      case 'deletePool': {
        const pool = model.pool(op.which);
        const expected: Outcome = !pool
          ? { ok: false, codes: ['POOL_NOT_FOUND'] }
          : model.subnets.some((s) => s.pool === op.which)
            ? { ok: false, codes: ['POOL_IN_USE'] }
            : { ok: true };
        if (expected.ok) model.pools.splice(model.pools.indexOf(pool!), 1);
        return { what: `delete pool ${op.which}`, expected, run: (ipam) => ipam.deletePool(op.which), apply: () => {} };
      }
    }
  }
}

function cloneModel(model: Model): Model {
  const copy = new Model();
  copy.pools = [...model.pools];
  copy.hosts = [...model.hosts];
  copy.subnets = model.subnets.map((s) => ({ ...s }));
  return copy;
}

describeEachStore(() => {
  describe('Ipam against a brute-force model (real database)', () => {
    let db: Db;
    beforeAll(async () => {
      db = await createTestDatabase({ defaultPool: null });
    });
    afterAll(async () => {
      await db?.close();
    });

    async function emptyDatabase(): Promise<Ipam> {
      await db.prisma.subnet.deleteMany();
      await db.prisma.host.deleteMany();
      await db.prisma.reservedRange.deleteMany();
      await db.prisma.pool.deleteMany();
      return Ipam.load(db.prisma);
    }

    it(
      'random pools and request sequences keep every invariant, also after reloading the index',
      async () => {
        await fc.assert(
          fc.asyncProperty(arbScenario, async ({ first, second, steps }) => {
            let ipam = await emptyDatabase();
            const model = new Model();
            const counters = { hosts: 0, networks: 0 };

            // Pools: the second one must be refused exactly when it overlaps the first.
            const pools = [resolvePool(DEFAULT_POOL_NAME, first), ...(second ? [resolvePool('other', second)] : [])];
            for (const pool of pools) {
              const clash = model.pools.find((p) => overlaps(p.cidr, pool.cidr));
              const created = ipam.createPool({ name: pool.name, cidr: pool.cidr, subnetPrefixLength: pool.subnetPrefixLength, reserved: pool.reserved });
              if (clash) {
                await expect(created).rejects.toMatchObject({ code: 'POOL_OVERLAP' });
              } else {
                await created;
                model.pools.push(pool);
              }
            }

            for (const step of steps) {
              const before = await snapshot(db.prisma);
              const base = cloneModel(model);
              const scenario = new Scenario(model, base, counters);
              let changed = false;
              const runnable = step.filter((op): op is Exclude<Op, { kind: 'reload' }> => op.kind !== 'reload');
              if (runnable.length < step.length) ipam = await Ipam.load(db.prisma);

              // Plan every op of the step in order, then fire them all at once.
              const planned = runnable.map((op) => scenario.plan(op));
              const promises = planned.map((p) => settle(p.run(ipam)));
              for (const [i, p] of planned.entries()) {
                const value = await expectOutcome(promises[i]!, p.expected, p.what);
                if (p.expected.ok) {
                  changed = true;
                  p.apply(value);
                }
              }

              const after = await snapshot(db.prisma);
              if (!changed) expect(after, 'refused requests change nothing').toEqual(before);
              checkDatabaseInvariants(after);
              checkDatabaseMatchesModel(after, model);
              checkIndexMatchesModel(ipam, model, 'live index');
              checkFleetMatchesDatabase(ipam.fleet, after, 'live fleet model');
              checkIndexMatchesModel(await Ipam.load(db.prisma), model, 'reloaded index');
            }
          }),
          { numRuns: PROPERTY_RUNS },
        );
      },
      // Each run is dozens of commits: on PostgreSQL each a round trip to another process, and
      // on a loaded 2-core machine even SQLite's 30 runs took more than 30 s.
      Math.max(120_000, PROPERTY_RUNS * 4_000),
    );
  });

  // ---------------------------------------------------------------- concurrency

  /** Small deterministic PRNG (mulberry32), so a failure reproduces. */
  function prng(seed: number) {
    let a = seed >>> 0;
    return (n: number) => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
  }

  describe('Ipam under concurrent requests (real database)', () => {
    let db: Db | undefined;
    afterEach(async () => {
      await db?.close();
      db = undefined;
    });

    async function setUp(reserved: string[]) {
      db = await createTestDatabase({ defaultPool: null });
      const pool: MPool = { name: DEFAULT_POOL_NAME, cidr: mustParseCidr('10.60.0.0/18'), subnetPrefixLength: 24, reserved: reserved.map(mustParseCidr) };
      await db.ipam.createPool({ ...pool });
      const hosts = Array.from({ length: 8 }, (_, i) => ({ name: `node-${i}`, address: `198.51.100.${i + 10}` }));
      for (const h of hosts) await db.ipam.registerHost(hostInput(h.name, h.address), null);
      const model = new Model();
      model.pools.push(pool);
      model.hosts.push(...hosts);
      return { db, pool, hosts, model };
    }

    it('200 simultaneous allocations are distinct, overlap-free, first-fit in arrival order, and match the database', async () => {
      const { db, pool, hosts, model } = await setUp(['10.60.5.0/24', '10.60.17.128/25', '10.60.40.7/32']);
      const random = prng(20261129);
      const requests = Array.from({ length: 200 }, (_, i) => {
        const host = hosts[i % hosts.length]!.name;
        const network = `n${i}`;
        const length = 22 + random(7);
        const kind = random(10);
        if (kind < 6) return { host, request: { prefixLength: length, network, mode: 'network' as const } };
        // explicit: mostly inside the pool (often taken by then), some outside, some on a reserved range
        let cidr: Cidr;
        if (kind === 9) cidr = random(2) ? mustParseCidr('10.61.0.0/24') : mustParseCidr('10.60.40.0/26');
        else cidr = blockContaining(pool.cidr.network + random(2 ** 14), length);
        return { host, request: { cidr, network, mode: 'network' as const } };
      });

      const settled = await Promise.allSettled(requests.map(({ host, request }) => db.ipam.allocate(host, request)));

      // The same requests one by one, in the order they were made, predict every answer.
      const fulfilled: Array<{ id: number; cidr: string }> = [];
      settled.forEach((result, i) => {
        const { host, request } = requests[i]!;
        const expected = request.cidr ? model.allocateCidr(host, request.cidr, undefined) : model.allocateByLength(host, undefined, request.prefixLength);
        const what = `request ${i} (${request.cidr ? formatCidr(request.cidr) : `/${request.prefixLength}`})`;
        if (expected.ok) {
          expect(result.status, `${what}: ${result.status === 'rejected' ? String(result.reason) : ''}`).toBe('fulfilled');
          const row = (result as PromiseFulfilledResult<{ id: number; cidr: string; gateway: string }>).value;
          expect(row.cidr, what).toBe(formatCidr(expected.cidr!));
          expect(row.gateway).toBe(firstHost(expected.cidr!));
          model.subnets.push({ id: row.id, cidr: expected.cidr!, pool: pool.name, host, network: request.network });
          fulfilled.push({ id: row.id, cidr: row.cidr });
        } else {
          expect(result.status, what).toBe('rejected');
          const error = (result as PromiseRejectedResult).reason as unknown;
          expect(error).toBeInstanceOf(ApiError);
          const { code, statusCode } = error as ApiError;
          expect(expected.codes, `${what}: ${code}`).toContain(code);
          expect(['SUBNET_OVERLAP', 'POOL_EXHAUSTED', 'SUBNET_RESERVED', 'SUBNET_OUTSIDE_POOL']).toContain(code);
          expect(statusCode).toBe(code === 'SUBNET_OUTSIDE_POOL' ? 400 : 409);
        }
      });

      // Both kinds of refusal and plenty of successes happened, or the test proves little.
      const codes = settled.flatMap((r) => (r.status === 'rejected' ? [(r.reason as ApiError).code] : []));
      expect(fulfilled.length).toBeGreaterThan(20);
      expect(codes).toContain('POOL_EXHAUSTED');
      expect(codes).toContain('SUBNET_OVERLAP');

      expect(new Set(fulfilled.map((f) => f.id)).size).toBe(fulfilled.length);
      expect(new Set(fulfilled.map((f) => f.cidr)).size).toBe(fulfilled.length);
      const snap = await snapshot(db.prisma);
      checkDatabaseInvariants(snap);
      expect(snap.subnets.map((s) => ({ id: s.id, cidr: s.cidr })).sort((a, b) => a.id - b.id)).toEqual([...fulfilled].sort((a, b) => a.id - b.id));
      checkDatabaseMatchesModel(snap, model);
      checkIndexMatchesModel(db.ipam, model, 'live index');
      checkIndexMatchesModel(await Ipam.load(db.prisma), model, 'reloaded index');
    });

    it('simultaneous allocations and releases reuse the lowest blocks', async () => {
      const { db, hosts, model } = await setUp([]);
      const first = await Promise.all(Array.from({ length: 20 }, (_, i) => db.ipam.allocate(hosts[i % 8]!.name, { network: `a${i}`, mode: 'network' })));
      expect(first.map((s) => s.cidr)).toEqual(Array.from({ length: 20 }, (_, i) => `10.60.${i}.0/24`));
      // release every other one while asking for new ones: the releases come first in the queue
      const released = first.filter((_, i) => i % 2 === 0);
      const [, second] = await Promise.all([
        Promise.all(released.map((s) => db.ipam.releaseSubnet(s.id))),
        Promise.all(Array.from({ length: 12 }, (_, i) => db.ipam.allocate(hosts[i % 8]!.name, { network: `b${i}`, mode: 'network' }))),
      ]);
      expect(second.map((s) => s.cidr)).toEqual([...released.map((s) => s.cidr), '10.60.20.0/24', '10.60.21.0/24']);
      for (const s of [...first.filter((_, i) => i % 2 === 1), ...second]) {
        model.subnets.push({ id: s.id, cidr: mustParseCidr(s.cidr), pool: 'default', host: s.host.name, network: s.network });
      }
      const snap = await snapshot(db.prisma);
      checkDatabaseMatchesModel(snap, model);
      checkIndexMatchesModel(db.ipam, model, 'live index');
      checkIndexMatchesModel(await Ipam.load(db.prisma), model, 'reloaded index');
    });

    it('a host deleted while its new subnet is being allocated leaves nothing behind in the index', async () => {
      const { db, model } = await setUp([]);
      await db.ipam.allocate('node-0', { network: 'a', mode: 'network' });
      // The first request commits alone; the next three share one transaction.
      const [, allocated, deleted, after] = await Promise.allSettled([
        db.ipam.allocate('node-1', { network: 'x', mode: 'network' }),
        db.ipam.allocate('node-0', { network: 'b', mode: 'network' }),
        db.ipam.deleteHost('node-0'),
        db.ipam.allocate('node-2', { network: 'c', mode: 'network' }),
      ]);
      // In arrival order: node-0 gets 10.60.2.0/24, then node-0 and both its subnets go, and
      // node-2 gets the lowest block again.
      expect(allocated).toMatchObject({ status: 'fulfilled', value: { cidr: '10.60.2.0/24' } });
      expect(deleted.status).toBe('fulfilled');
      expect(after).toMatchObject({ status: 'fulfilled', value: { cidr: '10.60.0.0/24' } });
      model.hosts = model.hosts.filter((h) => h.name !== 'node-0');
      const snap = await snapshot(db.prisma);
      expect(snap.subnets.map((s) => s.cidr).sort()).toEqual(['10.60.0.0/24', '10.60.1.0/24']);
      for (const s of snap.subnets) model.subnets.push({ id: s.id, cidr: mustParseCidr(s.cidr), pool: s.pool, host: s.host, network: s.network });
      checkDatabaseMatchesModel(snap, model);
      checkIndexMatchesModel(await Ipam.load(db.prisma), model, 'reloaded index');
      checkIndexMatchesModel(db.ipam, model, 'live index');
      // The block node-0 was given last is free again in the live index, and the pool can go once empty.
      const next = await db.ipam.allocate('node-3', { network: 'd', mode: 'network' });
      expect(next.cidr).toBe('10.60.2.0/24');
      for (const s of await db.prisma.subnet.findMany()) await db.ipam.releaseSubnet(s.id);
      await expect(db.ipam.deletePool(DEFAULT_POOL_NAME)).resolves.toBeUndefined();
    });

    it('the same name, address or overlapping pool asked for at once: exactly one wins', async () => {
      const { db } = await setUp([]);
      const names = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => db.ipam.registerHost(hostInput('twin', `203.0.113.${i + 1}`), { network: 'crossdock', mode: 'network' })),
      );
      expect(names.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of names.filter((r) => r.status === 'rejected')) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'HOST_EXISTS' });

      const addresses = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => db.ipam.registerHost(hostInput(`same-${i}`, '203.0.113.200'), null)));
      expect(addresses.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of addresses.filter((r) => r.status === 'rejected')) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'ADDRESS_IN_USE' });

      const pools = await Promise.allSettled(
        ['10.70.0.0/16', '10.70.0.0/20', '10.70.128.0/17', '10.64.0.0/12'].map((c, i) =>
          db.ipam.createPool({ name: `p${i}`, cidr: mustParseCidr(c), subnetPrefixLength: 24, reserved: [] }),
        ),
      );
      expect(pools.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected']);
      for (const r of pools.slice(1)) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'POOL_OVERLAP' });

      const reloaded = await Ipam.load(db.prisma);
      expect(reloaded.poolNames().sort()).toEqual(['default', 'p0']);
      expect((await db.prisma.host.findMany({ where: { name: 'twin' } })).length).toBe(1);
      expect(await db.prisma.subnet.count()).toBe(1);
    });
  });

  // ---------------------------------------------------------------- rules at the allocator itself

  describe('Ipam rules (real database)', () => {
    let db: Db | undefined;
    afterEach(async () => {
      await db?.close();
      db = undefined;
    });

    it('refuses pools and subnets that break a rule, and changes nothing', async () => {
      db = await createTestDatabase();
      const { ipam, prisma } = db;
      await ipam.registerHost(hostInput('node-1', '198.51.100.11'), null);
      await ipam.createPool({ name: 'small', cidr: mustParseCidr('10.200.0.0/28'), subnetPrefixLength: 29, reserved: [mustParseCidr('10.200.0.8/32')] });
      const before = await snapshot(prisma);
      const cases: Array<[Promise<Settled>, ErrorCode, RegExp?]> = (
        [
          [ipam.createPool({ name: 'default', cidr: mustParseCidr('10.1.0.0/16'), subnetPrefixLength: 24, reserved: [] }), 'POOL_EXISTS'],
          [ipam.createPool({ name: 'x', cidr: mustParseCidr('10.100.128.0/17'), subnetPrefixLength: 24, reserved: [] }), 'POOL_OVERLAP', /10\.100\.0\.0\/16/],
          [ipam.createPool({ name: 'x', cidr: mustParseCidr('10.0.0.0/8'), subnetPrefixLength: 24, reserved: [] }), 'POOL_OVERLAP'],
          [ipam.createPool({ name: 'x', cidr: mustParseCidr('10.1.0.0/16'), subnetPrefixLength: 12, reserved: [] }), 'INVALID_PREFIX_LENGTH', /16 to 30/],
          [ipam.createPool({ name: 'x', cidr: mustParseCidr('10.1.0.0/16'), subnetPrefixLength: 31, reserved: [] }), 'INVALID_PREFIX_LENGTH'],
          [
            ipam.createPool({ name: 'x', cidr: mustParseCidr('10.1.0.0/16'), subnetPrefixLength: 24, reserved: [mustParseCidr('10.2.0.0/24')] }),
            'RESERVED_OUTSIDE_POOL',
          ],
          [
            ipam.createPool({
              name: 'x',
              cidr: mustParseCidr('10.1.0.0/16'),
              subnetPrefixLength: 24,
              reserved: [mustParseCidr('10.1.0.0/20'), mustParseCidr('10.1.5.0/24')],
            }),
            'VALIDATION_FAILED',
          ],
          [ipam.deletePool('nope'), 'POOL_NOT_FOUND'],
          [ipam.allocate('ghost', { network: 'a', mode: 'network' }), 'HOST_NOT_FOUND'],
          [ipam.allocate('node-1', { pool: 'nope', network: 'a', mode: 'network' }), 'POOL_NOT_FOUND'],
          [ipam.allocate('node-1', { prefixLength: 15, network: 'a', mode: 'network' }), 'INVALID_PREFIX_LENGTH', /16 to 30/],
          [ipam.allocate('node-1', { prefixLength: 31, network: 'a', mode: 'network' }), 'INVALID_PREFIX_LENGTH'],
          [ipam.allocate('node-1', { pool: 'small', prefixLength: 28, network: 'a', mode: 'network' }), 'POOL_EXHAUSTED', /small/],
          [ipam.allocate('node-1', { cidr: mustParseCidr('10.200.0.8/29'), network: 'a', mode: 'network' }), 'SUBNET_RESERVED', /10\.200\.0\.8\/32/],
          [ipam.allocate('node-1', { cidr: mustParseCidr('10.99.0.0/24'), network: 'a', mode: 'network' }), 'SUBNET_OUTSIDE_POOL'],
          [ipam.allocate('node-1', { pool: 'small', cidr: mustParseCidr('10.100.0.0/24'), network: 'a', mode: 'network' }), 'SUBNET_OUTSIDE_POOL', /small/],
          [ipam.allocate('node-1', { cidr: mustParseCidr('10.100.0.0/24'), prefixLength: 25, network: 'a', mode: 'network' }), 'INVALID_PREFIX_LENGTH'],
          [ipam.allocate('node-1', { cidr: mustParseCidr('10.100.0.0/31'), network: 'a', mode: 'network' }), 'INVALID_PREFIX_LENGTH'],
          [
            ipam.allocate('node-1', { cidr: mustParseCidr('10.100.0.0/24'), gateway: '10.100.0.0', network: 'a', mode: 'network' }),
            'INVALID_GATEWAY',
            /use a host address such as 10\.100\.0\.1/,
          ],
          // not aligned, for a caller that built the Cidr itself instead of parsing it
          [
            ipam.allocate('node-1', { cidr: { network: mustParseCidr('10.100.0.0/24').network + 5, prefixLength: 24 }, network: 'a', mode: 'network' }),
            'CIDR_HOST_BITS_SET',
            /use 10\.100\.0\.0\/24/,
          ],
        ] as Array<[Promise<unknown>, ErrorCode, RegExp?]>
      ).map(([promise, code, message]) => [settle(promise), code, message]);
      for (const [pending, code, message] of cases) {
        const settled = await pending;
        const error = settled.ok ? undefined : settled.error;
        expect(error, `${code}: ${settled.ok ? JSON.stringify(settled.value) : ''}`).toBeInstanceOf(ApiError);
        expect((error as ApiError).code).toBe(code);
        if (message) expect((error as ApiError).message).toMatch(message);
      }
      expect(await snapshot(prisma)).toEqual(before);
      // the index did not keep anything from the refusals either
      expect(ipam.available('default', 24, 1)).toEqual(['10.100.0.0/24']);
      expect(ipam.utilization('small')).toEqual({ total: 2, allocated: 0, free: 1, reserved: 1 });
    });

    it('a subnet overlapping an allocated one is refused, naming it and the lowest free block', async () => {
      db = await createTestDatabase();
      const { ipam } = db;
      await ipam.registerHost(hostInput('node-1', '198.51.100.11'), { network: 'crossdock', mode: 'network' });
      const error = await ipam.allocate('node-1', { cidr: mustParseCidr('10.100.0.128/25'), network: 'b', mode: 'network' }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'SUBNET_OVERLAP', statusCode: 409 });
      expect((error as ApiError).message).toContain('10.100.0.0/24');
      expect((error as ApiError).message).toContain('node-1');
      expect((error as ApiError).message).toContain('10.100.1.0/25');
    });

    it('a second subnet with the same network name on one host, or a second bip subnet, is refused', async () => {
      db = await createTestDatabase();
      const { ipam } = db;
      await ipam.registerHost(hostInput('node-1', '198.51.100.11'), { network: 'crossdock', mode: 'bip' });
      await expect(ipam.allocate('node-1', { network: 'crossdock', mode: 'network' })).rejects.toMatchObject({ code: 'NETWORK_NAME_IN_USE' });
      await expect(ipam.allocate('node-1', { network: 'other', mode: 'bip' })).rejects.toMatchObject({ code: 'NETWORK_NAME_IN_USE' });
      await expect(ipam.allocate('node-1', { network: 'other', mode: 'network' })).resolves.toMatchObject({ cidr: '10.100.1.0/24' });
    });
  });
});
