import { describe, expect, it } from 'vitest';
import { LogThrottle } from '../log-throttle.ts';
import { StorageHealth, storageCondition } from './storage.ts';

describe('storageCondition', () => {
  it.each([
    [Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }), 'DISK_FULL'],
    [{ message: 'x', cause: { code: 'SQLITE_IOERR_WRITE', message: 'disk I/O error' } }, 'IO_ERROR'],
    [{ code: 'P2010', message: 'Raw query failed', meta: { message: 'attempt to write a readonly database' } }, 'READ_ONLY'],
    [Object.assign(new Error('unable to open database file'), { code: 'SQLITE_CANTOPEN' }), 'CANNOT_OPEN'],
    // PostgreSQL through Prisma's pg adapter, and node-postgres itself
    [{ code: 'P2010', message: 'Raw query failed', meta: { driverAdapterError: { cause: { originalCode: '53100', kind: 'postgres' } } } }, 'DISK_FULL'],
    [Object.assign(new Error('cannot execute INSERT in a read-only transaction'), { code: '25006' }), 'READ_ONLY'],
    [{ code: 'P1001', message: "Can't reach database server", meta: { driverAdapterError: { cause: { kind: 'DatabaseNotReachable' } } } }, 'UNREACHABLE'],
    [new Error('Connection terminated unexpectedly'), 'UNREACHABLE'],
    [Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), 'UNREACHABLE'],
    [{ message: 'x', meta: { driverAdapterError: { cause: { kind: 'TooManyConnections' } } } }, 'TOO_MANY_CONNECTIONS'],
  ])('knows %s as %s', (error, code) => {
    expect(storageCondition(error)?.code).toBe(code);
  });

  it('leaves every other error alone', () => {
    expect(storageCondition(Object.assign(new Error('UNIQUE constraint failed: Host.name'), { code: 'P2002' }))).toBeNull();
    expect(storageCondition(undefined)).toBeNull();
    expect(storageCondition(Object.assign(new Error('duplicate key value violates unique constraint "Host_name_key"'), { code: '23505' }))).toBeNull();
  });
});

describe('StorageHealth', () => {
  it('reports the failure until a write succeeds, and logs it once, then once per interval', () => {
    const lines: string[] = [];
    const health = new StorageHealth('/var/lib/crossdock/crossdock.db');
    health.logTo({ error: (_f, m) => lines.push(`error ${m}`), info: (_f, m) => lines.push(`info ${m}`) });
    const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    const answer = health.failed(full);
    expect(answer?.code).toBe('STORAGE_UNAVAILABLE');
    expect(answer?.message).toContain('/var/lib/crossdock/crossdock.db');
    for (let i = 0; i < 50; i++) health.failed(full);
    expect(health.state()).toMatchObject({ status: 'unwritable', code: 'DISK_FULL' });
    expect(lines).toEqual(['error the database cannot be written: the filesystem holding the database is full']);
    health.succeeded();
    expect(health.state()).toEqual({ status: 'ok' });
    expect(lines.at(-1)).toBe('info the database can be written again');
    expect(health.failed(new Error('some bug'))).toBeNull();
  });
});

describe('LogThrottle', () => {
  it('lets a key through once per interval and counts what it held back', () => {
    let now = 0;
    const throttle = new LogThrottle(60_000, () => now);
    expect(throttle.take('k')).toEqual({ log: true, suppressed: 0 });
    expect(throttle.take('k')).toEqual({ log: false });
    expect(throttle.take('other')).toEqual({ log: true, suppressed: 0 });
    now = 59_999;
    expect(throttle.take('k')).toEqual({ log: false });
    now = 60_000;
    expect(throttle.take('k')).toEqual({ log: true, suppressed: 2 });
    throttle.clear('k');
    expect(throttle.take('k')).toEqual({ log: true, suppressed: 0 });
  });
});
