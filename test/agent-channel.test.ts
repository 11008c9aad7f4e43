// The controller-executor channel over real WebSockets and HTTP polling, with executors on
// in-memory fake drivers: jobs, results, drift repair, revocation, auth, replacement,
// heartbeats and reconnect backoff.
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { PROTOCOL_VERSION, emptyObservedState, observedDigest } from '@crossdock/shared';
import { SETTLED, startFleetController } from './support/fleet.ts';

type Fleet = Awaited<ReturnType<typeof startFleetController>>;

describe('controller-executor channel', () => {
  let fleet: Fleet | undefined;
  afterEach(async () => {
    await fleet?.close();
    fleet = undefined;
  });

  async function register(name: string, address: string) {
    const r = await fleet!.call('POST', '/v1/hosts', { name, address });
    expect(r.status).toBe(201);
    return r.body as { host: { id: number; subnets: Array<{ id: number; cidr: string }> }; token: string };
  }

  it('gives a connected host its network, chains and a route to every peer subnet, and records the job', async () => {
    fleet = await startFleetController();
    const a = await register('node-a', '198.51.100.11');
    const hostA = fleet.startExecutor(a.token);
    await vi.waitFor(() => expect(hostA.drivers.docker.networks.get('crossdock')?.subnet).toBe(a.host.subnets[0]!.cidr), SETTLED);
    expect(hostA.drivers.sysctl.values['net.ipv4.ip_forward']).toBe('1');
    expect(hostA.drivers.iptables.rulesOf('filter', 'DOCKER-USER')[0]).toBe('-A DOCKER-USER -j CROSSDOCK-FORWARD');
    expect(hostA.drivers.iptables.rulesOf('nat', 'POSTROUTING')[0]).toBe('-A POSTROUTING -j CROSSDOCK-POSTROUTING');
    expect(hostA.drivers.iptables.rulesOf('filter', 'CROSSDOCK-FORWARD')).toContain(
      `-A CROSSDOCK-FORWARD -s 10.100.0.0/16 -d ${a.host.subnets[0]!.cidr} -m comment --comment crossdock -j ACCEPT`,
    );

    const b = await register('node-b', '198.51.100.12');
    const bSubnet = b.host.subnets[0]!.cidr;
    await vi.waitFor(() => expect(hostA.drivers.ip.routes.get(bSubnet)).toEqual({ dst: bSubnet, via: '198.51.100.12', dev: 'eth0' }), SETTLED);

    const host = await vi.waitFor(async () => {
      const r = await fleet!.call('GET', '/v1/hosts/node-a');
      expect(r.body.status).toBe('online');
      expect(r.body.generation.applied).toBe(r.body.generation.desired);
      return r.body;
    }, SETTLED);
    expect(host.generation.desired).toBeGreaterThanOrEqual(1);

    // The generation is applied when the result arrives; the job's record is written just after.
    const routeJob = await vi.waitFor(async () => {
      const jobs = await fleet!.call('GET', '/v1/jobs?host=node-a');
      expect(jobs.body.items.length).toBeGreaterThanOrEqual(2);
      const job = jobs.body.items.find((j: { reason: string }) => j.reason.includes('node-b'));
      expect(job.status).toBe('succeeded');
      return job;
    }, SETTLED);
    const detail = await fleet.call('GET', `/v1/jobs/${routeJob.id}`);
    // the route to B's subnet, and A's filter chain now accepting B itself (the nat chain is unchanged)
    expect(detail.body.results).toHaveLength(2);
    expect(detail.body.results[0]).toMatchObject({ ok: true, text: `ip route replace ${bSubnet} via 198.51.100.12 dev eth0 proto 252` });
    expect(detail.body.results[1]).toMatchObject({ ok: true, command: { kind: 'firewall.chain', table: 'filter' } });
    expect(typeof detail.body.results[0].durationMs).toBe('number');
    // the executor's texts are the controller's own renderings: not stored, rendered for the view
    const stored = JSON.parse((await fleet.prisma.job.findUnique({ where: { id: routeJob.id } }))!.results!) as Array<Record<string, unknown>>;
    expect(stored.map((r) => 'text' in r)).toEqual([false, false]);
    expect(detail.body.results[1].text).toMatch(/^\*filter\n:CROSSDOCK-FORWARD/);
    expect(hostA.drivers.iptables.rulesOf('filter', 'CROSSDOCK-FORWARD')).toContain(
      '-A CROSSDOCK-FORWARD -s 198.51.100.12/32 -d 10.100.0.0/16 -m comment --comment "crossdock host" -j ACCEPT',
    );
  });

  it("re-sends the filter chain to online hosts when a host joins or leaves or a pool's allowFrom changes, and stays in sync", async () => {
    fleet = await startFleetController();
    const a = await register('node-a', '198.51.100.11');
    const hostA = fleet.startExecutor(a.token);
    const forward = () => hostA.drivers.iptables.rulesOf('filter', 'CROSSDOCK-FORWARD');
    const rule = (source: string, destination: string, comment: string) =>
      `-A CROSSDOCK-FORWARD -s ${source} -d ${destination} -m comment --comment "${comment}" -j ACCEPT`;
    /** A, online, has applied everything it was asked to; its generation then. */
    const inSync = (_what: string) =>
      vi.waitFor(async () => {
        const r = await fleet!.call('GET', '/v1/hosts/node-a');
        expect(r.body.status).toBe('online');
        expect(r.body.generation.applied).toBe(r.body.generation.desired);
        return r.body.generation.desired as number;
      }, SETTLED);
    await vi.waitFor(() => expect(forward()).toContain(rule('198.51.100.11/32', '10.100.0.0/16', 'crossdock host')), SETTLED);
    const first = await inSync('A in sync at first');

    // a monitoring host, registered without subnets: no route anywhere, but A accepts it
    const monitor = await fleet.call('POST', '/v1/hosts', { name: 'monitor', address: '198.51.100.40', allocate: false });
    expect(monitor.status).toBe(201);
    await vi.waitFor(() => expect(forward()).toContain(rule('198.51.100.40/32', '10.100.0.0/16', 'crossdock host')), SETTLED);
    expect(forward()).toContain(rule('10.100.0.0/16', '198.51.100.40/32', 'crossdock host'));
    const joined = await inSync('A in sync after the join');
    expect(joined).toBeGreaterThan(first);

    const patched = await fleet.call('PATCH', '/v1/pools/default', { allowFrom: ['192.0.2.0/24'] });
    expect(patched.status).toBe(200);
    await vi.waitFor(() => expect(forward()).toContain(rule('192.0.2.0/24', '10.100.0.0/16', 'crossdock allowFrom')), SETTLED);
    const allowed = await inSync('A in sync after allowFrom');
    expect(allowed).toBeGreaterThan(joined);
    const jobs = await vi.waitFor(async () => {
      const items = (await fleet!.call('GET', '/v1/jobs?host=node-a')).body.items as Array<{ reason: string; status: string }>;
      expect(items.find((j) => j.reason === 'pool default changed')?.status).toBe('succeeded');
      return items;
    }, SETTLED);

    // the same list again changes nothing: no job, no new generation
    expect((await fleet.call('PATCH', '/v1/pools/default', { allowFrom: ['192.0.2.0/24'] })).status).toBe(200);
    await fleet.app.agents.reconciler.idle();
    expect(await inSync('A still in sync')).toBe(allowed);
    expect((await fleet.call('GET', '/v1/jobs?host=node-a')).body.items).toHaveLength(jobs.length);

    expect((await fleet.call('DELETE', '/v1/hosts/monitor')).status).toBe(204);
    await vi.waitFor(() => expect(forward().filter((r) => r.includes('198.51.100.40'))).toEqual([]), SETTLED);
    expect(await inSync('A in sync after the leave')).toBeGreaterThan(allowed);
    expect((await fleet.call('PATCH', '/v1/pools/default', { allowFrom: [] })).status).toBe(200);
    await vi.waitFor(() => expect(forward().filter((r) => r.includes('allowFrom'))).toEqual([]), SETTLED);
    await inSync('A in sync at the end');
  });

  it('puts back a route deleted by hand within the reconcile interval, and leaves foreign routes alone', async () => {
    fleet = await startFleetController({ reconcileIntervalMs: 200 });
    const a = await register('node-a', '198.51.100.11');
    const b = await register('node-b', '198.51.100.12');
    const hostA = fleet.startExecutor(a.token);
    const bSubnet = b.host.subnets[0]!.cidr;
    await vi.waitFor(() => expect(hostA.drivers.ip.routes.has(bSubnet)).toBe(true), SETTLED);
    hostA.drivers.ip.foreignRoutes.set('192.0.2.0/24', { dst: '192.0.2.0/24', via: '198.51.100.1', dev: 'eth0' });
    hostA.drivers.ip.routes.delete(bSubnet);
    await vi.waitFor(() => expect(hostA.drivers.ip.routes.get(bSubnet)?.via).toBe('198.51.100.12'), { ...SETTLED, timeout: 5_000 });
    expect(hostA.drivers.ip.foreignRoutes.has('192.0.2.0/24')).toBe(true);
    await vi.waitFor(async () => {
      const drift = await fleet!.call('GET', '/v1/jobs?host=node-a');
      expect(drift.body.items.some((j: { reason: string; status: string }) => j.reason === 'drift' && j.status === 'succeeded')).toBe(true);
    }, SETTLED);
  });

  it('reports what the host announces at once: a network and a route removed by hand come back with the timer at 10 minutes', async () => {
    fleet = await startFleetController({ reconcileIntervalMs: 10 * 60_000 });
    const a = await register('node-a', '198.51.100.11');
    const hostA = fleet.startExecutor(a.token);
    await vi.waitFor(() => expect(hostA.drivers.docker.networks.has('crossdock')).toBe(true), SETTLED);
    const b = await register('node-b', '198.51.100.12');
    const bSubnet = b.host.subnets[0]!.cidr;
    await vi.waitFor(() => expect(hostA.drivers.ip.routes.has(bSubnet)).toBe(true), SETTLED);
    // Its own jobs were announced too (the fakes announce every change), and reported nothing.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(hostA.agent.driftReports).toBe(0);

    hostA.drivers.docker.networks.delete('crossdock');
    hostA.drivers.docker.announce();
    await vi.waitFor(() => expect(hostA.drivers.docker.networks.has('crossdock')).toBe(true), { ...SETTLED, timeout: 5_000 });
    hostA.drivers.ip.routes.delete(bSubnet);
    hostA.drivers.ip.announce();
    await vi.waitFor(() => expect(hostA.drivers.ip.routes.get(bSubnet)?.via).toBe('198.51.100.12'), { ...SETTLED, timeout: 5_000 });
    expect(hostA.agent.driftReports).toBe(2);
    // A change that leaves crossdock's state as it was reports nothing.
    hostA.drivers.ip.announce('a route of someone else');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(hostA.agent.driftReports).toBe(2);
  });

  it('a host that reconnects already in sync costs no job, even when every host reconnects at once', async () => {
    fleet = await startFleetController({ reconcileIntervalMs: 10 * 60_000 });
    const registered = [];
    for (let i = 0; i < 12; i++) registered.push(await register(`node-${i}`, `198.51.100.${20 + i}`));
    const hosts = registered.map((r) => fleet!.startExecutor(r.token));
    const peerRoutes = (h: (typeof hosts)[number]) => [...h.drivers.ip.routes.keys()].length;
    await vi.waitFor(() => expect(hosts.map(peerRoutes)).toEqual(hosts.map(() => 11)), SETTLED);
    const jobRows = async () => (await fleet!.call('GET', '/v1/jobs?limit=1000')).body.items.length as number;
    await fleet.app.agents.reconciler.idle();
    const firstJobs = await jobRows();
    expect(firstJobs).toBeGreaterThanOrEqual(12);

    // Every executor reconnects at once, as after a controller restart: all are in sync already.
    const online = async () => ((await fleet!.call('GET', '/v1/hosts')).body.items as Array<{ status: string }>).filter((h) => h.status === 'online').length;
    await vi.waitFor(async () => expect(await online()).toBe(12), SETTLED);
    const attempts = hosts.map((h) => h.agent.attempts);
    fleet.app.agents.hub.closeAll(1012, 'controller restarting');
    await vi.waitFor(() => expect(hosts.every((h, i) => h.agent.connected && h.agent.attempts === 0 && attempts[i] === 0)).toBe(true), SETTLED);
    await vi.waitFor(async () => expect(await online()).toBe(12), SETTLED);
    await fleet.app.agents.reconciler.idle();
    expect(await jobRows()).toBe(firstJobs);
    const generations = (await fleet.call('GET', '/v1/hosts')).body.items.map((h: { generation: { desired: number; applied: number } }) => h.generation);
    for (const g of generations) expect(g.applied).toBe(g.desired);
  });

  it('plans a reconnecting host from its hello at once: a job sent to its lost connection is not waited for', async () => {
    // A job timeout far beyond the test: only the hello can move the host on.
    fleet = await startFleetController({ reconcileIntervalMs: 10 * 60_000, jobTimeoutMs: 10 * 60_000 });
    const a = await register('node-a', '198.51.100.11');
    const wsUrl = `${fleet.url.replace('http', 'ws')}/v1/agent`;
    const state = emptyObservedState();
    const hello = { type: 'hello', protocol: PROTOCOL_VERSION, executorVersion: '0.0.0-test', hostname: 'node-a', state, digest: observedDigest(state) };
    /** An executor that says hello and never answers: resolves with the first job it is sent. */
    const connectAndTakeJob = () =>
      new Promise<{ socket: WebSocket; job: { jobId: number } }>((resolve, reject) => {
        const socket = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${a.token}` } });
        socket.on('error', reject);
        socket.on('message', (data) => {
          const message = JSON.parse(data.toString()) as { type: string; jobId: number };
          if (message.type === 'welcome') socket.send(JSON.stringify(hello));
          if (message.type === 'job') resolve({ socket, job: message });
        });
      });
    const first = await connectAndTakeJob();
    first.socket.terminate();
    // The same, still empty, host comes back: it is planned from this hello, not after the old job's timeout.
    const second = await connectAndTakeJob();
    expect(second.job.jobId).toBeGreaterThan(first.job.jobId);
    second.socket.terminate();
    const old = await vi.waitFor(async () => {
      const r = await fleet!.call('GET', `/v1/jobs/${first.job.jobId}`);
      expect(r.body.status).toBe('timeout');
      return r.body;
    }, SETTLED);
    expect(old.error).toMatch(/reconnected before its result arrived/);
  });

  it('takes a storm a bounded number of executors at a time: the rest are told when to come back, and do', async () => {
    fleet = await startFleetController({ maxSyncing: 2 });
    const [a, b, c] = [await register('node-a', '198.51.100.11'), await register('node-b', '198.51.100.12'), await register('node-c', '198.51.100.13')];
    // C has been synced before (its executor restarts below): it is no newcomer, and waits its turn.
    const before = fleet.startExecutor(c.token);
    await vi.waitFor(() => expect(fleet!.app.agents.reconciler.neverSynced(c.host.id)).toBe(false), SETTLED);
    before.agent.stop();
    await before.done;
    const wsUrl = `${fleet.url.replace('http', 'ws')}/v1/agent`;
    /** Connected, welcomed, and no hello yet: syncing. */
    const quiet = (token: string) =>
      new Promise<WebSocket>((resolve, reject) => {
        const socket = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${token}` } });
        socket.once('message', () => resolve(socket));
        socket.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
      });
    const first = await quiet(a.token);
    const second = await quiet(b.token);
    const refused = await new Promise<{ status: number; retryAfter: string | undefined; body: string }>((resolve) => {
      const socket = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${c.token}` } });
      socket.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body }));
      });
    });
    expect(refused.status).toBe(503);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(refused.body).error).toMatchObject({ code: 'CONTROLLER_BUSY', message: expect.stringMatching(/syncing 2 executors .* retry in \d+ s/) });

    // The real executor waits what it was told (plus its jitter), without counting a failure;
    // meanwhile one of the two says hello and is synced, which frees a place.
    const delays: number[] = [];
    const state = emptyObservedState();
    const hostC = fleet.startExecutor(c.token, {
      sleep: async (ms) => {
        delays.push(ms);
        if (delays.length > 1) return;
        second.send(
          JSON.stringify({
            type: 'hello',
            protocol: PROTOCOL_VERSION,
            executorVersion: '0.0.0-test',
            hostname: 'node-b',
            state,
            digest: observedDigest(state),
          }),
        );
        await vi.waitFor(() => expect(fleet!.app.agents.admission.inProgress).toBe(1), SETTLED);
      },
    });
    await vi.waitFor(() => expect(hostC.drivers.docker.networks.has('crossdock')).toBe(true), SETTLED);
    expect(delays.length).toBeGreaterThanOrEqual(1);
    // C's own turn comes after the one promised just before it, as far again (turns are spread
    // at the rate syncs finish: C's first sync made it 1 in 5 s), plus at most a second of jitter.
    expect(delays[0]).toBeGreaterThanOrEqual(Number(refused.retryAfter) * 1000);
    expect(delays[0]).toBeLessThanOrEqual(2 * Number(refused.retryAfter) * 1000 + 1_000);
    expect(hostC.agent.attempts).toBe(0);
    expect(hostC.agent.transportInUse).toBe('websocket');
    expect(fleet.app.agents.admission.refused).toBeGreaterThanOrEqual(2);
    first.close();
    second.close();
  });

  it('lets a host that has never been synced in at once, however busy; the claim alone gets nothing', async () => {
    fleet = await startFleetController({ maxSyncing: 1 });
    const [a, b] = [await register('node-a', '198.51.100.11'), await register('node-b', '198.51.100.12')];
    const wsUrl = `${fleet.url.replace('http', 'ws')}/v1/agent`;
    const attempt = (token: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; socket?: WebSocket }>((resolve, reject) => {
        const socket = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${token}`, ...headers } });
        socket.once('message', () => resolve({ status: 101, socket }));
        socket.once('unexpected-response', (_req, res) => {
          res.resume();
          resolve({ status: res.statusCode ?? 0 });
        });
        socket.once('error', reject);
      });
    // The one place is held by A, which says no hello.
    const held = await attempt(a.token);
    expect(held.status).toBe(101);
    // A bad token claiming to be new is refused for its token, and takes no place.
    expect((await attempt('cdh_not-a-token-of-any-host-000000', { 'x-crossdock-sync': 'initial' })).status).toBe(401);
    expect(fleet.app.agents.admission.inProgress).toBe(1);

    // B, new, with the real executor (which claims until its first hello): in at once, no wait.
    const delays: number[] = [];
    const hostB = fleet.startExecutor(b.token, { sleep: async (ms) => void delays.push(ms) });
    await vi.waitFor(() => expect(hostB.drivers.docker.networks.has('crossdock')).toBe(true), SETTLED);
    expect(delays).toEqual([]);
    // Applied once its result is in (the network is made before the result is sent).
    await vi.waitFor(() => expect(fleet!.app.agents.reconciler.neverSynced(b.host.id)).toBe(false), SETTLED);
    // Synced now: the same claim from B's host is turned away like any other while the place is held.
    expect((await attempt(b.token, { 'x-crossdock-sync': 'initial' })).status).toBe(503);
    // Without the claim, a new host waits too: only the claim is looked up.
    const c = await register('node-c', '198.51.100.13');
    expect((await attempt(c.token)).status).toBe(503);
    // Each refusal counted once (crossdock_agent_refused_total): B's claim and C; B's newcomer place and the bad token were none.
    expect(fleet.app.agents.admission.refused).toBe(2);
    held.socket!.close();
  });

  it('follows an address change and a deletion; a deleted host is revoked and cleans up', async () => {
    fleet = await startFleetController();
    const a = await register('node-a', '198.51.100.11');
    const b = await register('node-b', '198.51.100.12');
    const hostA = fleet.startExecutor(a.token);
    const hostB = fleet.startExecutor(b.token);
    const bSubnet = b.host.subnets[0]!.cidr;
    const aSubnet = a.host.subnets[0]!.cidr;
    await vi.waitFor(() => expect(hostB.drivers.ip.routes.has(aSubnet)).toBe(true), SETTLED);
    expect((await fleet.call('PATCH', '/v1/hosts/node-b', { address: '198.51.100.22' })).status).toBe(200);
    await vi.waitFor(() => expect(hostA.drivers.ip.routes.get(bSubnet)?.via).toBe('198.51.100.22'), SETTLED);

    expect((await fleet.call('DELETE', '/v1/hosts/node-b')).status).toBe(204);
    await vi.waitFor(() => expect(hostA.drivers.ip.routes.has(bSubnet)).toBe(false), SETTLED);
    expect(await hostB.done).toMatchObject({ reason: 'revoked' });
    expect(hostB.drivers.ip.routes.size).toBe(0);
    expect(hostB.drivers.docker.networks.size).toBe(0);
    expect(hostB.drivers.iptables.rulesOf('filter', 'DOCKER-USER')).toEqual(['-A DOCKER-USER -j RETURN']);
  });

  it('refuses a bad token before the upgrade, and a second connection replaces the first', async () => {
    fleet = await startFleetController();
    const a = await register('node-a', '198.51.100.11');
    const wsUrl = `${fleet.url.replace('http', 'ws')}/v1/agent`;
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(wsUrl, { headers: { authorization: 'Bearer cdh_wrong' } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
    });
    expect(status).toBe(401);

    const first = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${a.token}` } });
    const firstClosed = new Promise<number>((resolve) => first.on('close', (code) => resolve(code)));
    await new Promise((r) => first.once('message', r));
    const second = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${a.token}` } });
    await new Promise((r) => second.once('message', r));
    expect(await firstClosed).toBe(4000);
    expect(second.readyState).toBe(WebSocket.OPEN);
    second.close();
  });

  it('drops a peer that stops answering heartbeats', async () => {
    fleet = await startFleetController({ heartbeatIntervalMs: 100 });
    const a = await register('node-a', '198.51.100.11');
    // autoPong off: this client never answers the controller's pings.
    const silent = new WebSocket(`${fleet.url.replace('http', 'ws')}/v1/agent`, { headers: { authorization: `Bearer ${a.token}` }, autoPong: false });
    await new Promise((r) => silent.once('open', r));
    await vi.waitFor(async () => expect((await fleet!.call('GET', '/v1/hosts/node-a')).body.status).toBe('online'), SETTLED);
    const closed = await new Promise<number>((resolve) => silent.on('close', (code) => resolve(code)));
    expect(closed).toBe(1006);
    await vi.waitFor(async () => expect((await fleet!.call('GET', '/v1/hosts/node-a')).body.status).toBe('offline'), SETTLED);
  });

  it('reconnects with growing, jittered delays when the controller is unreachable (no real sleeping)', async () => {
    fleet = await startFleetController();
    const a = await register('node-a', '198.51.100.11');
    const delays: number[] = [];
    await fleet.app.close(); // nothing listens any more
    const host = fleet.startExecutor(a.token, {
      sleep: async (ms) => {
        delays.push(ms);
        if (delays.length >= 7) host.agent.stop();
      },
    });
    await host.done;
    expect(delays).toHaveLength(7);
    // 0.5 s doubling to 4 s, each between half and all of its ceiling.
    const ceilings = [500, 1000, 2000, 4000, 4000, 4000, 4000];
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(ceilings[i]! / 2);
      expect(d).toBeLessThanOrEqual(ceilings[i]!);
    });
    await fleet.close(); // the app is closed already; this removes its database
    fleet = undefined;
  });

  it('delivers the same jobs over HTTP polling', async () => {
    fleet = await startFleetController();
    const a = await register('node-a', '198.51.100.11');
    const hostA = fleet.startExecutor(a.token, { transport: 'polling' });
    await vi.waitFor(() => expect(hostA.drivers.docker.networks.has('crossdock')).toBe(true), SETTLED);
    const b = await register('node-b', '198.51.100.12');
    const bSubnet = b.host.subnets[0]!.cidr;
    await vi.waitFor(() => expect(hostA.drivers.ip.routes.get(bSubnet)?.via).toBe('198.51.100.12'), SETTLED);
    expect(hostA.agent.transportInUse).toBe('polling');
    // Drift is caught on the reconcile schedule over polling too, not only when a long poll ends.
    hostA.drivers.ip.routes.delete(bSubnet);
    await vi.waitFor(() => expect(hostA.drivers.ip.routes.get(bSubnet)?.via).toBe('198.51.100.12'), { ...SETTLED, timeout: 3_000 });
    await vi.waitFor(async () => {
      const jobs = await fleet!.call('GET', '/v1/jobs?host=node-a&status=succeeded');
      expect(jobs.body.items.some((j: { reason: string }) => j.reason.includes('node-b'))).toBe(true);
    }, SETTLED);
    expect((await fleet.call('GET', '/v1/hosts/node-a')).body.status).toBe('online');
  });
});
