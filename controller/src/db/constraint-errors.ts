// Database constraint failures that slipped past the in-memory index (a second controller
// writing to the same database, or a bug): each unique constraint answers with the code of
// what it guards, as the index would have, not one code for every duplicate.
import { ApiError, type ErrorCode } from '../errors.ts';

const UNIQUE: Record<string, { code: ErrorCode; what: string }> = {
  'Host.name': { code: 'HOST_EXISTS', what: 'a host of that name is already registered' },
  'Host.address': { code: 'ADDRESS_IN_USE', what: 'that address is already registered to another host' },
  'Pool.name': { code: 'POOL_EXISTS', what: 'a pool of that name already exists' },
  'Pool.cidr': { code: 'POOL_OVERLAP', what: 'a pool with that range already exists' },
  'Subnet.cidr': { code: 'SUBNET_OVERLAP', what: 'that subnet is already allocated' },
  'Subnet.hostId,Subnet.network': { code: 'NETWORK_NAME_IN_USE', what: 'the host already has a subnet for that network name' },
  'ReservedRange.poolId,ReservedRange.cidr': { code: 'VALIDATION_FAILED', what: 'a reserved range is listed twice' },
};

/** PostgreSQL names each unique index as Prisma's migrations made it: Model_field_field_key. */
const UNIQUE_BY_INDEX = new Map(
  Object.keys(UNIQUE).map((key) => [
    `${key.split(',')[0]!.split('.')[0]}_${key
      .split(',')
      .map((c) => c.split('.')[1])
      .join('_')}_key`,
    key,
  ]),
);

interface AdapterCause {
  kind?: string;
  originalMessage?: string;
  constraint?: { fields?: string[]; index?: string };
}

function adapterCause(error: unknown): { modelName?: string; cause?: AdapterCause } {
  const meta = (error as { meta?: { modelName?: string; driverAdapterError?: { cause?: AdapterCause } } })?.meta;
  return { modelName: meta?.modelName, cause: meta?.driverAdapterError?.cause };
}

/** "Host.name", or "Subnet.hostId,Subnet.network", from whatever shape the error came in (SQLite's or PostgreSQL's). */
function uniqueConstraint(error: unknown): string | undefined {
  const { modelName, cause } = adapterCause(error);
  const message = cause?.originalMessage ?? (error as Error)?.message ?? '';
  // SQLite: UNIQUE constraint failed: Subnet.hostId, Subnet.network
  const columns = /UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)/.exec(message)?.[1];
  if (columns) return columns.split(', ').join(',');
  // PostgreSQL: duplicate key value violates unique constraint "Subnet_hostId_network_key"
  const index = /unique constraint "(\w+)"/.exec(message)?.[1] ?? cause?.constraint?.index;
  if (index && UNIQUE_BY_INDEX.has(index)) return UNIQUE_BY_INDEX.get(index);
  // PostgreSQL quotes mixed-case columns in its detail: Key ("hostId", network)=(...)
  const fields = cause?.constraint?.fields?.map((f) => f.replace(/^"|"$/g, ''));
  if (modelName && fields) return fields.map((f) => `${modelName}.${f}`).join(',');
  return undefined;
}

export function mapDatabaseError(error: unknown): unknown {
  const code = (error as { code?: string })?.code;
  const constraint = uniqueConstraint(error);
  const known = constraint === undefined ? undefined : UNIQUE[constraint];
  if (known) return new ApiError(known.code, `the database refused the write: ${known.what}; read the current state and retry if it still applies`);
  if (code === 'P2003' || code === 'P2025' || adapterCause(error).cause?.kind === 'ForeignKeyConstraintViolation')
    return new ApiError('NOT_FOUND', 'a host, pool or subnet this request refers to no longer exists; retry the request');
  return error;
}
