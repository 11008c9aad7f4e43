import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors.ts';
import { mapDatabaseError } from './constraint-errors.ts';

const adapterError = (code: string, modelName: string | undefined, message: string, fields: string[]) =>
  Object.assign(new Error('Unique constraint failed'), {
    code,
    meta: {
      ...(modelName ? { modelName } : {}),
      driverAdapterError: {
        cause: { originalCode: 'SQLITE_CONSTRAINT_UNIQUE', originalMessage: message, kind: 'UniqueConstraintViolation', constraint: { fields } },
      },
    },
  });

const pgError = (code: string, modelName: string | undefined, message: string, fields: string[]) =>
  Object.assign(new Error('Unique constraint failed'), {
    code,
    meta: {
      ...(modelName ? { modelName } : {}),
      driverAdapterError: { cause: { originalCode: '23505', originalMessage: message, kind: 'UniqueConstraintViolation', constraint: { fields } } },
    },
  });

describe('mapDatabaseError', () => {
  it.each([
    [adapterError('P2002', 'Host', 'UNIQUE constraint failed: Host.name', ['name']), 'HOST_EXISTS'],
    [adapterError('P2002', 'Host', 'UNIQUE constraint failed: Host.address', ['address']), 'ADDRESS_IN_USE'],
    [adapterError('P2010', undefined, 'UNIQUE constraint failed: Subnet.cidr', ['cidr']), 'SUBNET_OVERLAP'],
    [adapterError('P2002', 'Subnet', 'UNIQUE constraint failed: Subnet.hostId, Subnet.network', ['hostId', 'network']), 'NETWORK_NAME_IN_USE'],
    [adapterError('P2002', 'Pool', 'no message', ['name']), 'POOL_EXISTS'],
    [Object.assign(new Error('UNIQUE constraint failed: Pool.cidr'), { code: 'SQLITE_CONSTRAINT_UNIQUE' }), 'POOL_OVERLAP'],
    [Object.assign(new Error('record not found'), { code: 'P2025' }), 'NOT_FOUND'],
    // PostgreSQL (adapter-pg): raw statements name the index, model queries the quoted columns
    [pgError('P2010', undefined, 'duplicate key value violates unique constraint "Subnet_cidr_key"', ['cidr']), 'SUBNET_OVERLAP'],
    [pgError('P2010', undefined, 'duplicate key value violates unique constraint "Subnet_hostId_network_key"', ['"hostId"', 'network']), 'NETWORK_NAME_IN_USE'],
    [pgError('P2002', 'Host', 'duplicate key value violates unique constraint "Host_address_key"', ['address']), 'ADDRESS_IN_USE'],
    [pgError('P2002', 'Subnet', 'no message', ['"hostId"', 'network']), 'NETWORK_NAME_IN_USE'],
    [
      pgError('P2002', 'ReservedRange', 'duplicate key value violates unique constraint "ReservedRange_poolId_cidr_key"', ['"poolId"', 'cidr']),
      'VALIDATION_FAILED',
    ],
    [
      Object.assign(new Error('Foreign key constraint violated'), {
        code: 'P2010',
        meta: { driverAdapterError: { cause: { originalCode: '23503', kind: 'ForeignKeyConstraintViolation', constraint: { index: 'Subnet_hostId_fkey' } } } },
      }),
      'NOT_FOUND',
    ],
  ])('maps %s to %s', (error, code) => {
    const mapped = mapDatabaseError(error);
    expect(mapped).toBeInstanceOf(ApiError);
    expect((mapped as ApiError).code).toBe(code);
  });

  it('leaves other errors as they are', () => {
    const error = new Error('connection lost');
    expect(mapDatabaseError(error)).toBe(error);
  });
});
