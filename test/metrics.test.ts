// GET /metrics: scraped over HTTP from a listening controller (real SQLite file, executors on
// real WebSockets with in-memory drivers), read with a strict exposition parser; each metric
// the README lists is present and moves when its event happens. Then the controller as a
// process: the metrics token, and the default process metrics.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { SETTLED, silentExecutor, startFleetController } from './support/fleet.ts';
import { startController, type ControllerProcess } from './support/controller-process.ts';
import { parseExposition, sampleValue, type Family } from './support/prometheus.ts';

type Fleet = Awaited<ReturnType<typeof startFleetController>>;

const LISTED = [
  'crossdock_hosts',
  'crossdock_pool_subnets',
  'crossdock_allocations_total',
  'crossdock_allocation_duration_seconds',
  'crossdock_jobs_total',
  'crossdock_job_duration_seconds',
  'crossdock_hosts_behind',
  'crossdock_drift_repairs_total',
  'crossdock_agent_sessions',
  'crossdock_agent_syncing',
  'crossdock_agent_refused_total',
  'crossdock_build_info',
];

async function scrape(url: string, headers: Record<string, string> = {}): Promise<Map<string, Family>> {
  const response = await fetch(`${url}/metrics`, { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await response.text());
}

describe('GET /metrics', () => {
  let fleet: Fleet | undefined;
  afterEach(async () => {
    await fleet?.close();
    fleet = undefined;
  });

  it('exports every listed metric, each moving when its event happens, with no per-host label values', async () => {
    fleet = await startFleetController({ jobTimeoutMs: 1_500 });
    const url = fleet.url;
    const m = () => scrape(url);
    let now = await m();
    for (const name of LISTED) expect(now.has(name), name).toBe(true);
    expect(now.get('crossdock_allocation_duration_seconds')!.type).toBe('histogram');
    expect(now.get('crossdock_job_duration_seconds')!.type).toBe('histogram');
    expect(now.get('crossdock_jobs_total')!.type).toBe('counter');
    expect(sampleValue(now, 'crossdock_build_info', { version: '0.1.0' })).toBe(1);
    expect(sampleValue(now, 'crossdock_hosts', { status: 'pending' })).toBe(0);
    expect(sampleValue(now, 'crossdock_pool_subnets', { pool: 'default', state: 'free' })).toBe(256);
    expect(sampleValue(now, 'crossdock_allocations_total', { result: 'success' })).toBe(0);

    // Register a host: a pending host, behind; one allocation, timed; the pool one block fuller.
    const a = await fleet.call('POST', '/v1/hosts', { name: 'node-a', address: '198.51.100.11' });
    expect(a.status).toBe(201);
    now = await m();
    expect(sampleValue(now, 'crossdock_hosts', { status: 'pending' })).toBe(1);
    expect(sampleValue(now, 'crossdock_hosts_behind', { status: 'pending' })).toBe(1);
    expect(sampleValue(now, 'crossdock_allocations_total', { result: 'success' })).toBe(1);
    expect(sampleValue(now, 'crossdock_allocation_duration_seconds_count')).toBe(1);
    expect(sampleValue(now, 'crossdock_pool_subnets', { pool: 'default', state: 'allocated' })).toBe(1);
    expect(sampleValue(now, 'crossdock_pool_subnets', { pool: 'default', state: 'free' })).toBe(255);

    // Allocation outcomes: exhausted, rejected; a new pool's reserved blocks.
    expect((await fleet.call('POST', '/v1/pools', { name: 'tiny', cidr: '10.200.0.0/23', subnetPrefixLength: 24, reserved: ['10.200.1.0/25'] })).status).toBe(
      201,
    );
    expect((await fleet.call('POST', '/v1/subnets', { host: 'node-a', pool: 'tiny', network: 'one' })).status).toBe(201);
    expect((await fleet.call('POST', '/v1/subnets', { host: 'node-a', pool: 'tiny', network: 'two' })).body.error.code).toBe('POOL_EXHAUSTED');
    expect((await fleet.call('POST', '/v1/subnets', { host: 'node-a', cidr: '10.100.9.5/24' })).body.error.code).toBe('CIDR_HOST_BITS_SET');
    now = await m();
    expect(sampleValue(now, 'crossdock_allocations_total', { result: 'success' })).toBe(2);
    expect(sampleValue(now, 'crossdock_allocations_total', { result: 'exhausted' })).toBe(1);
    expect(sampleValue(now, 'crossdock_allocations_total', { result: 'rejected' })).toBe(1);
    expect(sampleValue(now, 'crossdock_allocation_duration_seconds_count')).toBe(4);
    expect(sampleValue(now, 'crossdock_pool_subnets', { pool: 'tiny', state: 'allocated' })).toBe(1);
    expect(sampleValue(now, 'crossdock_pool_subnets', { pool: 'tiny', state: 'reserved' })).toBe(1);
    expect(sampleValue(now, 'crossdock_pool_subnets', { pool: 'tiny', state: 'free' })).toBe(0);

    // An executor connects: a session, an online host, a connect job that succeeds, timed.
    const hostA = fleet.startExecutor(a.body.token);
    await vi.waitFor(async () => {
      now = await m();
      expect(sampleValue(now, 'crossdock_agent_sessions', { transport: 'websocket' })).toBe(1);
      expect(sampleValue(now, 'crossdock_hosts', { status: 'online' })).toBe(1);
      expect(sampleValue(now, 'crossdock_jobs_total', { status: 'succeeded', reason: 'connect' })).toBeGreaterThanOrEqual(1);
      expect(sampleValue(now, 'crossdock_hosts_behind', { status: 'online' })).toBe(0);
    }, SETTLED);
    expect(sampleValue(now, 'crossdock_job_duration_seconds_count')).toBeGreaterThanOrEqual(1);

    // A change job that fails: the route to node-b's first subnet (first fit: 10.100.1.0/24) is refused on node-a.
    hostA.drivers.ip.failures.set('10.100.1.0/24', 'RTNETLINK answers: Invalid argument');
    expect((await fleet.call('POST', '/v1/hosts', { name: 'node-b', address: '198.51.100.12' })).body.host.subnets[0].cidr).toBe('10.100.1.0/24');
    await vi.waitFor(async () => {
      now = await m();
      expect(sampleValue(now, 'crossdock_jobs_total', { status: 'failed', reason: 'change' })).toBe(1);
    }, SETTLED);

    // Drift: the failed route is put back from a report, and so is a route deleted by hand.
    await vi.waitFor(() => expect(hostA.drivers.ip.routes.has('10.100.1.0/24')).toBe(true), SETTLED);
    await vi.waitFor(async () => {
      now = await m();
      expect(sampleValue(now, 'crossdock_drift_repairs_total')).toBeGreaterThanOrEqual(1);
      expect(sampleValue(now, 'crossdock_hosts_behind', { status: 'online' })).toBe(0);
    }, SETTLED);
    const repairs = sampleValue(now, 'crossdock_drift_repairs_total');
    hostA.drivers.ip.routes.delete('10.100.1.0/24');
    await vi.waitFor(async () => {
      now = await m();
      expect(sampleValue(now, 'crossdock_drift_repairs_total')).toBe(repairs + 1);
    }, SETTLED);
    expect(sampleValue(now, 'crossdock_jobs_total', { status: 'succeeded', reason: 'drift' })).toBeGreaterThanOrEqual(repairs + 1);

    // A host whose executor never answers: its job times out, and it is an online host behind.
    const c = await fleet.call('POST', '/v1/hosts', { name: 'node-c', address: '198.51.100.13' });
    const silent = await silentExecutor(url, c.body.token);
    try {
      await vi.waitFor(async () => {
        now = await m();
        expect(sampleValue(now, 'crossdock_jobs_total', { status: 'timeout', reason: 'connect' })).toBe(1);
        expect(sampleValue(now, 'crossdock_hosts_behind', { status: 'online' })).toBe(1);
      }, SETTLED);
    } finally {
      silent.close();
    }

    // node-a's executor disconnects: no session left, node-a offline.
    hostA.agent.stop();
    await vi.waitFor(async () => {
      now = await m();
      expect(sampleValue(now, 'crossdock_agent_sessions', { transport: 'websocket' })).toBe(0);
      expect(sampleValue(now, 'crossdock_hosts', { status: 'offline' })).toBe(2);
      expect(sampleValue(now, 'crossdock_hosts', { status: 'online' })).toBe(0);
    }, SETTLED);

    // A deleted pool's series go away.
    for (const s of (await fleet.call('GET', '/v1/subnets?pool=tiny')).body.items) expect((await fleet.call('DELETE', `/v1/subnets/${s.id}`)).status).toBe(204);
    expect((await fleet.call('DELETE', '/v1/pools/tiny')).status).toBe(204);
    now = await m();
    expect(now.get('crossdock_pool_subnets')!.samples.filter((s) => s.labels.pool === 'tiny')).toEqual([]);

    // No crossdock series carries a host's name, address or a subnet.
    const values = [...now.values()].filter((f) => f.name.startsWith('crossdock_')).flatMap((f) => f.samples.flatMap((s) => Object.values(s.labels)));
    for (const v of values) expect(v).not.toMatch(/node-|198\.51\.100|10\.100\./);
  });
});

describe('GET /metrics on the controller process', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'crossdock-metrics-'));
  let controller: ControllerProcess | undefined;
  afterAll(async () => {
    await controller?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('asks for the metrics token when one is set, and exports the default process metrics', async () => {
    const metricsToken = 'metrics-token-0123456789';
    controller = await startController({
      dbFile: path.join(dir, 'm.db'),
      adminToken: 'cda_metrics-admin-token-00000',
      env: { CROSSDOCK_METRICS_TOKEN: metricsToken },
    });
    const refused = await fetch(`${controller.url}/metrics`);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/missing metrics token.*CROSSDOCK_METRICS_TOKEN/);
    expect((await fetch(`${controller.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-00000000' } })).status).toBe(401);
    // The admin token is not the metrics token.
    expect((await fetch(`${controller.url}/metrics`, { headers: { authorization: 'Bearer cda_metrics-admin-token-00000' } })).status).toBe(401);
    const families = await scrape(controller.url, { authorization: `Bearer ${metricsToken}` });
    for (const name of [
      ...LISTED,
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(families.has(name), name).toBe(true);
    }
    expect(sampleValue(families, 'crossdock_pool_subnets', { pool: 'default', state: 'free' })).toBe(256);
  });
});
