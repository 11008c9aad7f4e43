// A real controller process and a real executor process inside a throwaway network namespace
// (real ip, iptables and sysctl there; no Docker engine): registering a second host makes the
// route and chains appear on the first, a route deleted by hand comes back within the
// reconcile interval, and deleting the second host removes the route.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { missing } from './support/requirements.ts';
import { SETTLED } from './support/fleet.ts';
import { startNetnsHost, type NetnsHost } from './support/netns-host.ts';

const HOST_B = '203.0.113.3';
const RECONCILE_INTERVAL_MS = 500;

describe.skipIf(missing('root', 'netns', 'iptables'))('executor in a network namespace (needs root, netns, iptables)', () => {
  let host: NetnsHost;
  let call: NetnsHost['call'];
  let inNs: NetnsHost['inNs'];
  let bSubnet: string;

  beforeAll(async () => {
    host = await startNetnsHost({
      ns: 'cdtest-int-a',
      rootSide: 'cdtint0',
      controllerAddress: '203.0.113.1',
      hostAddress: '203.0.113.2',
      adminToken: 'cda_netns-integration-token-0000',
      reconcileIntervalMs: RECONCILE_INTERVAL_MS,
    });
    ({ call, inNs } = host);
  });

  afterAll(async () => {
    await host?.stop();
  });

  it('applies chains, jumps and ip_forward on connect', async () => {
    await vi.waitFor(
      () => {
        const saved = inNs('iptables-save');
        expect(saved).toContain(':CROSSDOCK-FORWARD');
        expect(saved).toContain('-A FORWARD -j CROSSDOCK-FORWARD');
        expect(saved).toContain('-A POSTROUTING -j CROSSDOCK-POSTROUTING');
        expect(saved).toMatch(/-A CROSSDOCK-POSTROUTING -s 10\.100\.0\.0\/24 -d 10\.100\.0\.0\/16 -m comment --comment crossdock -j ACCEPT/);
      },
      { ...SETTLED, timeout: 15_000 },
    );
    expect(inNs('cat', '/proc/sys/net/ipv4/ip_forward').trim()).toBe('1');
  });

  it('adds a route to a second host when it registers', async () => {
    const b = await call('POST', '/v1/hosts', { name: 'host-b', address: HOST_B });
    expect(b.status).toBe(201);
    bSubnet = b.body.host.subnets[0].cidr;
    await vi.waitFor(() => expect(inNs('ip', 'route', 'show', bSubnet)).toContain(`${bSubnet} via ${HOST_B} dev eth0 proto 252`), {
      ...SETTLED,
      timeout: 15_000,
    });
    await vi.waitFor(async () => {
      const jobs = await call('GET', '/v1/jobs?host=host-a&status=succeeded');
      expect(jobs.body.items.some((j: { reason: string }) => j.reason.includes('host-b'))).toBe(true);
    }, SETTLED);
  });

  it('puts back a route deleted by hand within the reconcile interval, and leaves a foreign route alone', async () => {
    inNs('ip', 'route', 'add', '198.51.100.0/24', 'via', HOST_B, 'dev', 'eth0');
    inNs('ip', 'route', 'delete', bSubnet);
    const deletedAt = Date.now();
    await vi.waitFor(() => expect(inNs('ip', 'route', 'show', bSubnet)).toContain(`via ${HOST_B}`), { ...SETTLED, timeout: 15_000 });
    // Detected at the next report, repaired by the job that follows it.
    expect(Date.now() - deletedAt).toBeLessThan(RECONCILE_INTERVAL_MS * 4 + 2_000);
    expect(inNs('ip', 'route', 'show', '198.51.100.0/24')).toContain('via 203.0.113.3');
  });

  it('removes the route when the second host is deleted', async () => {
    expect((await call('DELETE', '/v1/hosts/host-b')).status).toBe(204);
    await vi.waitFor(() => expect(inNs('ip', 'route', 'show', bSubnet).trim()).toBe(''), { ...SETTLED, timeout: 15_000 });
    expect(inNs('ip', 'route', 'show', '198.51.100.0/24')).toContain('via 203.0.113.3');
    expect(host.log()).not.toContain('"level":"error"');
  });
});
