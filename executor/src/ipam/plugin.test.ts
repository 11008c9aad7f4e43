// The IPAM plugin's handlers, every endpoint and every refusal, against an in-memory state and a
// fake controller; then the unix socket server and the state file for real (no root needed).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../log.ts';
import {
  CONTROLLER_REQUEST_TIMEOUT_MS,
  ControllerRefused,
  ControllerUnreachable,
  httpSubnetClient,
  type AllocatedDockerSubnet,
  type SubnetClient,
  type SubnetRequestBody,
} from './controller-client.ts';
import { IpamPlugin, PLUGIN_CONTENT_TYPE } from './plugin.ts';
import { servePlugin } from './server.ts';
import { FileIpamStore, MemoryIpamStore, emptyIpamState } from './state.ts';

/** A controller handing out /24s of 10.100.0.0/16 in order, or failing as told. */
class FakeController implements SubnetClient {
  requests: SubnetRequestBody[] = [];
  released: number[] = [];
  failWith: Error | null = null;
  /** what the controller holds for this host: cidr -> subnet id (asked again, the same id) */
  held = new Map<string, number>();
  private next = 0;
  private ids = 100;
  async request(body: SubnetRequestBody): Promise<AllocatedDockerSubnet> {
    this.requests.push(body);
    if (this.failWith) throw this.failWith;
    const cidr = body.cidr ?? `10.100.${this.next++}.0/${body.prefixLength ?? 24}`;
    if (!this.held.has(cidr)) this.held.set(cidr, ++this.ids);
    return { id: this.held.get(cidr)!, cidr, gateway: cidr.replace(/0\/\d+$/, '1'), pool: body.pool ?? 'default' };
  }
  async release(id: number): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.released.push(id);
    for (const [cidr, held] of this.held) if (held === id) this.held.delete(cidr);
  }
}

let controller: FakeController;
let store: MemoryIpamStore;
let plugin: IpamPlugin;

async function started(initial = emptyIpamState()): Promise<IpamPlugin> {
  store = new MemoryIpamStore(initial);
  const p = new IpamPlugin({ store, controller, log: silentLogger });
  await p.start();
  return p;
}

beforeEach(async () => {
  controller = new FakeController();
  plugin = await started();
});
afterEach(async () => {
  await plugin.stop();
});

const call = (method: string, body: unknown = {}) => plugin.handle(method, body);
const requestPool = (body: Record<string, unknown> = {}) =>
  call('IpamDriver.RequestPool', { AddressSpace: 'crossdock', Pool: '', SubPool: '', Options: {}, V6: false, ...body });
const requestAddress = (PoolID: string, body: Record<string, unknown> = {}) => call('IpamDriver.RequestAddress', { PoolID, Address: '', Options: {}, ...body });
const gateway = (PoolID: string, Address = '') => requestAddress(PoolID, { Address, Options: { RequestAddressType: 'com.docker.network.gateway' } });
const err = async (reply: Promise<{ status: number; body: unknown }>) => {
  const r = await reply;
  expect(r.status).toBe(500);
  return (r.body as { Err: string }).Err;
};

describe('handshake', () => {
  it('Activate, GetCapabilities, GetDefaultAddressSpaces', async () => {
    expect(await call('Plugin.Activate')).toEqual({ status: 200, body: { Implements: ['IpamDriver'] } });
    expect(await call('IpamDriver.GetCapabilities')).toEqual({ status: 200, body: { RequiresMACAddress: false, RequiresRequestReplay: false } });
    expect(await call('IpamDriver.GetDefaultAddressSpaces')).toEqual({
      status: 200,
      body: { LocalDefaultAddressSpace: 'crossdock', GlobalDefaultAddressSpace: 'crossdock-global' },
    });
  });
  it('refuses a method outside the API, naming the ones it answers', async () => {
    expect(await err(call('NetworkDriver.CreateNetwork'))).toMatch(/not part of the IPAM driver API; crossdock answers Plugin.Activate/);
  });
});

describe('RequestPool / ReleasePool', () => {
  it('asks the controller for a subnet and records it', async () => {
    expect(await requestPool()).toEqual({ status: 200, body: { PoolID: '10.100.0.0/24', Pool: '10.100.0.0/24', Data: {} } });
    expect(controller.requests).toEqual([{}]);
    expect(store.saved?.pools).toEqual([{ id: '10.100.0.0/24', subnetId: 101, cidr: '10.100.0.0/24', subPool: null, refs: 1, addresses: [] }]);
  });

  it('passes --ipam-opt pool and prefix-length, and --subnet, to the controller', async () => {
    await requestPool({ Options: { pool: 'apps', 'prefix-length': '26' } });
    await requestPool({ Pool: '10.100.9.0/24' });
    expect(controller.requests).toEqual([{ pool: 'apps', prefixLength: 26 }, { cidr: '10.100.9.0/24' }]);
  });

  it('answers an identical --subnet request with the same pool, counted; the last release frees it at the controller', async () => {
    await requestPool({ Pool: '10.100.9.0/24' });
    expect((await requestPool({ Pool: '10.100.9.0/24' })).body).toMatchObject({ PoolID: '10.100.9.0/24' });
    // confirmed with the controller, which answers the same subnet
    expect(controller.requests).toEqual([{ cidr: '10.100.9.0/24' }, { cidr: '10.100.9.0/24' }]);
    expect(store.saved?.pools).toMatchObject([{ id: '10.100.9.0/24', subnetId: 101, refs: 2 }]);
    await call('IpamDriver.ReleasePool', { PoolID: '10.100.9.0/24' });
    expect(controller.released).toEqual([]);
    expect(await call('IpamDriver.ReleasePool', { PoolID: '10.100.9.0/24' })).toEqual({ status: 200, body: {} });
    expect(controller.released).toEqual([101]);
    expect(store.saved).toMatchObject({ pools: [], pendingReleases: [] });
  });

  it('fails at once, saying so, when the controller is unreachable; nothing is recorded', async () => {
    controller.failWith = new ControllerUnreachable('the crossdock controller at http://198.51.100.1:7800 is unreachable (ECONNREFUSED)');
    const message = await err(requestPool());
    expect(message).toContain('unreachable (ECONNREFUSED)');
    expect(message).toContain('networks that exist keep working');
    expect(plugin.snapshot().pools).toEqual([]);
  });

  it('a block held here but taken by another host meanwhile is refused; one released meanwhile is recorded anew', async () => {
    await requestPool({ Pool: '10.100.9.0/24' });
    await requestPool({ Pool: '10.100.8.0/24' });
    controller.failWith = new ControllerRefused('10.100.9.0/24 overlaps the allocated subnet 10.100.9.0/24 (host "h2", id 7)', 409, 'SUBNET_OVERLAP');
    expect(await err(requestPool({ Pool: '10.100.9.0/24' }))).toContain('host "h2"');
    controller.failWith = null;
    controller.held.delete('10.100.8.0/24'); // an operator released it
    await requestPool({ Pool: '10.100.8.0/24' });
    expect(plugin.snapshot().pools.map((p) => [p.id, p.subnetId, p.refs])).toEqual([
      ['10.100.9.0/24', 101, 1],
      ['10.100.8.0/24', 103, 2],
    ]);
  });

  it("passes on the controller's refusal", async () => {
    controller.failWith = new ControllerRefused(
      '192.168.5.0/24 is not inside any pool ("default" 10.100.0.0/16); request a CIDR inside a pool',
      400,
      'SUBNET_OUTSIDE_POOL',
    );
    expect(await err(requestPool({ Pool: '192.168.5.0/24' }))).toBe(
      'the crossdock controller refused the subnet: 192.168.5.0/24 is not inside any pool ("default" 10.100.0.0/16); request a CIDR inside a pool',
    );
  });

  it('keeps a release the controller did not hear of, asks again, and takes the subnet back if Docker asks for it first', async () => {
    await requestPool({ Pool: '10.100.9.0/24' });
    await requestPool({ Pool: '10.100.8.0/24' });
    controller.failWith = new ControllerUnreachable('unreachable');
    expect((await call('IpamDriver.ReleasePool', { PoolID: '10.100.9.0/24' })).status).toBe(200);
    expect((await call('IpamDriver.ReleasePool', { PoolID: '10.100.8.0/24' })).status).toBe(200);
    expect(store.saved?.pendingReleases).toEqual([
      { subnetId: 101, cidr: '10.100.9.0/24' },
      { subnetId: 102, cidr: '10.100.8.0/24' },
    ]);
    // asked again for 10.100.9.0/24 while the controller is away: still this host's
    expect((await requestPool({ Pool: '10.100.9.0/24' })).body).toMatchObject({ PoolID: '10.100.9.0/24' });
    expect(store.saved?.pools.map((p) => [p.id, p.subnetId])).toEqual([['10.100.9.0/24', 101]]);
    // a restarted plugin asks the controller for the one left pending
    controller.failWith = null;
    await plugin.stop();
    plugin = await started(store.saved!);
    await plugin.handle('Plugin.Activate', {});
    expect(controller.released).toEqual([102]);
    expect(store.saved?.pendingReleases).toEqual([]);
  });

  it.each([
    [{ V6: true }, 'IPv4 subnets only'],
    [{ Pool: 'fd00:1::/64' }, 'IPv4 subnets only'],
    [{ AddressSpace: 'crossdock-global' }, 'not swarm-scoped'],
    [{ AddressSpace: 'other' }, "is not crossdock's"],
    [{ SubPool: '10.100.9.0/25' }, '--ip-range 10.100.9.0/25 needs --subnet'],
    [{ Pool: '10.100.9.5/24' }, 'use 10.100.9.0/24'],
    [{ Pool: 'banana' }, 'not a CIDR block'],
    [{ Pool: '10.100.9.0/24', SubPool: '10.100.10.0/25' }, 'is not inside --subnet 10.100.9.0/24'],
    [{ Options: { 'prefix-length': 'x' } }, 'prefix-length=x is not a prefix length'],
    [{ Options: { pool: '' } }, 'needs a pool name'],
    [{ Options: { colour: 'red' } }, 'unknown --ipam-opt colour; crossdock takes pool=<pool name> and prefix-length=<bits>'],
    [{ Pool: '10.100.9.0/24', Options: { 'prefix-length': '26' } }, 'contradicts --subnet'],
    [{ Options: 'x' }, 'Options must be an object of strings'],
  ])('refuses %j', async (body, text) => {
    expect(await err(requestPool(body))).toContain(text);
    expect(controller.requests).toEqual([]);
    expect(store.saves).toBe(0);
  });

  it("lets Docker's own options (com.docker.*) through", async () => {
    expect((await requestPool({ Options: { 'com.docker.network.ipam.serial': 'true' } })).status).toBe(200);
  });

  it('refuses to release a pool it does not hold', async () => {
    expect(await err(call('IpamDriver.ReleasePool', { PoolID: '10.1.2.0/24' }))).toBe('crossdock holds no pool "10.1.2.0/24" on this host');
  });
});

describe('RequestAddress / ReleaseAddress', () => {
  let pool: string;
  beforeEach(async () => {
    pool = ((await requestPool()).body as { PoolID: string }).PoolID;
  });

  it('the gateway is the first host address; containers get the next free ones, and a released one again', async () => {
    expect((await gateway(pool)).body).toEqual({ Address: '10.100.0.1/24', Data: {} });
    expect((await requestAddress(pool)).body).toMatchObject({ Address: '10.100.0.2/24' });
    expect((await requestAddress(pool)).body).toMatchObject({ Address: '10.100.0.3/24' });
    expect(await call('IpamDriver.ReleaseAddress', { PoolID: pool, Address: '10.100.0.2' })).toEqual({ status: 200, body: {} });
    expect((await requestAddress(pool)).body).toMatchObject({ Address: '10.100.0.2/24' });
    expect(store.saved?.pools[0]?.addresses).toEqual(['10.100.0.1', '10.100.0.3', '10.100.0.2']);
  });

  it('honours --gateway and --ip, and never hands an address out twice', async () => {
    expect((await gateway(pool, '10.100.0.254')).body).toMatchObject({ Address: '10.100.0.254/24' });
    expect((await requestAddress(pool, { Address: '10.100.0.1' })).body).toMatchObject({ Address: '10.100.0.1/24' });
    expect((await requestAddress(pool)).body).toMatchObject({ Address: '10.100.0.2/24' });
    expect(await err(requestAddress(pool, { Address: '10.100.0.2' }))).toBe(
      '10.100.0.2 is already in use in 10.100.0.0/24; choose another address or leave --ip out',
    );
  });

  it('picks container addresses from --ip-range, the gateway from the whole subnet', async () => {
    const ranged = ((await requestPool({ Pool: '10.100.50.0/24', SubPool: '10.100.50.128/25' })).body as { PoolID: string }).PoolID;
    expect((await gateway(ranged)).body).toMatchObject({ Address: '10.100.50.1/24' });
    expect((await requestAddress(ranged)).body).toMatchObject({ Address: '10.100.50.129/24' });
  });

  it('keeps addresses across a restart: the next container gets a new one', async () => {
    await gateway(pool);
    await requestAddress(pool);
    await plugin.stop();
    plugin = await started(store.saved!);
    expect((await requestAddress(pool)).body).toMatchObject({ Address: '10.100.0.3/24' });
  });

  it('keeps working while the controller is away', async () => {
    controller.failWith = new ControllerUnreachable('unreachable');
    expect((await gateway(pool)).status).toBe(200);
    expect((await requestAddress(pool)).status).toBe(200);
  });

  it('says when the subnet is full', async () => {
    const small = ((await requestPool({ Pool: '10.100.60.0/30' })).body as { PoolID: string }).PoolID;
    await gateway(small);
    await requestAddress(small);
    expect(await err(requestAddress(small))).toBe(
      'no free address left in 10.100.60.0/30 (2 in use); remove a container from the network or use a larger subnet',
    );
  });

  it.each([
    [{ PoolID: '10.9.9.0/24' }, 'crossdock holds no pool "10.9.9.0/24" on this host (it holds 10.100.0.0/24)'],
    [{ Address: '10.100.1.7' }, '10.100.1.7 is not inside 10.100.0.0/24; use an address from 10.100.0.1 to 10.100.0.254'],
    [{ Address: '10.100.0.255' }, 'is the network or broadcast address of 10.100.0.0/24'],
    [{ Address: '10.100.0.0' }, 'is the network or broadcast address of 10.100.0.0/24'],
    [{ Address: 'fd00::5' }, 'IPv4 subnets only'],
    [{ Address: 'ten' }, 'ten is not an IPv4 address'],
    [{ Address: 7 }, 'Address must be a string'],
  ])('refuses %j', async (body, text) => {
    const saves = store.saves;
    expect(await err(requestAddress(pool, body))).toContain(text);
    expect(store.saves).toBe(saves);
  });

  it('refuses to release in a pool it does not hold, or something that is not an address', async () => {
    expect(await err(call('IpamDriver.ReleaseAddress', { PoolID: '10.9.9.0/24', Address: '10.9.9.2' }))).toContain('holds no pool "10.9.9.0/24"');
    expect(await err(call('IpamDriver.ReleaseAddress', { PoolID: pool, Address: '' }))).toBe('(none) is not an IPv4 address');
  });
});

describe('the socket and the state file, for real', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'crossdock-ipam-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function post(socket: string, method: string, body: unknown): Promise<{ status: number; type: string; body: unknown }> {
    return new Promise((resolve, reject) => {
      const request = http.request({ socketPath: socket, path: `/${method}`, method: 'POST', headers: { 'content-type': PLUGIN_CONTENT_TYPE } }, (response) => {
        let text = '';
        response.on('data', (d: Buffer) => (text += d.toString()));
        response.on('end', () => resolve({ status: response.statusCode!, type: String(response.headers['content-type']), body: JSON.parse(text) }));
      });
      request.on('error', reject);
      request.end(typeof body === 'string' ? body : JSON.stringify(body));
    });
  }

  it("answers over a unix socket in Docker's content type, with Docker's error shape; a second server leaves the first alone", async () => {
    const socket = path.join(dir, 'plugins', 'crossdock.sock');
    const server = await servePlugin(plugin, socket, silentLogger);
    try {
      expect(await post(socket, 'Plugin.Activate', '')).toEqual({ status: 200, type: PLUGIN_CONTENT_TYPE, body: { Implements: ['IpamDriver'] } });
      const pool = await post(socket, 'IpamDriver.RequestPool', { AddressSpace: 'crossdock', V6: true });
      expect(pool.status).toBe(500);
      expect((pool.body as { Err: string }).Err).toContain('IPv4 subnets only');
      expect((await post(socket, 'IpamDriver.RequestPool', '{not json')).body).toEqual({ Err: 'the request body is not JSON' });
      await expect(servePlugin(plugin, socket, silentLogger)).rejects.toThrow(/another process serves/);
    } finally {
      await server.close();
    }
    // the socket's own path left alone when it is something else
    writeFileSync(path.join(dir, 'not-a-socket.sock'), '');
    await expect(servePlugin(plugin, path.join(dir, 'not-a-socket.sock'), silentLogger)).rejects.toThrow(/is not a socket/);
  });

  it('a closed controller port is "unreachable" at once, not after a timeout', async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const started = Date.now();
    const failure = await httpSubnetClient(`http://127.0.0.1:${closed}`, 'cdh_x')
      .request({})
      .catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ControllerUnreachable);
    expect((failure as Error).message).toBe(`the crossdock controller at http://127.0.0.1:${closed} is unreachable (ECONNREFUSED)`);
    expect(Date.now() - started).toBeLessThan(CONTROLLER_REQUEST_TIMEOUT_MS);
  });

  it('the state file is replaced whole and read back; a damaged one is refused with what to do', async () => {
    const file = path.join(dir, 'state', 'ipam.json');
    const fileStore = new FileIpamStore(file);
    expect(await fileStore.load()).toEqual(emptyIpamState());
    const state = {
      ...emptyIpamState(),
      pools: [{ id: '10.100.0.0/24', subnetId: 1, cidr: '10.100.0.0/24', subPool: null, refs: 1, addresses: ['10.100.0.1'] }],
    };
    await fileStore.save(state);
    expect(await fileStore.load()).toEqual(state);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(state);
    writeFileSync(file, '{"version": 1, "pools": [');
    await expect(fileStore.load()).rejects.toThrow(/is not JSON .*move it aside/);
  });
});
