// `docker network create --ipam-driver crossdock`, end to end on the lab: two hosts, each with
// its own dockerd, which finds only its own executor's plugin socket (the lab binds the host's
// plugin directory over /run/docker/plugins in the engine's mount namespace). Networks are made
// with the plain docker CLI; crossdock gives them subnets from the pool and routes them.
// The tests run in order on one lab and build on each other.
import { containsCidr, mustParseCidr, overlaps } from '@crossdock/shared';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LAB_DEFAULT_POOL, restartController, startExecutor, stopController } from '../lab/crossdock.ts';
import { containerAddress, dockerIn, down, execInContainer, hostExec, removeContainer, runContainer, up, type LabState } from '../lab/lab.ts';
import { waitFor } from '../lab/run.ts';
import { hostPaths } from '../lab/state.ts';
import { readFileSync } from 'node:fs';
import { missing } from '../support/requirements.ts';

const ROUTE_PROTOCOL = '252';
const PORT = '8080';
const SERVER_CMD = ['nc', '-ll', '-p', PORT, '-e', 'netstat', '-tn'];
const CONVERGE_TIMEOUT_MS = 60_000;
const POLL_MS = 250;
/** "at once": the plugin's own controller timeout is 5 s; Docker adds its own round trips */
const UNREACHABLE_ANSWER_MAX_MS = 8_000;

interface ApiSubnet {
  id: number;
  cidr: string;
  gateway: string;
  network: string;
  mode: string;
  host: string;
  pool: string;
}

const reason = missing('root', 'netns', 'iptables', 'dockerd', 'busybox');

describe.skipIf(reason)('docker network create --ipam-driver crossdock on a two-host lab (needs root, netns, iptables, dockerd, busybox-static)', () => {
  let state: LabState;

  async function api<T>(method: string, route: string): Promise<{ status: number; body: T }> {
    const { url, adminToken } = state.controller!;
    const response = await fetch(`${url}${route}`, { method, headers: { authorization: `Bearer ${adminToken}` }, signal: AbortSignal.timeout(10_000) });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  }

  async function dockerSubnets(): Promise<ApiSubnet[]> {
    const response = await api<{ items: ApiSubnet[] }>('GET', '/v1/subnets');
    expect(response.status).toBe(200);
    return response.body.items.filter((s) => s.mode === 'docker');
  }

  async function crossdockRoutes(host: string): Promise<Map<string, string>> {
    const result = await hostExec(host, ['ip', '-4', '-json', 'route', 'show', 'table', 'main', 'proto', ROUTE_PROTOCOL]);
    const routes = (result.stdout.trim() ? JSON.parse(result.stdout) : []) as Array<{ dst: string; gateway?: string }>;
    return new Map(routes.map((route) => [route.dst, route.gateway ?? '']));
  }

  const addressOf = (host: string) => state.hosts.find((h) => h.name === host)!.address;

  async function waitForRoute(host: string, dst: string, via: string | null): Promise<void> {
    await waitFor(`${host} to ${via ? `route ${dst} via ${via}` : `drop its route to ${dst}`}`, CONVERGE_TIMEOUT_MS, POLL_MS, async () =>
      ((await crossdockRoutes(host)).get(dst) ?? null) === via ? true : undefined,
    );
  }

  async function networkCreate(host: string, args: string[]) {
    return dockerIn(host, ['network', 'create', '--ipam-driver', 'crossdock', ...args], { check: false, timeoutMs: 60_000 });
  }

  async function networkOf(host: string, name: string): Promise<{ subnet: string; gateway: string; ipamDriver: string; labels: Record<string, string> }> {
    const result = await dockerIn(host, ['network', 'inspect', '--format', '{{json .}}', name]);
    const n = JSON.parse(result.stdout) as {
      IPAM: { Driver: string; Config: Array<{ Subnet?: string; Gateway?: string }> };
      Labels: Record<string, string> | null;
    };
    return { subnet: n.IPAM.Config[0]?.Subnet ?? '', gateway: n.IPAM.Config[0]?.Gateway ?? '', ipamDriver: n.IPAM.Driver, labels: n.Labels ?? {} };
  }

  async function start(host: string, name: string, network: string, options: { server?: boolean; ip?: string } = {}): Promise<string> {
    await removeContainer(host, name);
    await runContainer(host, { name, network, ...(options.ip ? { ip: options.ip } : {}), ...(options.server ? { cmd: SERVER_CMD } : {}) });
    return containerAddress(host, name, network);
  }

  /** Ping, then one TCP exchange; returns the addresses the server saw for its port. */
  async function reach(host: string, container: string, address: string): Promise<{ ping: boolean; peers: string[] | null }> {
    const ping = (await execInContainer(host, container, ['ping', '-c', '1', '-W', '2', address], { timeoutMs: 15_000 })).code === 0;
    const result = await execInContainer(host, container, ['nc', '-w', '3', address, PORT], { timeoutMs: 15_000 });
    if (result.code !== 0 || !result.stdout.includes('Active Internet connections')) return { ping, peers: null };
    const peers: string[] = [];
    for (const line of result.stdout.split('\n')) {
      const match = /^tcp\s+\d+\s+\d+\s+(\S+)\s+(\S+)/.exec(line.trim());
      if (match && match[1]!.endsWith(`:${PORT}`)) peers.push(match[2]!.replace(/^::ffff:/, '').replace(/:\d+$/, ''));
    }
    return { ping, peers };
  }

  function executorLogTail(host: string, lines = 15): string {
    try {
      return readFileSync(hostPaths(state.dir, host).executorLog, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  beforeAll(async () => {
    try {
      state = await up({ hosts: 2 });
    } catch (error) {
      await down().catch(() => {});
      throw error;
    }
  }, 180_000);

  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      if (state) for (const host of state.hosts) console.error(`${host.name} executor:\n${executorLogTail(host.name)}`);
    });
  });

  afterAll(async () => {
    await down();
  }, 120_000);

  const created: Record<string, ApiSubnet> = {};

  it('networks made with the plain docker CLI on h1 and h2 get distinct subnets of the pool, routed on the other host', async () => {
    for (const host of ['h1', 'h2']) {
      const result = await networkCreate(host, ['backend']);
      expect(result.code, `${host}: ${result.stderr}`).toBe(0);
    }
    const pool = mustParseCidr(LAB_DEFAULT_POOL);
    const subnets = await dockerSubnets();
    for (const host of ['h1', 'h2']) {
      const network = await networkOf(host, 'backend');
      const subnet = subnets.find((s) => s.host === host);
      expect(subnet, `the controller records ${host}'s Docker subnet`).toBeDefined();
      expect(network).toEqual({ subnet: subnet!.cidr, gateway: subnet!.gateway, ipamDriver: 'crossdock', labels: {} });
      expect(containsCidr(pool, mustParseCidr(subnet!.cidr))).toBe(true);
      expect(subnet!.gateway).toBe(subnet!.cidr.replace(/0\/24$/, '1'));
      created[host] = subnet!;
    }
    expect(overlaps(mustParseCidr(created.h1!.cidr), mustParseCidr(created.h2!.cidr))).toBe(false);
    // and none of the hosts' own crossdock subnets
    for (const host of state.hosts) for (const s of host.subnets) expect(overlaps(mustParseCidr(s.cidr), mustParseCidr(created.h1!.cidr))).toBe(false);
    await waitForRoute('h2', created.h1!.cidr, addressOf('h1'));
    await waitForRoute('h1', created.h2!.cidr, addressOf('h2'));
  }, 120_000);

  it('containers on them reach each other by ping and TCP, with their own addresses', async () => {
    const [srv1, srv2] = await Promise.all([start('h1', 'srv', 'backend', { server: true }), start('h2', 'srv', 'backend', { server: true })]);
    const [cli1, cli2] = await Promise.all([start('h1', 'cli', 'backend'), start('h2', 'cli', 'backend')]);
    expect(containsCidr(mustParseCidr(created.h1!.cidr), mustParseCidr(`${srv1}/32`))).toBe(true);
    expect(new Set([srv1, cli1]).size).toBe(2);
    const there = await reach('h2', 'cli', srv1);
    const back = await reach('h1', 'cli', srv2);
    expect({ there: there.ping, back: back.ping }).toEqual({ there: true, back: true });
    expect(there.peers).toContain(cli2);
    expect(back.peers).toContain(cli1);
  }, 120_000);

  it('an explicit --subnet inside the pool, with --gateway and --ip, is honoured and routed', async () => {
    const result = await networkCreate('h2', ['--subnet', '10.100.200.0/24', '--gateway', '10.100.200.254', 'fixed']);
    expect(result.code, result.stderr).toBe(0);
    expect(await networkOf('h2', 'fixed')).toMatchObject({ subnet: '10.100.200.0/24', gateway: '10.100.200.254' });
    expect(await start('h2', 'pinned', 'fixed', { ip: '10.100.200.50', server: true })).toBe('10.100.200.50');
    expect((await dockerSubnets()).find((s) => s.cidr === '10.100.200.0/24')).toMatchObject({ host: 'h2', mode: 'docker' });
    await waitForRoute('h1', '10.100.200.0/24', addressOf('h2'));
    expect((await reach('h1', 'cli', '10.100.200.50')).ping).toBe(true);
  }, 120_000);

  it('an explicit --subnet outside every pool is refused with a clear message, and nothing is recorded', async () => {
    const result = await networkCreate('h1', ['--subnet', '192.168.77.0/24', 'outside']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('192.168.77.0/24 is not inside any pool');
    expect(result.stderr).toContain('request a CIDR inside a pool');
    expect((await dockerIn('h1', ['network', 'ls', '--format', '{{.Name}}'])).stdout.split('\n')).not.toContain('outside');
    expect((await dockerSubnets()).map((s) => s.cidr)).not.toContain('192.168.77.0/24');
  }, 60_000);

  it('an executor restart keeps addresses unique: a container started after it gets a new address', async () => {
    const before = await Promise.all(['srv', 'cli'].map((c) => containerAddress('h1', c, 'backend')));
    await startExecutor(state, 'h1');
    const after = await start('h1', 'late', 'backend');
    expect(before).not.toContain(after);
    expect(after).not.toBe(created.h1!.gateway);
    expect(containsCidr(mustParseCidr(created.h1!.cidr), mustParseCidr(`${after}/32`))).toBe(true);
  }, 120_000);

  it('with the controller down, a new network fails at once saying so; containers still get addresses', async () => {
    await stopController(state);
    try {
      const began = Date.now();
      const result = await networkCreate('h1', ['offline']);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/the crossdock controller at https:\/\/198\.51\.100\.1:7800 is unreachable/);
      expect(Date.now() - began).toBeLessThan(UNREACHABLE_ANSWER_MAX_MS);
      const address = await start('h1', 'offline-client', 'backend');
      const taken = await Promise.all(['srv', 'cli', 'late'].map((c) => containerAddress('h1', c, 'backend')));
      expect(taken).not.toContain(address);
    } finally {
      await restartController(state);
    }
  }, 120_000);

  it('docker network rm releases the subnet, and its routes go from the other host; crossdock never removed the network', async () => {
    // Docker's networks carry no crossdock label: every job since left them alone
    expect((await networkOf('h1', 'backend')).ipamDriver).toBe('crossdock');
    for (const c of ['srv', 'cli', 'late', 'offline-client']) await removeContainer('h1', c);
    const removed = await dockerIn('h1', ['network', 'rm', 'backend'], { check: false, timeoutMs: 60_000 });
    expect(removed.code, removed.stderr).toBe(0);
    await waitFor('the controller to release the subnet', CONVERGE_TIMEOUT_MS, POLL_MS, async () =>
      (await dockerSubnets()).some((s) => s.cidr === created.h1!.cidr) ? undefined : true,
    );
    await waitForRoute('h2', created.h1!.cidr, null);
    // h2's network is untouched, and still routed on h1
    expect((await crossdockRoutes('h1')).get(created.h2!.cidr)).toBe(addressOf('h2'));
    // the released block is handed out again
    const again = await networkCreate('h1', ['backend2']);
    expect(again.code, again.stderr).toBe(0);
    expect((await networkOf('h1', 'backend2')).subnet).toBe(created.h1!.cidr);
  }, 120_000);
});
