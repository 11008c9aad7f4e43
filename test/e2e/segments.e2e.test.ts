// crossdock end to end across segments, on one lab of four hosts in two segments (test/lab,
// `up --hosts 4 --segments 2`): h1 and h2 on 198.51.100.0/24, h3 and h4 on 203.0.113.64/27, a
// router between them that forwards host traffic and knows no container subnet. Hosts in the
// same segment reach each other's containers by a direct route; hosts in different segments
// only through crossdock's VXLAN device (route, neighbour and forwarding-database entry per
// off-link peer). h1 and h3 are the Ubuntu case (FORWARD policy DROP), h2 and h4 CentOS.
//
// Every server runs `nc -ll -p 8080 -e netstat -tn`, which answers each connection with the
// peer address it saw: one exchange checks TCP and the source address at once. The tests run in
// order on the one lab; the last one deletes h4.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerAddress, down, execInContainer, hostExec, runContainer, up, type LabState } from '../lab/lab.ts';
import { isAlive } from '../lab/processes.ts';
import { WaitAborted, waitFor } from '../lab/run.ts';
import { hostPaths } from '../lab/state.ts';
import { missing } from '../support/requirements.ts';
import { readFileSync } from 'node:fs';

const HOSTS = ['h1', 'h2', 'h3', 'h4'] as const;
type HostName = (typeof HOSTS)[number];
const ROUTE_PROTOCOL = '252';
const HOST_INTERFACE = 'eth0';
const PORT = '8080';
const SERVER_CMD = ['nc', '-ll', '-p', PORT, '-e', 'netstat', '-tn'];
const TRANSFER_PORT = '9000';
const TRANSFER_BYTES = 1024 * 1024;
/** VXLAN's overhead on an IPv4 underlay: outer IP 20, UDP 8, VXLAN 8, inner Ethernet 14. */
const VXLAN_OVERHEAD_BYTES = 50;
const CONVERGE_TIMEOUT_MS = 120_000;
const REPAIR_TIMEOUT_MS = 60_000;
const TRANSFER_TIMEOUT_MS = 60_000;
const POLL_MS = 250;

interface ApiSubnet {
  id: number;
  cidr: string;
  network: string;
}

interface ApiPeer {
  host: string;
  reach?: 'direct' | 'vxlan' | 'unreachable' | 'mixed';
  applied?: boolean;
  reason?: string;
}

interface ApiHost {
  name: string;
  address: string;
  status: 'pending' | 'online' | 'offline';
  subnets: ApiSubnet[];
  generation: { desired: number; applied: number };
  peers?: ApiPeer[];
}

interface Route {
  dst: string;
  gateway?: string;
  dev: string;
  flags?: string[];
}

interface VxlanDevice {
  name: string;
  mtu: number;
  vni: number | null;
  port: number | null;
  learning: boolean | null;
}

/** How one host reaches a peer's subnet, as its kernel has it. */
interface Path {
  dev: string;
  gateway: string | null;
  /** over VXLAN: the neighbour entry of the gateway (static: PERMANENT), and the fdb entry of that MAC */
  mac: string | null;
  permanent: boolean;
  vtep: string | null;
}

interface Endpoint {
  host: HostName;
  name: string;
  address: string;
}

const reason = missing('root', 'netns', 'iptables', 'dockerd', 'busybox');

describe.skipIf(reason)('crossdock end to end on a lab of four hosts in two segments (needs root, netns, iptables, dockerd, busybox-static)', () => {
  let state: LabState;
  /** hosts still registered: the last test deletes h4 */
  let live: HostName[] = [...HOSTS];
  const servers = new Map<HostName, Endpoint>();
  const clients = new Map<HostName, Endpoint>();

  // ---- the lab and the controller ----

  const labHost = (name: string) => state.hosts.find((host) => host.name === name)!;
  const segmentOf = (name: string) => labHost(name).segment;
  const sameSegment = (a: string, b: string) => segmentOf(a) === segmentOf(b);

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

  async function hostDetail(name: string): Promise<ApiHost> {
    const response = await api<ApiHost>('GET', `/v1/hosts/${name}`);
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body;
  }

  function logTail(file: string, lines = 10): string {
    try {
      return readFileSync(file, 'utf8')
        .trimEnd()
        .split('\n')
        .filter((line) => !/"msg":"(incoming request|request completed)"/.test(line))
        .slice(-lines)
        .join('\n');
    } catch {
      return '(no log)';
    }
  }

  function diagnostics(): string {
    const parts = [`controller:\n${logTail(`${state.dir}/controller/controller.log`)}`];
    for (const host of state.hosts) parts.push(`${host.name} executor:\n${logTail(hostPaths(state.dir, host.name).executorLog)}`);
    return parts.join('\n');
  }

  /** Polls `check` (undefined: not yet) and adds the crossdock logs to a timeout's message. */
  async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
    try {
      return await waitFor(what, timeoutMs, POLL_MS, async () => {
        for (const host of state.hosts) {
          if (live.includes(host.name as HostName) && host.executorPid !== null && !isAlive(host.executorPid))
            throw new WaitAborted(`the executor of ${host.name} (pid ${host.executorPid}) exited`);
        }
        return check();
      });
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${diagnostics()}`);
    }
  }

  // ---- what the hosts have ----

  async function json<T>(host: string, argv: string[]): Promise<T[]> {
    const result = await hostExec(host, argv);
    return (result.stdout.trim() ? JSON.parse(result.stdout) : []) as T[];
  }

  /** crossdock's VXLAN device on a host (the one VXLAN link there), or null. */
  async function vxlanDevice(host: string): Promise<VxlanDevice | null> {
    const links = await json<{ ifname: string; mtu: number; linkinfo?: { info_data?: { id?: number; port?: number; learning?: boolean } } }>(host, [
      'ip',
      '-d',
      '-j',
      'link',
      'show',
      'type',
      'vxlan',
    ]);
    expect(links.length, `${host}: VXLAN links ${links.map((link) => link.ifname).join(', ')}`).toBeLessThanOrEqual(1);
    const [link] = links;
    if (!link) return null;
    const data = link.linkinfo?.info_data ?? {};
    return { name: link.ifname, mtu: link.mtu, vni: data.id ?? null, port: data.port ?? null, learning: data.learning ?? null };
  }

  async function interfaceMtu(host: string): Promise<number> {
    const [link] = await json<{ mtu: number }>(host, ['ip', '-j', 'link', 'show', HOST_INTERFACE]);
    return link!.mtu;
  }

  async function crossdockRoutes(host: string): Promise<Route[]> {
    return json<Route>(host, ['ip', '-4', '-j', 'route', 'show', 'table', 'main', 'proto', ROUTE_PROTOCOL]);
  }

  async function neighbours(host: string, dev: string): Promise<Array<{ dst: string; lladdr?: string; state?: string[] }>> {
    return json(host, ['ip', '-4', '-j', 'neigh', 'show', 'dev', dev]);
  }

  async function fdb(host: string, dev: string): Promise<Array<{ mac: string; dst?: string; state?: string; flags?: string[] }>> {
    return json(host, ['bridge', '-j', 'fdb', 'show', 'dev', dev]);
  }

  /** How `host` reaches `cidr`: the route, and over VXLAN the neighbour and fdb entries it relies on. */
  async function pathTo(host: string, cidr: string): Promise<Path | null> {
    const route = (await crossdockRoutes(host)).find((r) => r.dst === cidr);
    if (!route) return null;
    const path: Path = { dev: route.dev, gateway: route.gateway ?? null, mac: null, permanent: false, vtep: null };
    if (route.dev === HOST_INTERFACE) return path;
    const neighbour = (await neighbours(host, route.dev)).find((n) => n.dst === route.gateway);
    path.mac = neighbour?.lladdr ?? null;
    path.permanent = neighbour?.state?.includes('PERMANENT') ?? false;
    if (path.mac) path.vtep = (await fdb(host, route.dev)).find((entry) => entry.mac === path.mac)?.dst ?? null;
    return path;
  }

  /** The path each live host should have to each live peer's subnets: direct via the peer in its segment, else the VXLAN device to the peer's address. */
  async function pathProblems(registered: ApiHost[]): Promise<string[]> {
    const problems: string[] = [];
    await Promise.all(
      registered.map(async (host) => {
        const device = await vxlanDevice(host.name);
        const expected = new Set<string>();
        for (const peer of registered) {
          if (peer.name === host.name) continue;
          for (const subnet of peer.subnets) {
            expected.add(subnet.cidr);
            const path = await pathTo(host.name, subnet.cidr);
            const label = `${host.name} -> ${peer.name}'s ${subnet.cidr}`;
            if (!path) problems.push(`${label}: no route`);
            else if (sameSegment(host.name, peer.name)) {
              if (path.dev !== HOST_INTERFACE || path.gateway !== peer.address)
                problems.push(`${label}: via ${path.gateway} dev ${path.dev}, expected direct via ${peer.address} dev ${HOST_INTERFACE}`);
            } else if (!device || path.dev !== device.name) problems.push(`${label}: dev ${path.dev}, expected the VXLAN device ${device?.name ?? '(none)'}`);
            else if (!path.gateway || !path.mac || !path.permanent || path.vtep !== peer.address)
              problems.push(
                `${label}: gateway ${path.gateway}, neighbour ${path.mac} (${path.permanent ? 'permanent' : 'not permanent'}), fdb dst ${path.vtep}; expected all three, static, ending at ${peer.address}`,
              );
          }
        }
        const stray = (await crossdockRoutes(host.name)).filter((route) => !expected.has(route.dst));
        if (stray.length > 0) problems.push(`${host.name}: routes to ${stray.map((route) => route.dst).join(', ')}, which no peer has`);
      }),
    );
    return problems;
  }

  /** Every live host online, in sync, its peers reported as reached the right way and applied, and the kernel agreeing. */
  async function waitConverged(timeoutMs = CONVERGE_TIMEOUT_MS): Promise<ApiHost[]> {
    let last: string[] = [];
    try {
      return await eventually('every host online and converged across the segments', timeoutMs, async () => {
        const registered = await Promise.all(live.map(hostDetail));
        const problems: string[] = [];
        for (const host of registered) {
          if (host.status !== 'online') problems.push(`${host.name} is ${host.status}`);
          if (host.generation.applied !== host.generation.desired)
            problems.push(`${host.name} applied generation ${host.generation.applied} of ${host.generation.desired}`);
          for (const peer of registered.filter((p) => p.name !== host.name)) {
            const reported = host.peers?.find((p) => p.host === peer.name);
            const reach = sameSegment(host.name, peer.name) ? 'direct' : 'vxlan';
            if (reported?.reach !== reach || reported.applied !== true)
              problems.push(`${host.name} reports ${peer.name} as ${JSON.stringify(reported ?? null)}, expected reach ${reach}, applied`);
          }
        }
        problems.push(...(await pathProblems(registered)));
        last = problems;
        return problems.length === 0 ? registered : undefined;
      });
    } catch (error) {
      throw new Error(`${(error as Error).message}\nstill wrong:\n  ${last.join('\n  ')}`);
    }
  }

  // ---- traffic ----

  const label = (e: Endpoint) => `${e.host}/${e.name}(${e.address})`;

  async function ping(from: Endpoint, address: string): Promise<boolean> {
    return (await execInContainer(from.host, from.name, ['ping', '-c', '1', '-W', '2', address], { timeoutMs: 15_000 })).code === 0;
  }

  /** One TCP exchange with a server: null when no answer came, else the peer addresses its netstat listed for its port. */
  async function tcp(from: Endpoint, address: string): Promise<string[] | null> {
    const result = await execInContainer(from.host, from.name, ['nc', '-w', '3', address, PORT], { timeoutMs: 15_000 });
    if (result.code !== 0 || !result.stdout.includes('Active Internet connections')) return null;
    const peers: string[] = [];
    for (const line of result.stdout.split('\n')) {
      const match = /^tcp\s+\d+\s+\d+\s+(\S+)\s+(\S+)/.exec(line.trim());
      if (!match || !match[1]!.endsWith(`:${PORT}`)) continue;
      peers.push(match[2]!.replace(/^::ffff:/, '').replace(/:\d+$/, ''));
    }
    return peers;
  }

  async function startContainer(host: HostName, name: string, network: string, cmd?: string[]): Promise<Endpoint> {
    await runContainer(host, { name, network, cmd });
    return { host, name, address: await containerAddress(host, name, network) };
  }

  /** Sends TRANSFER_BYTES of random data from one container to another and returns what arrived and the sender's checksum. */
  async function transfer(from: Endpoint, to: Endpoint): Promise<{ sent: string; received: string; bytes: number }> {
    const file = `/tmp/transfer-from-${from.host}`;
    const exec = (e: Endpoint, argv: string[], timeoutMs = 15_000) => execInContainer(e.host, e.name, argv, { timeoutMs });
    await exec(from, ['sh', '-c', `head -c ${TRANSFER_BYTES} /dev/urandom > ${file}`]);
    const sent = (await exec(from, ['md5sum', file])).stdout.split(' ')[0]!;
    // busybox nc stops at its own stdin's end: with -e the socket is the program's stdin and stdout, and closes when it exits
    await exec(to, ['rm', '-f', file]);
    const server = exec(to, ['nc', '-l', '-p', TRANSFER_PORT, '-e', 'sh', '-c', `cat > ${file}`], TRANSFER_TIMEOUT_MS);
    await eventually(`${label(to)} listening on ${TRANSFER_PORT}`, 10_000, async () =>
      (await exec(to, ['netstat', '-tln'])).stdout.includes(`:${TRANSFER_PORT} `) ? true : undefined,
    );
    const client = await exec(from, ['nc', to.address, TRANSFER_PORT, '-e', 'cat', file], TRANSFER_TIMEOUT_MS);
    expect(client.code, `${label(from)} -> ${label(to)}: ${client.stderr}`).toBe(0);
    expect((await server).code).toBe(0);
    const received = (await exec(to, ['md5sum', file])).stdout.split(' ')[0]!;
    const bytes = Number((await exec(to, ['wc', '-c', file])).stdout.trim().split(/\s+/)[0]);
    return { sent, received, bytes };
  }

  beforeAll(async () => {
    state = await up({ hosts: HOSTS.length, segments: 2 });
    const converged = await waitConverged();
    await Promise.all(
      converged.map(async (host) => {
        const name = host.name as HostName;
        const network = host.subnets[0]!.network;
        servers.set(name, await startContainer(name, 'srv', network, SERVER_CMD));
        clients.set(name, await startContainer(name, 'cli', network));
      }),
    );
  }, 300_000);

  afterAll(async () => {
    await down().catch(() => {});
  });

  it('builds the lab as two segments: h1 and h2 on the LAN, h3 and h4 behind the router', () => {
    expect(state.hosts.map((host) => [host.name, host.segment, host.address])).toEqual([
      ['h1', 1, '198.51.100.11'],
      ['h2', 1, '198.51.100.12'],
      ['h3', 2, '203.0.113.65'],
      ['h4', 2, '203.0.113.66'],
    ]);
  });

  it('reaches same-segment peers by a direct route and the others through one VXLAN device with static entries', async () => {
    const registered = await waitConverged();
    expect(await pathProblems(registered)).toEqual([]);
    for (const host of HOSTS) {
      const device = await vxlanDevice(host);
      expect(device, `${host}: crossdock's VXLAN device`).not.toBeNull();
      expect(device!.name.length).toBeLessThanOrEqual(15);
      // static entries only: no learning, and no default (all-zero) fdb entry for flooding
      expect(device!.learning).toBe(false);
      const entries = await fdb(host, device!.name);
      expect(entries.filter((entry) => entry.mac === '00:00:00:00:00:00')).toEqual([]);
      // one fdb entry per off-link peer, to its address; none for the peer in the same segment
      const offLink = registered.filter((peer) => peer.name !== host && !sameSegment(host, peer.name)).map((peer) => peer.address);
      expect(
        entries
          .map((entry) => entry.dst)
          .filter(Boolean)
          .sort(),
      ).toEqual(offLink.sort());
      // every resolved neighbour was put there by crossdock (nothing is learned): permanent
      for (const neighbour of (await neighbours(host, device!.name)).filter((n) => n.lladdr))
        expect(neighbour.state, `${host}: ${JSON.stringify(neighbour)}`).toContain('PERMANENT');
    }
  });

  it('gives the containers an MTU that fits VXLAN on the hosts interface', async () => {
    for (const host of HOSTS) {
      const underlay = await interfaceMtu(host);
      const device = await vxlanDevice(host);
      expect(device!.mtu).toBeLessThanOrEqual(underlay - VXLAN_OVERHEAD_BYTES);
      const client = clients.get(host)!;
      const link = await execInContainer(host, client.name, ['cat', '/sys/class/net/eth0/mtu']);
      expect(Number(link.stdout.trim()), `${label(client)}: eth0 MTU`).toBe(underlay - VXLAN_OVERHEAD_BYTES);
    }
  });

  it('lets every container reach every other by ping and TCP, in both directions, seeing the sender container address', async () => {
    const pairs = HOSTS.flatMap((a) => HOSTS.filter((b) => b !== a).map((b) => [clients.get(a)!, servers.get(b)!] as const));
    const exchanges = await Promise.all(
      pairs.map(async ([from, to]) => ({ from: label(from), to: label(to), ping: await ping(from, to.address), peers: await tcp(from, to.address) })),
    );
    expect(exchanges.map((e) => ({ from: e.from, to: e.to, ping: e.ping, tcp: e.peers !== null }))).toEqual(
      exchanges.map((e) => ({ from: e.from, to: e.to, ping: true, tcp: true })),
    );
    for (const [i, [from]] of pairs.entries()) {
      expect(exchanges[i]!.peers, `${exchanges[i]!.from} -> ${exchanges[i]!.to}: the addresses the server saw`).toContain(from.address);
    }
  }, 120_000);

  it('carries 1 MB whole across the segments in both directions', async () => {
    for (const [a, b] of [
      ['h1', 'h3'],
      ['h3', 'h1'],
      ['h2', 'h4'],
      ['h4', 'h2'],
    ] as const) {
      const result = await transfer(clients.get(a)!, servers.get(b)!);
      expect(result.bytes, `${a} -> ${b}`).toBe(TRANSFER_BYTES);
      expect(result.received, `${a} -> ${b}`).toBe(result.sent);
    }
  }, 300_000);

  it('repairs a VXLAN route, neighbour and fdb entry deleted by hand', async () => {
    const registered = await waitConverged();
    const cidr = registered.find((host) => host.name === 'h3')!.subnets[0]!.cidr;
    const before = await pathTo('h1', cidr);
    expect(before).toMatchObject({ permanent: true, vtep: '203.0.113.65' });
    const { dev, gateway, mac, vtep } = before!;
    const newestJob = async () => {
      const jobs = await api<{ items: Array<{ id: number }> }>('GET', '/v1/jobs?host=h1&limit=1');
      return jobs.body.items[0]?.id ?? 0;
    };
    /** Deletes something by hand (the command fails if it was not there) and waits until crossdock put it back with a new job. */
    async function breakAndRepair(what: string, argv: string[]): Promise<void> {
      const job = await newestJob();
      await hostExec('h1', argv);
      await eventually(`h1's ${what} to h3 put back`, REPAIR_TIMEOUT_MS, async () => {
        const now = await pathTo('h1', cidr);
        const whole = now && now.dev === dev && now.gateway === gateway && now.mac === mac && now.permanent && now.vtep === vtep;
        return whole && (await newestJob()) > job ? true : undefined;
      });
    }

    await breakAndRepair('route', ['ip', 'route', 'del', cidr, 'proto', ROUTE_PROTOCOL]);
    await breakAndRepair('neighbour entry', ['ip', 'neigh', 'del', gateway!, 'dev', dev]);
    await breakAndRepair('fdb entry', ['bridge', 'fdb', 'del', mac!, 'dev', dev, 'dst', vtep!]);
    expect(await ping(clients.get('h1')!, servers.get('h3')!.address)).toBe(true);
  }, 240_000);

  it('removes a deleted host from every peer: routes, neighbours and fdb entries', async () => {
    const registered = await waitConverged();
    const h4 = registered.find((host) => host.name === 'h4')!;
    // what h4 is to h1 (over VXLAN) before it goes
    const gone = await pathTo('h1', h4.subnets[0]!.cidr);
    expect(gone?.vtep).toBe(h4.address);

    const response = await api('DELETE', '/v1/hosts/h4');
    expect(response.status).toBe(204);
    live = live.filter((host) => host !== 'h4');

    await eventually('h4 gone from every peer', REPAIR_TIMEOUT_MS, async () => {
      for (const host of live) {
        const routes = await crossdockRoutes(host);
        if (routes.some((route) => h4.subnets.some((subnet) => subnet.cidr === route.dst))) return undefined;
        const device = await vxlanDevice(host);
        if (device) {
          if ((await fdb(host, device.name)).some((entry) => entry.dst === h4.address || entry.mac === gone!.mac)) return undefined;
          if ((await neighbours(host, device.name)).some((entry) => entry.dst === gone!.gateway || entry.lladdr === gone!.mac)) return undefined;
        }
      }
      return true;
    });
    const remaining = await waitConverged();
    for (const host of remaining) expect(host.peers?.map((peer) => peer.host)).not.toContain('h4');
    // and the others still reach each other across the segments
    expect(await ping(clients.get('h1')!, servers.get('h3')!.address)).toBe(true);
    expect(await ping(clients.get('h3')!, servers.get('h2')!.address)).toBe(true);
  }, 180_000);
});
