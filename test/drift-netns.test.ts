// Drift repaired when the host announces it, not at the next report: a real controller, a real
// executor and a dockerd of the suite's own in a namespace, with the report timer at 10 minutes,
// so only the executor's monitors (ip monitor, xtables-monitor, the engine's event stream) can
// bring a repair within the test's time. Changes crossdock makes itself are announced too (the
// network it creates is a Docker event); they must not start a report-and-repair loop.
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { dockerFromHost } from '../executor/src/drivers/docker.ts';
import { missing } from './support/requirements.ts';
import { SETTLED } from './support/fleet.ts';
import { startNetnsHost, type NetnsHost } from './support/netns-host.ts';

const NS = 'cdtest-drift';
const ENGINE_DIR = '/run/cdtest-drift';
const HOST_B = '203.0.113.19';
const TEN_MINUTES_MS = 10 * 60_000;
const DRIFT_LINE = 'the host changed; reporting its state';
/** how often a repair is looked for: its measured time is this close */
const LOOK_EVERY = { interval: 10 } as const;

describe.skipIf(missing('root', 'netns', 'iptables', 'dockerd'))('drift repaired on the host announcing it (needs root, netns, iptables, dockerd)', () => {
  let host: NetnsHost;
  let engine: ReturnType<typeof dockerFromHost>;
  let bSubnet: string;
  const driftReports = () => host.log().split(DRIFT_LINE).length - 1;
  const jobsOfA = async () => (await host.call('GET', '/v1/jobs?host=host-a&limit=100')).body.items as Array<{ id: number; reason: string; status: string }>;
  /** the id of crossdock's network on the engine, or null */
  const networkId = async () => (await engine.listNetworks({ filters: { name: ['crossdock'] } })).find((n) => n.Name === 'crossdock')?.Id ?? null;
  /** how long each repair took, from the hand's change to the state being back (printed at the end) */
  const repairs: Record<string, number> = {};
  async function timeRepair(what: string, back: () => void | Promise<void>): Promise<void> {
    const broken = performance.now();
    await vi.waitFor(back, { ...SETTLED, ...LOOK_EVERY, timeout: 15_000 });
    repairs[what] = Math.round(performance.now() - broken);
  }

  beforeAll(async () => {
    host = await startNetnsHost({
      ns: NS,
      rootSide: 'cdtdrift0',
      controllerAddress: '203.0.113.17',
      hostAddress: '203.0.113.18',
      adminToken: 'cda_drift-integration-token-00000',
      reconcileIntervalMs: TEN_MINUTES_MS,
      engineDir: ENGINE_DIR,
    });
    engine = dockerFromHost(host.dockerHost);
    const b = await host.call('POST', '/v1/hosts', { name: 'host-b', address: HOST_B });
    expect(b.status).toBe(201);
    bSubnet = b.body.host.subnets[0].cidr;
    await vi.waitFor(() => expect(host.inNs('ip', 'route', 'show', bSubnet)).toContain(`via ${HOST_B}`), { ...SETTLED, timeout: 15_000 });
    await vi.waitFor(async () => expect(await networkId()).not.toBeNull(), { ...SETTLED, timeout: 15_000 });
  });

  afterAll(async () => {
    if (Object.keys(repairs).length > 0) console.info(`drift repaired in (ms): ${JSON.stringify(repairs)}`);
    await host?.stop();
  });

  it('changes crossdock makes itself (the network it created, its routes and chains) start no report and no second job', async () => {
    // The first jobs created the network, the chains and the route to host-b: all announced, none reported.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const before = await jobsOfA();
    expect(before.length).toBeGreaterThan(0);
    expect(before.filter((j) => j.reason === 'drift')).toEqual([]);
    expect(driftReports()).toBe(0);
    const c = await host.call('POST', '/v1/hosts', { name: 'host-c', address: '203.0.113.20' });
    const cSubnet = c.body.host.subnets[0].cidr;
    await vi.waitFor(() => expect(host.inNs('ip', 'route', 'show', cSubnet)).toContain('via 203.0.113.20'), { ...SETTLED, timeout: 15_000 });
    // The job's own route and chain changes are announced; give them time to be looked at.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const after = (await jobsOfA()).filter((j) => !before.some((b) => b.id === j.id));
    expect(after.map((j) => j.reason)).toEqual(['host host-c registered']);
    expect(driftReports()).toBe(0);
  });

  it('puts back a route deleted by hand without waiting for the 10-minute timer', async () => {
    const reports = driftReports();
    host.inNs('ip', 'route', 'delete', bSubnet);
    await timeRepair('route', () => expect(host.inNs('ip', 'route', 'show', bSubnet)).toContain(`via ${HOST_B}`));
    expect(driftReports()).toBe(reports + 1);
    await vi.waitFor(async () => expect((await jobsOfA()).at(0)).toMatchObject({ reason: 'drift', status: 'succeeded' }), SETTLED);
  });

  it('puts back the Docker network removed by hand without waiting for the 10-minute timer', async () => {
    const reports = driftReports();
    const jobs = (await jobsOfA()).length;
    const removed = await networkId();
    await engine.getNetwork('crossdock').remove();
    await timeRepair('network', async () => expect(await networkId()).not.toBeOneOf([null, removed]));
    expect(driftReports()).toBe(reports + 1);
    await vi.waitFor(async () => expect((await jobsOfA()).at(0)).toMatchObject({ reason: 'drift', status: 'succeeded' }), SETTLED);
    // The job's network create is announced too: no second report, no second job.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(driftReports()).toBe(reports + 1);
    expect((await jobsOfA()).length).toBe(jobs + 1);
  });

  it('puts back a chain flushed by hand, and a jump deleted by hand', async () => {
    const chain = host.inNs('iptables', '-S', 'CROSSDOCK-FORWARD');
    expect(chain.split('\n').filter((l) => l.startsWith('-A')).length).toBeGreaterThan(0);
    host.inNs('iptables', '-F', 'CROSSDOCK-FORWARD');
    expect(host.inNs('iptables', '-S', 'CROSSDOCK-FORWARD')).not.toBe(chain);
    await timeRepair('chain', () => expect(host.inNs('iptables', '-S', 'CROSSDOCK-FORWARD')).toBe(chain));
    host.inNs('iptables', '-t', 'nat', '-D', 'POSTROUTING', '-j', 'CROSSDOCK-POSTROUTING');
    await timeRepair('jump', () => expect(host.inNs('iptables', '-t', 'nat', '-S', 'POSTROUTING')).toContain('-j CROSSDOCK-POSTROUTING'));
    expect(host.log()).not.toContain('"level":"error"');
  });
});
