// POST/DELETE /v1/agent/subnets: the subnets of networks Docker owns, asked for by a host's
// executor (its IPAM plugin) with the host's own token. Through app.inject on a real SQLite file.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp } from '../test-support.ts';

type TestApp = Awaited<ReturnType<typeof createTestApp>>;
let t: TestApp;
const tokens: Record<string, string> = {};

async function call(method: 'GET' | 'POST' | 'DELETE', url: string, payload: unknown, headers: Record<string, string>) {
  const res = await t.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
}
const asHost = (host: string, method: 'POST' | 'DELETE', url: string, payload?: unknown) =>
  call(method, url, payload, { authorization: `Bearer ${tokens[host]}` });
const asAdmin = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown) => call(method, url, payload, t.auth);

async function routesOf(host: string): Promise<string[]> {
  const plan = await asAdmin('GET', `/v1/hosts/${host}/plan`);
  expect(plan.status).toBe(200);
  return plan.body.commands.filter((c: { kind: string }) => c.kind === 'route.replace').map((c: { dst: string; via: string }) => `${c.dst} via ${c.via}`);
}

beforeEach(async () => {
  t = await createTestApp();
  for (const [name, address] of [
    ['h1', '198.51.100.11'],
    ['h2', '198.51.100.12'],
  ] as const) {
    const res = await asAdmin('POST', '/v1/hosts', { name, address, allocate: false });
    expect(res.status).toBe(201);
    tokens[name] = res.body.token;
  }
  expect((await asAdmin('POST', '/v1/pools', { name: 'apps', cidr: '10.7.0.0/16', subnetPrefixLength: 26 })).status).toBe(201);
});
afterEach(async () => {
  await t?.close();
});

describe('POST /v1/agent/subnets', () => {
  it('allocates from the default pool to the calling host, in mode docker, routed on the other hosts', async () => {
    const res = await asHost('h1', 'POST', '/v1/agent/subnets', {});
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      cidr: '10.100.0.0/24',
      gateway: '10.100.0.1',
      pool: 'default',
      host: 'h1',
      mode: 'docker',
      network: 'docker/10.100.0.0/24',
    });
    expect(await routesOf('h2')).toEqual(['10.100.0.0/24 via 198.51.100.11']);
    // crossdock never creates the network Docker owns: h1's plan has no docker command for it
    const plan = await asAdmin('GET', '/v1/hosts/h1/plan');
    expect(plan.body.commands.filter((c: { kind: string }) => c.kind.startsWith('docker.'))).toEqual([]);
    const second = await asHost('h2', 'POST', '/v1/agent/subnets', {});
    expect(second.body.cidr).toBe('10.100.1.0/24');
    expect(await routesOf('h1')).toEqual(['10.100.1.0/24 via 198.51.100.12']);
  });

  it('takes a pool and a prefix length, and an exact block inside a pool', async () => {
    expect((await asHost('h1', 'POST', '/v1/agent/subnets', { pool: 'apps' })).body).toMatchObject({ cidr: '10.7.0.0/26', pool: 'apps' });
    expect((await asHost('h1', 'POST', '/v1/agent/subnets', { pool: 'apps', prefixLength: 28 })).body).toMatchObject({ cidr: '10.7.0.64/28' });
    const exact = await asHost('h1', 'POST', '/v1/agent/subnets', { cidr: '10.7.9.0/24' });
    expect(exact.status).toBe(201);
    expect(exact.body).toMatchObject({ cidr: '10.7.9.0/24', pool: 'apps', gateway: '10.7.9.1' });
  });

  it('answers the same block asked again by its host with the same subnet; another host gets a conflict', async () => {
    const first = await asHost('h1', 'POST', '/v1/agent/subnets', { cidr: '10.100.5.0/24' });
    const again = await asHost('h1', 'POST', '/v1/agent/subnets', { cidr: '10.100.5.0/24' });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    const other = await asHost('h2', 'POST', '/v1/agent/subnets', { cidr: '10.100.5.0/24' });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('SUBNET_OVERLAP');
    expect(other.body.error.message).toContain('host "h1"');
  });

  it('refuses bad requests with a message saying what would be right, and changes nothing', async () => {
    const cases: Array<[unknown, number, string, string]> = [
      [{ cidr: '192.168.77.0/24' }, 400, 'SUBNET_OUTSIDE_POOL', 'not inside any pool'],
      [{ cidr: '10.100.0.5/24' }, 400, 'CIDR_HOST_BITS_SET', 'use 10.100.0.0/24'],
      [{ cidr: 'banana' }, 400, 'INVALID_CIDR', 'cidr'],
      [{ pool: 'nope' }, 404, 'POOL_NOT_FOUND', 'existing pools: default, apps'],
      [{ prefixLength: 8 }, 400, 'INVALID_PREFIX_LENGTH', ''],
      [{ host: 'h2' }, 400, 'VALIDATION_FAILED', 'host'],
    ];
    for (const [body, status, code, text] of cases) {
      const res = await asHost('h1', 'POST', '/v1/agent/subnets', body);
      expect({ body, status: res.status, code: res.body.error.code }).toEqual({ body, status, code });
      expect(res.body.error.message).toContain(text);
    }
    expect((await asAdmin('GET', '/v1/subnets')).body.items).toEqual([]);
  });

  it('needs a host token: none, a wrong one and the admin token are refused', async () => {
    expect((await call('POST', '/v1/agent/subnets', {}, {})).status).toBe(401);
    expect((await call('POST', '/v1/agent/subnets', {}, { authorization: 'Bearer cdh_wrong' })).status).toBe(401);
    expect((await call('POST', '/v1/agent/subnets', {}, t.auth)).status).toBe(401);
    expect((await asAdmin('GET', '/v1/subnets')).body.items).toEqual([]);
  });
});

describe('DELETE /v1/agent/subnets/:id', () => {
  it("releases the host's own Docker subnet, and the other hosts' routes to it go", async () => {
    const created = await asHost('h1', 'POST', '/v1/agent/subnets', {});
    expect(await routesOf('h2')).toHaveLength(1);
    expect((await asHost('h1', 'DELETE', `/v1/agent/subnets/${created.body.id}`)).status).toBe(204);
    expect(await routesOf('h2')).toEqual([]);
    expect((await asAdmin('GET', `/v1/subnets/${created.body.id}`)).status).toBe(404);
    // released: the block is free again
    expect((await asHost('h2', 'POST', '/v1/agent/subnets', {})).body.cidr).toBe(created.body.cidr);
  });

  it("refuses another host's subnet (not found to it) and a subnet an operator allocated (403)", async () => {
    const docker = await asHost('h1', 'POST', '/v1/agent/subnets', {});
    const other = await asHost('h2', 'DELETE', `/v1/agent/subnets/${docker.body.id}`);
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe('SUBNET_NOT_FOUND');
    const operator = await asAdmin('POST', '/v1/subnets', { host: 'h1', network: 'web' });
    const refused = await asHost('h1', 'DELETE', `/v1/agent/subnets/${operator.body.id}`);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'FORBIDDEN' });
    expect(refused.body.error.message).toContain(`DELETE /v1/subnets/${operator.body.id}`);
    expect((await asAdmin('GET', '/v1/subnets')).body.items).toHaveLength(2);
    expect((await asHost('h1', 'DELETE', '/v1/agent/subnets/9999')).status).toBe(404);
  });
});
