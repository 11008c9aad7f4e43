// GET /v1/status through app.inject on a real SQLite file: its exact shape, the counts, the
// hosts behind (online first), the pools' utilization, the newest failed jobs, and its token.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp } from '../test-support.ts';
import { MAX_BEHIND_LISTED } from './v1/status/index.ts';

type TestApp = Awaited<ReturnType<typeof createTestApp>>;

describe('GET /v1/status', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await createTestApp();
  });
  afterEach(async () => {
    await t.close();
  });

  const get = async () => {
    const response = await t.app.inject({ method: 'GET', url: '/v1/status', headers: t.auth });
    expect(response.statusCode).toBe(200);
    return response.json();
  };

  it('answers an empty fleet', async () => {
    const body = await get();
    expect(body).toEqual({
      controller: { version: '0.1.0', startedAt: expect.any(String), storage: { status: 'ok' } },
      hosts: { total: 0, pending: 0, online: 0, offline: 0 },
      behind: { counts: { pending: 0, online: 0, offline: 0 }, hosts: [] },
      sessions: { websocket: 0, polling: 0 },
      pools: [{ name: 'default', utilization: { total: 256, allocated: 0, free: 256, reserved: 0 } }],
      failedJobs: [],
    });
    expect(Number.isNaN(Date.parse(body.controller.startedAt))).toBe(false);
  });

  it('counts hosts, lists the hosts behind by name, the pools and the newest failed jobs', async () => {
    for (const [name, address] of [
      ['web-2', '198.51.100.12'],
      ['web-1', '198.51.100.11'],
    ]) {
      expect((await t.app.inject({ method: 'POST', url: '/v1/hosts', headers: t.auth, payload: { name, address } })).statusCode).toBe(201);
    }
    expect(
      (
        await t.app.inject({
          method: 'POST',
          url: '/v1/pools',
          headers: t.auth,
          payload: { name: 'edge', cidr: '10.9.0.0/22', reserved: ['10.9.3.0/24'] },
        })
      ).statusCode,
    ).toBe(201);
    const hostId = (await t.prisma.host.findUniqueOrThrow({ where: { name: 'web-1' } })).id;
    for (const status of ['failed', 'succeeded', 'timeout']) {
      await t.prisma.job.create({ data: { hostId, generation: 1, status, reason: 'connect', commands: '[]' } });
    }
    const body = await get();
    expect(body.hosts).toEqual({ total: 2, pending: 2, online: 0, offline: 0 });
    // Registered, never connected: each host's generation moved past what it applied.
    expect(body.behind.counts).toEqual({ pending: 2, online: 0, offline: 0 });
    expect(body.behind.hosts.map((h: { name: string }) => h.name)).toEqual(['web-1', 'web-2']);
    const web1 = (await t.app.inject({ method: 'GET', url: '/v1/hosts/web-1', headers: t.auth })).json();
    expect(web1.generation.desired).toBeGreaterThan(0);
    expect(body.behind.hosts[0]).toEqual({ name: 'web-1', status: 'pending', generation: { desired: web1.generation.desired, applied: 0 } });
    expect(body.pools).toEqual([
      { name: 'default', utilization: { total: 256, allocated: 2, free: 254, reserved: 0 } },
      { name: 'edge', utilization: { total: 4, allocated: 0, free: 3, reserved: 1 } },
    ]);
    expect(body.failedJobs.map((j: { status: string; host: string }) => `${j.host} ${j.status}`)).toEqual(['web-1 timeout', 'web-1 failed']);
    expect(MAX_BEHIND_LISTED).toBeGreaterThan(0);
  });

  it('needs the admin token', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/v1/status' });
    expect(response.statusCode).toBe(401);
    expect(response.json().error.code).toBe('UNAUTHORIZED');
  });
});
