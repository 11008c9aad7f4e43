// Drift repaired when the host announces it, not at the next report: a real controller and a
// real executor in a namespace, with the report timer at 10 minutes, so only the executor's
// monitors (ip monitor, xtables-monitor) can bring a repair within the test's time. Changes
// crossdock makes itself are announced too; they must not start a report-and-repair loop.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { missing } from './support/requirements.ts';
import { SETTLED } from './support/fleet.ts';
import { startNetnsHost, type NetnsHost } from './support/netns-host.ts';

const HOST_B = '203.0.113.19';
const TEN_MINUTES_MS = 10 * 60_000;
const DRIFT_LINE = 'the host changed; reporting its state';

describe.skipIf(missing('root', 'netns', 'iptables'))('drift repaired on the host announcing it (needs root, netns, iptables)', () => {
  let host: NetnsHost;
  let bSubnet: string;
  const driftReports = () => host.log().split(DRIFT_LINE).length - 1;
  const jobsOfA = async () => (await host.call('GET', '/v1/jobs?host=host-a&limit=100')).body.items as Array<{ id: number; reason: string; status: string }>;

  beforeAll(async () => {
    host = await startNetnsHost({
      ns: 'cdtest-drift',
      rootSide: 'cdtdrift0',
      controllerAddress: '203.0.113.17',
      hostAddress: '203.0.113.18',
      adminToken: 'cda_drift-integration-token-00000',
      reconcileIntervalMs: TEN_MINUTES_MS,
    });
    const b = await host.call('POST', '/v1/hosts', { name: 'host-b', address: HOST_B });
    expect(b.status).toBe(201);
    bSubnet = b.body.host.subnets[0].cidr;
    await vi.waitFor(() => expect(host.inNs('ip', 'route', 'show', bSubnet)).toContain(`via ${HOST_B}`), { ...SETTLED, timeout: 15_000 });
  });

  afterAll(async () => {
    await host?.stop();
  });

  it('changes crossdock makes itself start no report and no second job', async () => {
    const before = await jobsOfA();
    const reports = driftReports();
    const c = await host.call('POST', '/v1/hosts', { name: 'host-c', address: '203.0.113.20' });
    const cSubnet = c.body.host.subnets[0].cidr;
    await vi.waitFor(() => expect(host.inNs('ip', 'route', 'show', cSubnet)).toContain('via 203.0.113.20'), { ...SETTLED, timeout: 15_000 });
    // The job's own route and chain changes are announced; give them time to be looked at.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const after = (await jobsOfA()).filter((j) => !before.some((b) => b.id === j.id));
    expect(after.map((j) => j.reason)).toEqual(['host host-c registered']);
    expect(driftReports()).toBe(reports);
  });

  it('puts back a route deleted by hand without waiting for the 10-minute timer', async () => {
    const reports = driftReports();
    host.inNs('ip', 'route', 'delete', bSubnet);
    await vi.waitFor(() => expect(host.inNs('ip', 'route', 'show', bSubnet)).toContain(`via ${HOST_B}`), { ...SETTLED, timeout: 15_000 });
    expect(driftReports()).toBe(reports + 1);
    await vi.waitFor(async () => expect((await jobsOfA()).at(0)).toMatchObject({ reason: 'drift', status: 'succeeded' }), SETTLED);
  });

  it('puts back a chain flushed by hand, and a jump deleted by hand', async () => {
    const chain = host.inNs('iptables', '-S', 'CROSSDOCK-FORWARD');
    expect(chain.split('\n').filter((l) => l.startsWith('-A')).length).toBeGreaterThan(0);
    host.inNs('iptables', '-F', 'CROSSDOCK-FORWARD');
    expect(host.inNs('iptables', '-S', 'CROSSDOCK-FORWARD')).not.toBe(chain);
    await vi.waitFor(() => expect(host.inNs('iptables', '-S', 'CROSSDOCK-FORWARD')).toBe(chain), { ...SETTLED, timeout: 15_000 });
    host.inNs('iptables', '-t', 'nat', '-D', 'POSTROUTING', '-j', 'CROSSDOCK-POSTROUTING');
    await vi.waitFor(() => expect(host.inNs('iptables', '-t', 'nat', '-S', 'POSTROUTING')).toContain('-j CROSSDOCK-POSTROUTING'), {
      ...SETTLED,
      timeout: 15_000,
    });
    expect(host.log()).not.toContain('"level":"error"');
  });
});
