// Database rows -> API objects.
import type { AgentHub } from './agents/hub.ts';
import { fleetPool } from './fleet.ts';
import type { AllocatedSubnet } from './ipam/ipam.ts';
import type { HostDto, PoolDto, SubnetDto } from './schemas.ts';

/** How a subnet is read for the API: with its pool's and host's names. */
export const subnetInclude = { pool: { select: { name: true } }, host: { select: { name: true } } } as const;

/** A subnet row with its pool's and host's names (what allocate() answers with). */
type SubnetRow = AllocatedSubnet;

type HostRow = {
  id: number;
  name: string;
  address: string;
  interface: string;
  labels: string;
  lastSeenAt: Date | null;
  desiredGeneration: number;
  appliedGeneration: number;
  createdAt: Date;
  updatedAt: Date;
  subnets: SubnetRow[];
};

export function subnetView(row: SubnetRow): SubnetDto {
  return {
    id: row.id,
    cidr: row.cidr,
    gateway: row.gateway,
    pool: row.pool.name,
    host: row.host.name,
    network: row.network,
    mode: row.mode as SubnetDto['mode'],
    createdAt: row.createdAt.toISOString(),
  };
}

export function hostView(
  row: HostRow,
  liveness: Pick<AgentHub, 'statusOf' | 'lastSeen' | 'executorOf'>,
  generation?: { desired: number; applied: number },
): HostDto {
  return {
    id: row.id,
    name: row.name,
    address: row.address,
    interface: row.interface,
    labels: JSON.parse(row.labels) as Record<string, string>,
    status: liveness.statusOf(row.id, row.lastSeenAt),
    lastSeenAt: liveness.lastSeen(row.id, row.lastSeenAt)?.toISOString() ?? null,
    executor: liveness.executorOf(row.id),
    subnets: row.subnets.map(subnetView),
    generation: generation ?? { desired: row.desiredGeneration, applied: row.appliedGeneration },
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export function poolView(row: {
  id: number;
  name: string;
  cidr: string;
  subnetPrefixLength: number;
  allowFrom: string | null;
  encapsulation: string;
  mtu: number | null;
  createdAt: Date;
  reserved: { cidr: string }[];
}): PoolDto {
  return { ...fleetPool(row), createdAt: row.createdAt.toISOString() };
}

export const hostInclude = {
  subnets: { include: { pool: { select: { name: true } }, host: { select: { name: true } } }, orderBy: { id: 'asc' } },
} as const;
