// crossdock end to end, on the lab (test/lab): three hosts, each its own network namespace and
// dockerd, a real controller and one real executor per host. h1 is the Ubuntu case (FORWARD
// policy DROP), h2 the CentOS case (ACCEPT), h3 Ubuntu again. Traffic is checked from inside
// containers with busybox `ping` and `nc`: every server runs `nc -ll -p 8080 -e netstat -tn`,
// which answers each connection with the peer address it saw, so one exchange checks TCP and
// the source address at once.
//
// Hosts themselves (from their own namespaces, with the machine's busybox) and outside machines
// (namespaces on the LAN that are not registered hosts) are checked the same way.
//
// The tests run in order on one lab and build on each other (a second network, a bip host,
// a host deleted and registered again, a controller restart); each one reads what it needs
// from the API rather than from an earlier test.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { containsAddress, containsCidr, mustParseCidr, overlaps, parseIPv4 } from '@crossdock/shared';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXECUTOR_RECONCILE_INTERVAL_MS, LAB_DEFAULT_POOL, restartController, startExecutor, stopController } from '../lab/crossdock.ts';
import { dockerdPidOf } from '../lab/engine.ts';
import { findBusybox } from '../lab/image.ts';
import {
  addLanMachine,
  containerAddress,
  dockerIn,
  down,
  execInContainer,
  hostExec,
  lanMachineExec,
  removeContainer,
  removeLanMachine,
  runContainer,
  up,
  type LabState,
  type LanMachine,
  type RunResult,
} from '../lab/lab.ts';
import { isAlive } from '../lab/processes.ts';
import { WaitAborted, waitFor } from '../lab/run.ts';
import { hostPaths, netnsOf } from '../lab/state.ts';
import { missing } from '../support/requirements.ts';

const HOSTS = ['h1', 'h2', 'h3'] as const;
type HostName = (typeof HOSTS)[number];
const ROUTE_PROTOCOL = '252';
const MANAGED_LABEL = 'io.crossdock.managed';
const PORT = '8080';
const SERVER_CMD = ['nc', '-ll', '-p', PORT, '-e', 'netstat', '-tn'];
/** where a server in a host's own namespace listens */
const HOST_PORT = '9090';
/** outside machines: one whose network gets allowed, one that never is */
const OUTSIDE = { name: 'outside', address: '198.51.100.200', allowFrom: '198.51.100.200/29' };
const STRANGER = { name: 'stranger', address: '198.51.100.210' };
const LAN_PREFIX = '198.51.100.';
const CONVERGE_TIMEOUT_MS = 60_000;
const POLL_MS = 250;

interface ApiSubnet {
  id: number;
  cidr: string;
  gateway: string;
  network: string;
  mode: 'network' | 'bip';
  host: string;
}

interface ApiHost {
  id: number;
  name: string;
  address: string;
  interface: string;
  status: 'pending' | 'online' | 'offline';
  subnets: ApiSubnet[];
  generation: { desired: number; applied: number };
}

interface ApiJob {
  id: number;
  host: string;
  status: string;
  reason: string;
  createdAt: string;
}

/** A container on a lab host, by host and name, with the address it has on its network. */
interface Endpoint {
  host: HostName;
  name: string;
  address: string;
}

const reason = missing('root', 'netns', 'iptables', 'dockerd', 'busybox');

describe.skipIf(reason)('crossdock end to end on a three-host lab (needs root, netns, iptables, dockerd, busybox-static)', () => {
  let state: LabState;
  /** The server and client container of each host on its `crossdock` network. */
  const servers = new Map<HostName, Endpoint>();
  const clients = new Map<HostName, Endpoint>();
  /** Servers that hosts and outside machines call (see the first test that starts them). */
  const reachServers = new Map<HostName, Endpoint>();

  // ---- the controller's API ----

  async function api<T>(method: string, route: string, body?: unknown): Promise<{ status: number; body: T }> {
    const { url, adminToken } = state.controller!;
    const response = await fetch(`${url}${route}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  }

  async function hosts(): Promise<ApiHost[]> {
    const response = await api<{ items: ApiHost[] }>('GET', '/v1/hosts');
    expect(response.status).toBe(200);
    return response.body.items;
  }

  async function jobsOf(host: string): Promise<ApiJob[]> {
    const response = await api<{ items: ApiJob[] }>('GET', `/v1/jobs?host=${host}&limit=100`);
    expect(response.status).toBe(200);
    return response.body.items;
  }

  // ---- what the hosts have ----

  /** crossdock's routes in a host's namespace: destination -> gateway. */
  async function crossdockRoutes(host: string): Promise<Map<string, string>> {
    const result = await hostExec(host, ['ip', '-4', '-json', 'route', 'show', 'table', 'main', 'proto', ROUTE_PROTOCOL]);
    const routes = (result.stdout.trim() ? JSON.parse(result.stdout) : []) as Array<{ dst: string; gateway?: string }>;
    return new Map(routes.map((route) => [route.dst, route.gateway ?? '']));
  }

  async function inspectNetwork(host: string, name: string): Promise<{ subnet: string; gateway: string; labels: Record<string, string> } | null> {
    const result = await dockerIn(host, ['network', 'inspect', '--format', '{{json .}}', name], { check: false });
    if (result.code !== 0) return null;
    const network = JSON.parse(result.stdout) as { IPAM: { Config: Array<{ Subnet?: string; Gateway?: string }> }; Labels: Record<string, string> | null };
    const config = network.IPAM.Config[0] ?? {};
    return { subnet: config.Subnet ?? '', gateway: config.Gateway ?? '', labels: network.Labels ?? {} };
  }

  async function managedNetworks(host: string): Promise<string[]> {
    const result = await dockerIn(host, ['network', 'ls', '--filter', `label=${MANAGED_LABEL}=true`, '--format', '{{.Name}}']);
    return result.stdout.split('\n').filter(Boolean).sort();
  }

  /** The last lines of a log, without the controller's per-request lines (the polling above makes most of them). */
  function logTail(file: string, lines = 8): string {
    try {
      const all = readFileSync(file, 'utf8').trimEnd().split('\n');
      return all
        .filter((line) => !/"msg":"(incoming request|request completed)"/.test(line))
        .slice(-lines)
        .join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** The ends of the lab's crossdock logs, for failure messages. */
  function diagnostics(lines = 8): string {
    const parts = [`controller:\n${logTail(`${state.dir}/controller/controller.log`, lines)}`];
    for (const host of state.hosts) parts.push(`${host.name} executor:\n${logTail(hostPaths(state.dir, host.name).executorLog, lines)}`);
    return parts.join('\n');
  }

  /**
   * Polls until every registered host is online with generation applied == desired, every host
   * has exactly the routes to its peers' subnets (via the peer's address), and every subnet is
   * on its host's engine (a Docker network, or the default bridge for bip mode). Returns the hosts.
   */
  async function waitConverged(timeoutMs = CONVERGE_TIMEOUT_MS): Promise<ApiHost[]> {
    try {
      return await waitFor('every host online and converged', timeoutMs, POLL_MS, async () => {
        const registered = await hosts();
        for (const host of state.hosts) {
          // no use waiting for a host whose executor died (its log says why)
          if (registered.some((h) => h.name === host.name) && host.executorPid !== null && !isAlive(host.executorPid))
            throw new WaitAborted(`the executor of ${host.name} (pid ${host.executorPid}) exited`);
        }
        const problems: string[] = [];
        for (const host of registered) {
          if (host.status !== 'online') problems.push(`${host.name} is ${host.status}`);
          if (host.generation.applied !== host.generation.desired)
            problems.push(`${host.name} applied generation ${host.generation.applied} of ${host.generation.desired}`);
        }
        await Promise.all(
          registered.map(async (host) => {
            const expected = new Map(
              registered.filter((peer) => peer.name !== host.name).flatMap((peer) => peer.subnets.map((s) => [s.cidr, peer.address] as const)),
            );
            const actual = await crossdockRoutes(host.name);
            const want = [...expected]
              .map(([dst, via]) => `${dst} via ${via}`)
              .sort()
              .join(', ');
            const have = [...actual]
              .map(([dst, via]) => `${dst} via ${via}`)
              .sort()
              .join(', ');
            if (want !== have) problems.push(`${host.name} routes [${have}], expected [${want}]`);
            for (const subnet of host.subnets) {
              const network = await inspectNetwork(host.name, subnet.mode === 'bip' ? 'bridge' : subnet.network);
              if (network?.subnet !== subnet.cidr)
                problems.push(
                  `${host.name}: ${subnet.mode === 'bip' ? 'the default bridge' : `network ${subnet.network}`} has subnet ${network?.subnet ?? 'none'}, expected ${subnet.cidr}`,
                );
            }
          }),
        );
        if (problems.length > 0) throw new Error(problems.join('; '));
        return registered;
      });
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${diagnostics()}`);
    }
  }

  // ---- traffic ----

  async function startContainer(host: HostName, name: string, network: string | undefined, server: boolean): Promise<Endpoint> {
    await removeContainer(host, name);
    await runContainer(host, { name, ...(network ? { network } : {}), ...(server ? { cmd: SERVER_CMD } : {}) });
    return { host, name, address: await containerAddress(host, name, network) };
  }

  /** A server and a client on each given host's `crossdock` network. */
  async function startCrossdockContainers(...names: HostName[]): Promise<void> {
    await Promise.all(
      names.map(async (host) => {
        servers.set(host, await startContainer(host, 'srv', 'crossdock', true));
        clients.set(host, await startContainer(host, 'cli', 'crossdock', false));
      }),
    );
  }

  /** Whatever runs busybox applets for a check: a container, a host's own namespace, an outside machine. */
  interface Client {
    /** name(address): the address is what a server should see when nothing rewrites it */
    label: string;
    applet(argv: string[]): Promise<RunResult>;
  }

  const BUSYBOX = findBusybox();
  const inContainer = (e: Endpoint): Client => ({ label: label(e), applet: (argv) => execInContainer(e.host, e.name, argv, { timeoutMs: 15_000 }) });
  const onHost = (host: HostName): Client => ({
    label: `${host}(${state.hosts.find((h) => h.name === host)!.address})`,
    applet: (argv) => hostExec(host, [BUSYBOX, ...argv], { check: false, timeoutMs: 15_000 }),
  });
  const onMachine = (m: LanMachine): Client => ({
    label: `${m.name}(${m.address})`,
    applet: (argv) => lanMachineExec(m, [BUSYBOX, ...argv], { check: false, timeoutMs: 15_000 }),
  });

  async function ping(from: Client, address: string): Promise<boolean> {
    return (await from.applet(['ping', '-c', '1', '-W', '2', address])).code === 0;
  }

  /**
   * One TCP exchange with a server: null when no answer came, else the peer addresses the
   * server's netstat listed for its port (the client's address, as the server saw it).
   */
  async function tcp(from: Client, address: string, port = PORT): Promise<string[] | null> {
    const result = await from.applet(['nc', '-w', '3', address, port]);
    if (result.code !== 0 || !result.stdout.includes('Active Internet connections')) return null;
    const peers: string[] = [];
    for (const line of result.stdout.split('\n')) {
      const match = /^tcp\s+\d+\s+\d+\s+(\S+)\s+(\S+)/.exec(line.trim());
      if (!match || !match[1]!.endsWith(`:${port}`)) continue;
      peers.push(match[2]!.replace(/^::ffff:/, '').replace(/:\d+$/, ''));
    }
    return peers;
  }

  interface Exchange {
    from: string;
    to: string;
    ping: boolean;
    /** null: no TCP answer */
    peers: string[] | null;
  }

  const inSubnet = (address: string, cidr: string) => containsAddress(mustParseCidr(cidr), parseIPv4(address)!);
  const label = (e: Endpoint) => `${e.host}/${e.name}(${e.address})`;

  async function exchange(from: Endpoint | Client, to: Endpoint): Promise<Exchange> {
    const client = 'applet' in from ? from : inContainer(from);
    const [pinged, peers] = await Promise.all([ping(client, to.address), tcp(client, to.address)]);
    return { from: client.label, to: label(to), ping: pinged, peers };
  }

  /** Each exchange pinged and was answered over TCP, and the server saw the client's own address (nothing rewrote it). */
  function expectReached(exchanges: Exchange[]): void {
    expect(exchanges.map((e) => ({ from: e.from, to: e.to, ping: e.ping, tcp: e.peers !== null }))).toEqual(
      exchanges.map((e) => ({ from: e.from, to: e.to, ping: true, tcp: true })),
    );
    for (const e of exchanges) expect(e.peers, `${e.from} -> ${e.to}: the addresses the server saw`).toContain(/\(([\d.]+)\)$/.exec(e.from)![1]);
  }

  /** Client of one host to server of the other, for every pair of distinct hosts. */
  function allHostPairs(names: readonly HostName[] = HOSTS): Promise<Exchange[]> {
    const list: Array<Promise<Exchange>> = [];
    for (const a of names) for (const b of names) if (a !== b) list.push(exchange(clients.get(a)!, servers.get(b)!));
    return Promise.all(list);
  }

  /** Each exchange pinged and was answered over TCP, and the server saw the client's own address. */
  function expectWorking(exchanges: Exchange[]): void {
    expectReached(exchanges);
    for (const e of exchanges)
      expect(
        e.peers!.filter((peer) => peer.startsWith(LAN_PREFIX)),
        `${e.from} -> ${e.to}: host addresses the server saw`,
      ).toEqual([]);
  }

  function expectBroken(exchanges: Exchange[]): void {
    expect(exchanges.map((e) => ({ from: e.from, to: e.to, ping: e.ping, tcp: e.peers !== null }))).toEqual(
      exchanges.map((e) => ({ from: e.from, to: e.to, ping: false, tcp: false })),
    );
  }

  // ---- lab ----

  beforeAll(async () => {
    try {
      state = await up({ hosts: HOSTS.length });
      await waitConverged();
      await startCrossdockContainers(...HOSTS);
    } catch (error) {
      await down().catch(() => {});
      throw error;
    }
  }, 180_000);

  // the lab and its logs go in afterAll: show what crossdock said around a failure first
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      if (state) console.error(`crossdock logs at the failure:\n${diagnostics(20)}`);
    });
  });

  afterAll(async () => {
    // a test that failed midway may have left an executor stopped
    for (const host of state?.hosts ?? []) if (host.executorPid !== null && isAlive(host.executorPid)) process.kill(host.executorPid, 'SIGCONT');
    await down();
  }, 120_000);

  // ---- the tests ----

  it('gives every host its own subnet from the pool, as a labelled Docker network', async () => {
    const registered = await hosts();
    expect(registered.map((h) => h.name)).toEqual([...HOSTS]);
    const pool = mustParseCidr(LAB_DEFAULT_POOL);
    for (const host of registered) {
      expect(host.subnets).toHaveLength(1);
      const subnet = host.subnets[0]!;
      expect(subnet).toMatchObject({ network: 'crossdock', mode: 'network', host: host.name });
      expect(containsCidr(pool, mustParseCidr(subnet.cidr)), `${subnet.cidr} in ${LAB_DEFAULT_POOL}`).toBe(true);
      const network = await inspectNetwork(host.name, 'crossdock');
      expect(network).toMatchObject({ subnet: subnet.cidr, gateway: subnet.gateway });
      expect(network!.labels[MANAGED_LABEL]).toBe('true');
      expect(network!.labels['io.crossdock.subnet']).toBe(String(subnet.id));
      // and the containers started on it got addresses from it
      expect(inSubnet(servers.get(host.name as HostName)!.address, subnet.cidr)).toBe(true);
    }
    const cidrs = registered.map((h) => mustParseCidr(h.subnets[0]!.cidr));
    for (const [i, a] of cidrs.entries()) for (const b of cidrs.slice(i + 1)) expect(overlaps(a, b)).toBe(false);
  });

  it('lets a container on every host reach a container on every other host (ping and TCP, both directions)', async () => {
    const exchanges = await allHostPairs();
    expect(exchanges).toHaveLength(HOSTS.length * (HOSTS.length - 1));
    expect(exchanges.filter((e) => !e.ping || e.peers === null)).toEqual([]);
  }, 60_000);

  it("shows the receiving container the sender's container address, not its host's", async () => {
    const exchanges = await allHostPairs();
    expectWorking(exchanges);
  }, 60_000);

  it('lets every host reach a container on every other host from its own namespace, DROP hosts included (ping and TCP, both directions)', async () => {
    // h1 and h3 are the Ubuntu case: before crossdock accepted its hosts, only h2's containers answered
    for (const host of ['h1', 'h3']) expect((await hostExec(host, ['iptables-save', '-t', 'filter'])).stdout).toMatch(/^:FORWARD DROP/m);
    // Servers of their own: a server lists every connection it still holds (TIME_WAIT included),
    // and the other tests' servers must see only container addresses.
    await Promise.all(HOSTS.map(async (host) => reachServers.set(host, await startContainer(host, 'reach-srv', 'crossdock', true))));
    const exchanges = await Promise.all(HOSTS.flatMap((a) => HOSTS.filter((b) => b !== a).map((b) => exchange(onHost(a), reachServers.get(b)!))));
    expect(exchanges).toHaveLength(HOSTS.length * (HOSTS.length - 1));
    // and the container saw the host's own address: nothing was masqueraded on the way in
    expectReached(exchanges);
  }, 60_000);

  it('leaves what a container starts towards another host masqueraded, as Docker does (the host sees the sending host)', async () => {
    // a server in each host's own namespace, as a monitoring endpoint or a database on the host would be
    const hostServers: ChildProcess[] = HOSTS.map((host) =>
      spawn('nsenter', [`--net=/run/netns/${netnsOf(host)}`, '--', BUSYBOX, 'nc', '-ll', '-p', HOST_PORT, '-e', BUSYBOX, 'netstat', '-tn'], {
        stdio: 'ignore',
      }),
    );
    try {
      const address = (host: HostName) => state.hosts.find((h) => h.name === host)!.address;
      const pairs = HOSTS.flatMap((a) => HOSTS.filter((b) => b !== a).map((b) => [a, b] as const));
      await waitFor('the host servers listening', 10_000, POLL_MS, async () =>
        (await Promise.all(HOSTS.map((b) => tcp(onHost(b === 'h1' ? 'h2' : 'h1'), address(b), HOST_PORT)))).every(Boolean) ? true : undefined,
      );
      const seen = await Promise.all(pairs.map(([a, b]) => tcp(inContainer(clients.get(a)!), address(b), HOST_PORT)));
      pairs.forEach(([a, b], i) => {
        // the server lists every connection it holds (other clients', earlier ones in TIME_WAIT): all from hosts
        expect(seen[i], `${a} container -> ${b}: the addresses the server saw`).toContain(address(a));
        expect(
          seen[i]!.filter((peer) => !peer.startsWith(LAN_PREFIX)),
          `${a} container -> ${b}: container addresses the server saw`,
        ).toEqual([]);
      });
    } finally {
      for (const server of hostServers) server.kill();
    }
  }, 60_000);

  it("refuses an outside machine until its network is in the pool's allowFrom, then lets it reach DROP hosts' containers through any host", async () => {
    const pool = LAB_DEFAULT_POOL;
    const outside = await addLanMachine(OUTSIDE.name, OUTSIDE.address);
    const stranger = await addLanMachine(STRANGER.name, STRANGER.address);
    const address = (host: HostName) => state.hosts.find((h) => h.name === host)!.address;
    /** the route an outside machine needs: the pool via any host (README, "Reach containers from outside the fleet") */
    const routeVia = (m: LanMachine, host: HostName) => lanMachineExec(m, ['ip', 'route', 'replace', pool, 'via', address(host)]);
    const [h1, h2, h3] = [reachServers.get('h1')!, reachServers.get('h2')!, reachServers.get('h3')!];
    try {
      await Promise.all([routeVia(outside, 'h2'), routeVia(stranger, 'h2')]);
      // Refused by the DROP hosts, which is what crossdock changes nothing about; the ACCEPT host
      // forwards anything routed to it, as before crossdock (it is never made stricter).
      expectBroken(await Promise.all([exchange(onMachine(outside), h1), exchange(onMachine(outside), h3)]));
      expectReached([await exchange(onMachine(outside), h2)]);

      expect((await api('PATCH', '/v1/pools/default', { allowFrom: [OUTSIDE.allowFrom] })).status).toBe(200);
      await waitConverged();
      for (const host of HOSTS) {
        expect((await hostExec(host, ['iptables-save', '-t', 'filter'])).stdout, host).toContain(
          `-A CROSSDOCK-FORWARD -s ${OUTSIDE.allowFrom} -d ${pool} -m comment --comment "crossdock allowFrom" -j ACCEPT`,
        );
      }
      // through the ACCEPT host, then through a DROP host that forwards it to another DROP host
      expectReached(await Promise.all([exchange(onMachine(outside), h1), exchange(onMachine(outside), h3)]));
      await routeVia(outside, 'h3');
      expectReached(await Promise.all([exchange(onMachine(outside), h1), exchange(onMachine(outside), h2)]));
      // A machine outside the allowed network is neither a host, a pool nor allowed: still refused.
      expectBroken(await Promise.all([exchange(onMachine(stranger), h1), exchange(onMachine(stranger), h3)]));
      await routeVia(stranger, 'h3');
      expectBroken(await Promise.all([exchange(onMachine(stranger), h1), exchange(onMachine(stranger), h2)]));

      expect((await api('PATCH', '/v1/pools/default', { allowFrom: [] })).status).toBe(200);
      await waitConverged();
      expectBroken(await Promise.all([exchange(onMachine(outside), h1), exchange(onMachine(outside), h2)]));
    } finally {
      await api('PATCH', '/v1/pools/default', { allowFrom: [] }).catch(() => {});
      await Promise.all([removeLanMachine(outside), removeLanMachine(stranger), ...HOSTS.map((host) => removeContainer(host, 'reach-srv'))]);
    }
  }, 120_000);

  it('repairs a forward chain broken by hand on the DROP host within the reconcile interval', async () => {
    const h1 = state.hosts.find((h) => h.name === 'h1')!;
    expect((await hostExec('h1', ['iptables-save', '-t', 'filter'])).stdout).toMatch(/^:FORWARD DROP/m);
    const toH1 = () => Promise.all([exchange(clients.get('h2')!, servers.get('h1')!), exchange(clients.get('h3')!, servers.get('h1')!)]);
    const breakages: Array<[string, string[]]> = [
      ['flush CROSSDOCK-FORWARD', ['iptables', '-t', 'filter', '-F', 'CROSSDOCK-FORWARD']],
      ['delete the jump from DOCKER-USER', ['iptables', '-t', 'filter', '-D', 'DOCKER-USER', '-j', 'CROSSDOCK-FORWARD']],
    ];
    for (const [what, argv] of breakages) {
      const lastJob = Math.max(0, ...(await jobsOf('h1')).map((j) => j.id));
      // h1's executor is paused only while the breakage is observed, so that its repair cannot
      // race the check; once it resumes, nobody touches the host again.
      process.kill(h1.executorPid!, 'SIGSTOP');
      try {
        await hostExec('h1', argv);
        expectBroken(await toH1());
      } finally {
        process.kill(h1.executorPid!, 'SIGCONT');
      }
      const resumed = Date.now();
      const budget = 2 * EXECUTOR_RECONCILE_INTERVAL_MS + 5_000;
      const repaired = await waitFor(`traffic to h1 back after "${what}"`, budget, POLL_MS, async () => {
        const exchanges = await toH1();
        return exchanges.every((e) => e.ping && e.peers !== null) ? exchanges : undefined;
      });
      const elapsed = Date.now() - resumed;
      expectWorking(repaired);
      expect(elapsed, `${what}: repaired after ${elapsed} ms`).toBeLessThan(budget);
      const drift = await waitFor(`a drift job for h1 after "${what}"`, 10_000, POLL_MS, async () =>
        (await jobsOf('h1')).find((j) => j.id > lastJob && j.reason === 'drift' && j.status === 'succeeded'),
      );
      expect(drift.reason).toBe('drift');
      const saved = (await hostExec('h1', ['iptables-save', '-t', 'filter'])).stdout.split('\n');
      expect(saved.filter((line) => line === '-A DOCKER-USER -j CROSSDOCK-FORWARD')).toHaveLength(1);
      expect(saved.filter((line) => line.startsWith('-A CROSSDOCK-FORWARD ')).length).toBeGreaterThan(0);
    }
  }, 90_000);

  it('gives a second network on one host its own subnet and Docker network, reachable both ways', async () => {
    const created = await api<ApiSubnet>('POST', '/v1/subnets', { host: 'h2', network: 'second' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ host: 'h2', network: 'second', mode: 'network' });
    const registered = await waitConverged();
    const others = registered.flatMap((h) => h.subnets).filter((s) => s.id !== created.body.id);
    expect(others.map((s) => s.cidr)).not.toContain(created.body.cidr);
    const network = await inspectNetwork('h2', 'second');
    expect(network).toMatchObject({ subnet: created.body.cidr, gateway: created.body.gateway });
    expect(network!.labels[MANAGED_LABEL]).toBe('true');
    expect(await managedNetworks('h2')).toEqual(['crossdock', 'second']);

    const server = await startContainer('h2', 'srv2', 'second', true);
    const client = await startContainer('h2', 'cli2', 'second', false);
    expect(inSubnet(server.address, created.body.cidr)).toBe(true);
    const exchanges = await Promise.all([
      exchange(clients.get('h1')!, server),
      exchange(clients.get('h3')!, server),
      exchange(client, servers.get('h1')!),
      exchange(client, servers.get('h3')!),
    ]);
    expectWorking(exchanges);
  }, 90_000);

  it('moves one host to bip mode: daemon.json keeps its keys, the default bridge reaches and is reached', async () => {
    const daemonJson = hostPaths(state.dir, 'h3').daemonJson;
    const before = JSON.parse(readFileSync(daemonJson, 'utf8')) as Record<string, unknown>;
    expect(before['deprecated-key-path']).toBeDefined(); // what the lab writes
    const withOurKey = { ...before, 'log-level': 'warn' };
    writeFileSync(daemonJson, `${JSON.stringify(withOurKey, null, 2)}\n`);
    const engineBefore = dockerdPidOf(state.dir, 'h3');

    const created = await api<ApiSubnet>('POST', '/v1/subnets', { host: 'h3', mode: 'bip', network: 'default-bridge' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ host: 'h3', mode: 'bip' });
    await waitConverged(90_000);

    const prefix = created.body.cidr.split('/')[1];
    expect(JSON.parse(readFileSync(daemonJson, 'utf8'))).toEqual({ ...withOurKey, bip: `${created.body.gateway}/${prefix}` });
    expect(dockerdPidOf(state.dir, 'h3')).not.toBe(engineBefore);
    const bridge = await inspectNetwork('h3', 'bridge');
    expect(bridge).toMatchObject({ subnet: created.body.cidr, gateway: created.body.gateway });
    // the dockerd restart stopped h3's containers, as it would on a real host: start new ones
    await startCrossdockContainers('h3');

    const server = await startContainer('h3', 'bsrv', undefined, true);
    const client = await startContainer('h3', 'bcli', undefined, false);
    expect(inSubnet(server.address, created.body.cidr)).toBe(true);
    const exchanges = await Promise.all([
      exchange(clients.get('h1')!, server),
      exchange(clients.get('h2')!, server),
      exchange(client, servers.get('h1')!),
      exchange(client, servers.get('h2')!),
    ]);
    expectWorking(exchanges);
    // and h3's crossdock network works again, with new containers
    expectWorking(await Promise.all([exchange(clients.get('h3')!, servers.get('h1')!), exchange(clients.get('h2')!, servers.get('h3')!)]));
  }, 150_000);

  it('removes the routes to a deleted host everywhere, and brings traffic back when it registers again', async () => {
    const h2 = (await hosts()).find((h) => h.name === 'h2')!;
    const h2Cidrs = h2.subnets.map((s) => s.cidr);
    expect(h2Cidrs.length).toBeGreaterThan(0);
    const oldExecutor = state.hosts.find((h) => h.name === 'h2')!.executorPid!;

    const deleted = await api('DELETE', '/v1/hosts/h2');
    expect(deleted.status).toBe(204);
    await waitFor("the routes to h2's subnets gone from h1 and h3", 30_000, POLL_MS, async () => {
      for (const host of ['h1', 'h3']) {
        const left = [...(await crossdockRoutes(host)).keys()].filter((dst) => h2Cidrs.includes(dst));
        if (left.length > 0) throw new Error(`${host} still routes ${left.join(', ')}`);
      }
      return true;
    });
    for (const host of ['h1', 'h3']) {
      const table = (await hostExec(host, ['ip', '-4', 'route', 'show'])).stdout;
      for (const cidr of h2Cidrs) expect(table).not.toContain(cidr);
    }
    expect((await hosts()).map((h) => h.name)).toEqual(['h1', 'h3']);
    expectBroken(await Promise.all([exchange(clients.get('h1')!, servers.get('h2')!), exchange(clients.get('h3')!, servers.get('h2')!)]));
    // the revoked executor removed what crossdock made on h2 and exited
    await waitFor("h2's revoked executor to exit", 30_000, POLL_MS, async () => (isAlive(oldExecutor) ? undefined : true));
    expect([...(await crossdockRoutes('h2')).keys()]).toEqual([]);

    // A host being decommissioned has its containers stopped; register it again, with a new token.
    for (const name of ['srv', 'cli', 'srv2', 'cli2']) await removeContainer('h2', name);
    const registered = await api<{ host: ApiHost; token: string }>('POST', '/v1/hosts', { name: 'h2', address: h2.address, interface: h2.interface });
    expect(registered.status).toBe(201);
    expect(registered.body.host.subnets).toHaveLength(1);
    await startExecutor(state, 'h2', { token: registered.body.token });
    const converged = await waitConverged();
    expect(converged.map((h) => h.name).sort()).toEqual([...HOSTS]);
    // only the network of its new registration is left on h2
    expect(await managedNetworks('h2')).toEqual(['crossdock']);

    await startCrossdockContainers('h2');
    expectWorking(await allHostPairs());
  }, 120_000);

  it('keeps traffic flowing without the controller, and after its restart has no duplicate rule or route', async () => {
    const before = await waitConverged();
    const routesBefore = await Promise.all(HOSTS.map((host) => crossdockRoutes(host)));
    await stopController(state);
    await expect(fetch(`${state.controller!.url}/healthz`, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
    expectWorking(await allHostPairs());
    // nothing was flushed because the controller went away
    expect(await Promise.all(HOSTS.map((host) => crossdockRoutes(host)))).toEqual(routesBefore);

    await restartController(state);
    const after = await waitConverged(90_000);
    expect(after.map((h) => [h.name, h.subnets.map((s) => s.cidr)])).toEqual(before.map((h) => [h.name, h.subnets.map((s) => s.cidr)]));

    // Reconnected for real, not merely seen once: a route deleted by hand on every host comes
    // back as promptly as before the restart, through a drift job of the new controller.
    const lastJob = new Map(await Promise.all(HOSTS.map(async (host) => [host, Math.max(0, ...(await jobsOf(host)).map((j) => j.id))] as const)));
    const deletedRoute = new Map<HostName, string>();
    for (const host of HOSTS) {
      const [dst] = [...(await crossdockRoutes(host)).keys()];
      await hostExec(host, ['ip', 'route', 'delete', dst!, 'proto', ROUTE_PROTOCOL]);
      deletedRoute.set(host, dst!);
    }
    await waitFor('every deleted route back, through a drift job', 2 * EXECUTOR_RECONCILE_INTERVAL_MS + 5_000, POLL_MS, async () => {
      for (const host of HOSTS) {
        if (!(await crossdockRoutes(host)).has(deletedRoute.get(host)!)) throw new Error(`${host} has no route to ${deletedRoute.get(host)} yet`);
        if (!(await jobsOf(host)).some((j) => j.id > lastJob.get(host)! && j.reason === 'drift')) throw new Error(`no drift job for ${host} yet`);
      }
      return true;
    }).catch((error: Error) => {
      throw new Error(`${error.message}\n${diagnostics()}`);
    });

    for (const host of after) {
      const saved = (await hostExec(host.name, ['iptables-save'])).stdout;
      const counts = new Map<string, number>();
      let table = '';
      for (const line of saved.split('\n')) {
        if (line.startsWith('*')) table = line;
        else if (line.startsWith('-A ') || line.startsWith(':')) {
          const key = `${table} ${line.startsWith(':') ? line.split(' ')[0] : line}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
      }
      const duplicates = [...counts].filter(([, n]) => n > 1).map(([line, n]) => `${n}x ${line}`);
      expect(duplicates, `${host.name}: iptables-save`).toEqual([]);
      expect(counts.get('*filter -A DOCKER-USER -j CROSSDOCK-FORWARD'), `${host.name}: the forward jump`).toBe(1);
      expect(counts.get('*nat -A POSTROUTING -j CROSSDOCK-POSTROUTING'), `${host.name}: the nat jump`).toBe(1);
      const rules = (table: string, chain: string) => [...counts.keys()].filter((key) => key.startsWith(`${table} -A ${chain} `)).length;
      // two for each subnet, and four accepting the three hosts (198.51.100.11/32 and .12/31, both ways)
      expect(rules('*filter', 'CROSSDOCK-FORWARD'), `${host.name}: CROSSDOCK-FORWARD rules`).toBe(2 * host.subnets.length + 4);
      expect(rules('*nat', 'CROSSDOCK-POSTROUTING'), `${host.name}: CROSSDOCK-POSTROUTING rules`).toBe(host.subnets.length);

      const lines = (await hostExec(host.name, ['ip', '-4', 'route', 'show', 'table', 'main'])).stdout.split('\n').filter(Boolean);
      expect(
        lines.filter((line, i) => lines.indexOf(line) !== i),
        `${host.name}: ip route`,
      ).toEqual([]);
      const destinations = lines.map((line) => line.split(' ')[0]);
      expect(
        destinations.filter((dst, i) => destinations.indexOf(dst) !== i),
        `${host.name}: destinations routed twice`,
      ).toEqual([]);
    }
    expectWorking(await allHostPairs());
  }, 150_000);
});
