// A database on a full filesystem, through a real controller process: allocations answer 503
// STORAGE_UNAVAILABLE saying what to check, /healthz tells the truth, the log says it once, and
// once space is freed allocation resumes with no hole and no duplicate.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startController, type ControllerProcess } from './support/controller-process.ts';
import { missing } from './support/requirements.ts';

const ADMIN = 'cda_storage-admin-token-000000000';
const FILESYSTEM_BYTES = 4 * 1024 * 1024;
const MAX_REQUESTS = 2_000;

/** Writes zeros to `file` until the filesystem refuses: it is then full. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(missing('root'))('a database on a full filesystem (needs root: mounts a small tmpfs)', () => {
  let dir: string;
  let controller: ControllerProcess | undefined;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'crossdock-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${FILESYSTEM_BYTES}`, 'crossdock-test', dir]);
  });
  afterAll(async () => {
    await controller?.kill();
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 STORAGE_UNAVAILABLE, says so in /healthz and once in the log, loses nothing, and resumes', async () => {
    controller = await startController({ dbFile: path.join(dir, 'c.db'), adminToken: ADMIN, env: { CROSSDOCK_LOG_LEVEL: 'info' } });
    const call = api(controller.url, ADMIN);
    expect((await call('POST', '/v1/pools', { name: 'p', cidr: '10.64.0.0/12', subnetPrefixLength: 28 })).status).toBe(201);
    expect((await call('POST', '/v1/hosts', { name: 'h1', address: '198.51.100.11', allocate: false })).status).toBe(201);
    expect((await call('GET', '/healthz')).body).toMatchObject({ status: 'ok', role: 'leader', storage: { status: 'ok' } });

    const acknowledged: string[] = [];
    fill(path.join(dir, 'fill'));
    let refused: { status: number; body: any } | undefined;
    for (let i = 0; i < MAX_REQUESTS && !refused; i++) {
      const r = await call('POST', '/v1/subnets', { host: 'h1', pool: 'p', network: `n${i}` });
      if (r.status === 201) acknowledged.push(r.body.cidr);
      else refused = r;
    }
    expect(refused, `the filesystem never filled up after ${acknowledged.length} allocations`).toBeDefined();
    expect(refused!.status).toBe(503);
    expect(refused!.body.error.code).toBe('STORAGE_UNAVAILABLE');
    expect(refused!.body.error.message).toMatch(/full/);
    expect(refused!.body.error.message).toContain(path.join(dir, 'c.db'));
    for (let i = 0; i < 5; i++) expect((await call('POST', '/v1/subnets', { host: 'h1', pool: 'p', network: `again${i}` })).status).toBe(503);

    const health = await call('GET', '/healthz');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'degraded', storage: { status: 'unwritable', code: 'DISK_FULL' } });
    const logged = controller
      .output()
      .split('\n')
      .filter((line) => line.includes('the database cannot be written'));
    expect(logged).toHaveLength(1);
    expect(controller.output()).not.toMatch(/"level":50.*request failed/);

    rmSync(path.join(dir, 'fill'));
    const resumed = await call('POST', '/v1/subnets', { host: 'h1', pool: 'p', network: 'after' });
    expect(resumed.status).toBe(201);
    expect((await call('GET', '/healthz')).body).toMatchObject({ status: 'ok', role: 'leader', storage: { status: 'ok' } });

    // Every acknowledged allocation is there, and first fit went on from the last one: no hole.
    const held = (await call('GET', '/v1/subnets?host=h1')).body.items.map((s: { cidr: string }) => s.cidr);
    expect(held).toEqual([...acknowledged, resumed.body.cidr]);
    const all = [...acknowledged, resumed.body.cidr];
    for (const [i, cidr] of all.entries()) expect(cidr).toBe(`10.64.${Math.floor((i * 16) / 256)}.${(i * 16) % 256}/28`);
  });
});
