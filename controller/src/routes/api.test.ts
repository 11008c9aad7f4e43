// The operator REST API through app.inject, on real databases (every suite on a SQLite file and
// on PostgreSQL, describeEachStore): every endpoint's happy path
// with its exact shape, and every IPAM rule's refusal (status, code, a message that says what
// would be right, and nothing changed). Tests that change state get a fresh controller; the
// refusal tables share one controller holding a fixture, which every refusal leaves as it was.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { hashToken } from '../auth/tokens.ts';
import { createTestApp, describeEachStore, TEST_ADMIN_TOKEN } from '../test-support.ts';

type TestApp = Awaited<ReturnType<typeof createTestApp>>;
type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

let t: TestApp;

/** A fresh controller (default pool only) for every test of the enclosing describe. */
function freshAppPerTest(): void {
  beforeEach(async () => {
    t = await createTestApp();
  });
  afterEach(async () => {
    await t?.close();
  });
}

/**
 * One controller for the enclosing describe, holding:
 * - pool default 10.100.0.0/16 (/24); pool lab 10.1.0.0/16 (/24) reserving 10.1.0.0/24 and
 *   10.1.5.7/32; pool tiny 10.250.0.0/29 (/30), full;
 * - node-1 198.51.100.11 with 10.100.0.0/24 (network crossdock);
 * - node-2 198.51.100.12 with both /30s of tiny (networks a, in bip mode, and b).
 */
function sharedFixtureApp(): void {
  let shared: TestApp;
  beforeAll(async () => {
    shared = await createTestApp();
    t = shared;
    await registerHost('node-1', '198.51.100.11');
    await registerHost('node-2', '198.51.100.12', { allocate: false });
    await createPool({ name: 'lab', cidr: '10.1.0.0/16', reserved: ['10.1.0.0/24', '10.1.5.7/32'] });
    await createPool({ name: 'tiny', cidr: '10.250.0.0/29', subnetPrefixLength: 30 });
    await allocate({ host: 'node-2', pool: 'tiny', network: 'a', mode: 'bip' });
    await allocate({ host: 'node-2', pool: 'tiny', network: 'b' });
  });
  beforeEach(() => {
    t = shared;
  });
  afterAll(async () => {
    await shared?.close();
  });
}

interface Res {
  status: number;
  body: any;
  raw: string;
  headers: Record<string, unknown>;
}

async function call(method: Method, url: string, payload?: unknown, headers: Record<string, string> = t.auth): Promise<Res> {
  const res = await t.app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  let body: unknown;
  try {
    body = res.body ? JSON.parse(res.body) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.statusCode, body, raw: res.body, headers: res.headers };
}

/** Sends a raw body with the given content type. */
async function callRaw(method: Method, url: string, payload: string, contentType = 'application/json'): Promise<Res> {
  const res = await t.app.inject({ method, url, headers: { ...t.auth, 'content-type': contentType }, payload });
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    body = undefined;
  }
  return { status: res.statusCode, body, raw: res.body, headers: res.headers };
}

function expectError(res: Res, status: number, code: string, ...mentions: Array<string | RegExp>): void {
  expect(res.status, res.raw).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(Object.keys(res.body)).toEqual(['error']);
  expect(Object.keys(res.body.error).sort()).toEqual(['code', 'message']);
  expect(res.body.error.code, res.raw).toBe(code);
  expect(typeof res.body.error.message).toBe('string');
  expect(res.body.error.message.length).toBeGreaterThan(10);
  for (const m of mentions) {
    if (typeof m === 'string') expect(res.body.error.message).toContain(m);
    else expect(res.body.error.message).toMatch(m);
  }
}

/** Everything the API shows, to prove a refused request changed nothing. */
async function state() {
  // IPAM changes reach the reconciler as events; let it finish so host generations are settled
  await t.app.agents.reconciler.idle();
  const pools = (await call('GET', '/v1/pools')).body;
  const details = [];
  for (const p of pools.items) details.push((await call('GET', `/v1/pools/${p.name}`)).body);
  const hosts = (await call('GET', '/v1/hosts')).body;
  // The reconciler flushes generations to the host rows every few seconds, which moves Prisma's
  // @updatedAt without any operator change; everything else must stay as it was.
  for (const h of hosts.items) delete h.updatedAt;
  const subnets = (await call('GET', '/v1/subnets')).body;
  const tokens = await t.prisma.host.findMany({ select: { name: true, tokenHash: true }, orderBy: { id: 'asc' } });
  return { pools, details, hosts, subnets, tokens };
}

/** Makes a request that must be refused, and checks that it changed nothing. */
async function refused(request: () => Promise<Res>, status: number, code: string, ...mentions: Array<string | RegExp>): Promise<Res> {
  const before = await state();
  const res = await request();
  expectError(res, status, code, ...mentions);
  expect(await state()).toEqual(before);
  return res;
}

async function registerHost(name: string, address: string, extra: Record<string, unknown> = {}) {
  const res = await call('POST', '/v1/hosts', { name, address, ...extra });
  expect(res.status, res.raw).toBe(201);
  return res.body as { host: any; token: string };
}

async function createPool(body: Record<string, unknown>) {
  const res = await call('POST', '/v1/pools', body);
  expect(res.status, res.raw).toBe(201);
  return res.body;
}

async function allocate(body: Record<string, unknown>) {
  const res = await call('POST', '/v1/subnets', body);
  expect(res.status, res.raw).toBe(201);
  return res.body;
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const POOL_KEYS = ['allowFrom', 'cidr', 'createdAt', 'encapsulation', 'id', 'mtu', 'name', 'reserved', 'subnetPrefixLength'];
const SUBNET_KEYS = ['cidr', 'createdAt', 'gateway', 'host', 'id', 'mode', 'network', 'pool'];
const HOST_KEYS = ['address', 'createdAt', 'executor', 'generation', 'id', 'interface', 'labels', 'lastSeenAt', 'name', 'status', 'subnets', 'updatedAt'];

function expectSubnetShape(s: any, expected: Record<string, unknown>): void {
  expect(Object.keys(s).sort()).toEqual(SUBNET_KEYS);
  expect(Number.isInteger(s.id) && s.id > 0).toBe(true);
  expect(s.createdAt).toMatch(ISO);
  expect(s).toMatchObject(expected);
}

function expectHostShape(h: any, expected: Record<string, unknown>): void {
  expect(Object.keys(h).sort()).toEqual(HOST_KEYS);
  expect(Number.isInteger(h.id) && h.id > 0).toBe(true);
  expect(h.createdAt).toMatch(ISO);
  expect(h.updatedAt).toMatch(ISO);
  expect(Object.keys(h.generation).sort()).toEqual(['applied', 'desired']);
  expect(Number.isInteger(h.generation.desired) && Number.isInteger(h.generation.applied)).toBe(true);
  expect(h).toMatchObject(expected);
}

/** 128 random bits at least: enough base64url characters after the prefix, not a pattern. */
function expectRandomToken(token: string): void {
  const match = /^cdh_([A-Za-z0-9_-]+)$/.exec(token);
  expect(match, token).not.toBeNull();
  const secret = match![1]!;
  expect(secret.length * 6).toBeGreaterThanOrEqual(128);
  expect(new Set(secret).size).toBeGreaterThan(12);
  expect(token).not.toContain(TEST_ADMIN_TOKEN);
}

// -------------------------------------------------------------------------------------------

describeEachStore(() => {
  describe('unauthenticated surface', () => {
    sharedFixtureApp();

    it('GET /healthz answers without a token', async () => {
      const res = await call('GET', '/healthz', undefined, {});
      expect(res.status).toBe(200);
      // Without an election (SQLite) or with one controller alone, it leads; with no advertised URL it names none.
      expect(res.body).toEqual({ status: 'ok', role: 'leader', leader: null, storage: { status: 'ok' } });
    });

    it('/openapi.json lists every /v1 route with its methods, and each one exists', async () => {
      const res = await call('GET', '/openapi.json', undefined, {});
      expect(res.status).toBe(200);
      expect(res.body.openapi).toMatch(/^3\./);
      const paths: Record<string, Record<string, unknown>> = res.body.paths;
      const listed = new Set<string>();
      for (const [path, ops] of Object.entries(paths)) {
        for (const method of Object.keys(ops)) listed.add(`${method.toUpperCase()} ${path.replace(/(.)\/$/, '$1')}`);
      }
      const expected = [
        'POST /v1/pools',
        'GET /v1/pools',
        'GET /v1/pools/{name}',
        'GET /v1/pools/{name}/available',
        'PATCH /v1/pools/{name}',
        'DELETE /v1/pools/{name}',
        'POST /v1/hosts',
        'GET /v1/hosts',
        'GET /v1/hosts/{name}',
        'PATCH /v1/hosts/{name}',
        'DELETE /v1/hosts/{name}',
        'POST /v1/hosts/{name}/token',
        'GET /v1/hosts/{name}/plan',
        'POST /v1/subnets',
        'GET /v1/subnets',
        'GET /v1/subnets/{id}',
        'DELETE /v1/subnets/{id}',
        'GET /v1/jobs',
        'GET /v1/jobs/{id}',
        'GET /v1/events',
      ];
      for (const e of expected) expect([...listed], e).toContain(e);
      // and nothing is listed that the app does not serve
      for (const entry of listed) {
        const [method, path] = entry.split(' ') as [Method, string];
        const url = path.replace(/\{(\w+)\}/g, ':$1');
        expect(t.app.hasRoute({ method, url }) || t.app.hasRoute({ method, url: `${url}/` }), entry).toBe(true);
      }
      // every /v1 operation needs the bearer token (global security); health does not
      expect(res.body.security).toEqual([{ bearer: [] }]);
      expect(paths['/healthz']?.get).toMatchObject({ security: [] });
    });

    it('/docs answers 200', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/docs' });
      if (res.statusCode === 302) {
        const next = await t.app.inject({ method: 'GET', url: String(res.headers.location) });
        expect(next.statusCode).toBe(200);
      } else {
        expect(res.statusCode).toBe(200);
      }
      const index = await t.app.inject({ method: 'GET', url: '/docs/' });
      expect(index.statusCode).toBe(200);
      expect(index.headers['content-type']).toMatch(/text\/html/);
    });

    it.each([
      ['GET', '/nope'],
      ['GET', '/v1/nope'],
      ['POST', '/v1/pools/default/nope'],
      ['PUT', '/v1/pools'],
    ])('unknown route %s %s is a JSON 404', async (method, url) => {
      const res = await t.app.inject({ method: method as 'GET', url, headers: t.auth });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
      expect(res.json().error.message).toContain('/docs');
    });
  });

  describe('authentication', () => {
    sharedFixtureApp();

    const routes: Array<[Method, string, unknown?]> = [
      ['POST', '/v1/pools', { name: 'x', cidr: '10.9.0.0/16' }],
      ['GET', '/v1/pools'],
      ['GET', '/v1/pools/lab'],
      ['GET', '/v1/pools/lab/available'],
      ['PATCH', '/v1/pools/lab', { allowFrom: ['192.0.2.0/24'] }],
      ['DELETE', '/v1/pools/lab'],
      ['POST', '/v1/hosts', { name: 'node-9', address: '198.51.100.99' }],
      ['GET', '/v1/hosts'],
      ['GET', '/v1/hosts/node-1'],
      ['PATCH', '/v1/hosts/node-1', { address: '198.51.100.98' }],
      ['DELETE', '/v1/hosts/node-1'],
      ['POST', '/v1/hosts/node-1/token'],
      ['GET', '/v1/hosts/node-1/plan'],
      ['POST', '/v1/subnets', { host: 'node-1', network: 'extra' }],
      ['GET', '/v1/subnets'],
      ['GET', '/v1/subnets/1'],
      ['DELETE', '/v1/subnets/1'],
      ['GET', '/v1/jobs'],
      ['GET', '/v1/jobs/1'],
    ];

    const badHeaders: Array<[string, Record<string, string>, RegExp]> = [
      ['no header', {}, /Authorization: Bearer/],
      ['a wrong token', { authorization: 'Bearer cda_wrong-token-0000000000000000' }, /wrong/],
      ['the admin token with one character changed', { authorization: `Bearer ${TEST_ADMIN_TOKEN.slice(0, -1)}x` }, /wrong/],
      ['the admin token with a suffix', { authorization: `Bearer ${TEST_ADMIN_TOKEN}x` }, /wrong/],
      ['an empty bearer', { authorization: 'Bearer ' }, /Authorization: Bearer/],
      ['basic auth', { authorization: `Basic ${Buffer.from(`admin:${TEST_ADMIN_TOKEN}`).toString('base64')}` }, /Authorization: Bearer/],
      ['the token without the scheme', { authorization: TEST_ADMIN_TOKEN }, /Authorization: Bearer/],
    ];

    it('every /v1 route refuses a missing or wrong token (or a host token) with 401 and changes nothing', async () => {
      const rotated = await call('POST', '/v1/hosts/node-2/token');
      const hostToken = rotated.body.token as string;
      const headers = [...badHeaders, ['a host token', { authorization: `Bearer ${hostToken}` }, /wrong/] as (typeof badHeaders)[number]];
      const before = await state();
      for (const [method, url, payload] of routes) {
        for (const [why, header, message] of headers) {
          const res = await call(method, url, payload, header);
          expect(res.status, `${method} ${url} with ${why}`).toBe(401);
          expect(res.body.error.code).toBe('UNAUTHORIZED');
          expect(res.body.error.message).toMatch(message);
        }
      }
      expect(await state()).toEqual(before);
    });

    it('the agent routes refuse a missing or wrong host token, and the admin token, with 401', async () => {
      const agentRoutes: Array<[Method, string, unknown?]> = [
        ['GET', '/v1/agent/jobs'],
        ['POST', '/v1/agent/state', {}],
        ['POST', '/v1/agent/jobs/1/result', {}],
      ];
      for (const [method, url, payload] of agentRoutes) {
        for (const header of [{}, { authorization: 'Bearer cdh_wrong' }, t.auth]) {
          const res = await call(method, url, payload, header);
          expect(res.status, `${method} ${url} ${JSON.stringify(header)}`).toBe(401);
          expect(res.body.error.code).toBe('UNAUTHORIZED');
          expect(res.body.error.message).toMatch(/host token/);
        }
      }
    });

    it('the token is checked before the body is parsed', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/v1/pools', headers: { 'content-type': 'application/json' }, payload: '{not json' });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('UNAUTHORIZED');
    });

    it('the scheme is case-insensitive', async () => {
      const res = await call('GET', '/v1/pools', undefined, { authorization: `bearer ${TEST_ADMIN_TOKEN}` });
      expect(res.status).toBe(200);
    });
  });

  // -------------------------------------------------------------------------------------------

  /** allowFrom lists refused on create and on PATCH alike. */
  const ALLOW_FROM_REFUSALS: Array<[string, unknown, number, string, ...Array<string | RegExp>]> = [
    ['host bits set', ['192.0.2.1/24'], 400, 'CIDR_HOST_BITS_SET', 'allowFrom[0]', '192.0.2.0/24'],
    ['unparsable', ['192.0.2.0/24', 'lb.example'], 400, 'INVALID_CIDR', 'allowFrom[1]'],
    ['an address without a prefix', ['192.0.2.7'], 400, 'INVALID_CIDR', 'allowFrom[0]', '/24'],
    ['prefix out of range', ['192.0.2.0/33'], 400, 'INVALID_CIDR', '0 to 32'],
    ['every address (/0)', ['0.0.0.0/0'], 400, 'INVALID_PREFIX_LENGTH', 'allowFrom[0]', 'every address', '192.0.2.0/24'],
    ['a network twice', ['192.0.2.0/24', '192.0.2.0/24'], 400, 'VALIDATION_FAILED', 'allowFrom[1]', 'repeats', 'allowFrom[0]'],
    [
      'a network inside another',
      ['192.0.2.128/25', '192.0.2.0/24'],
      400,
      'VALIDATION_FAILED',
      'allowFrom[0] 192.0.2.128/25 is inside allowFrom[1] 192.0.2.0/24',
    ],
    ['more than 64 networks', Array.from({ length: 65 }, (_, i) => `192.0.${i}.0/24`), 400, 'VALIDATION_FAILED', 'allowFrom', '64'],
    ['not a list', '192.0.2.0/24', 400, 'VALIDATION_FAILED', 'allowFrom'],
    ['holding a number', [3232235520], 400, 'VALIDATION_FAILED', 'allowFrom'],
  ];

  describe('pools', () => {
    describe('happy paths', () => {
      freshAppPerTest();

      it('the default pool exists on a fresh controller', async () => {
        const res = await call('GET', '/v1/pools');
        expect(res.status).toBe(200);
        expect(Object.keys(res.body)).toEqual(['items']);
        expect(res.body.items).toHaveLength(1);
        expect(res.body.items[0]).toMatchObject({ name: 'default', cidr: '10.100.0.0/16', subnetPrefixLength: 24, reserved: [], allowFrom: [] });
        expect((await call('GET', '/v1/pools/default')).body.utilization).toEqual({ total: 256, allocated: 0, free: 256, reserved: 0 });
      });

      it('create, list, get with utilization, available, delete', async () => {
        const created = await call('POST', '/v1/pools', {
          name: 'lab',
          cidr: '10.1.0.0/16',
          subnetPrefixLength: 26,
          reserved: ['10.1.0.0/24', '10.1.3.128/25'],
        });
        expect(created.status).toBe(201);
        expect(Object.keys(created.body).sort()).toEqual(POOL_KEYS);
        expect(created.body).toMatchObject({ name: 'lab', cidr: '10.1.0.0/16', subnetPrefixLength: 26, reserved: ['10.1.0.0/24', '10.1.3.128/25'] });
        expect(created.body.createdAt).toMatch(ISO);

        const defaulted = await createPool({ name: 'plain', cidr: '10.2.0.0/16' });
        expect(defaulted).toMatchObject({ subnetPrefixLength: 24, reserved: [], allowFrom: [] });

        const list = await call('GET', '/v1/pools');
        expect(list.body.items.map((p: any) => p.name)).toEqual(['default', 'lab', 'plain']);
        expect(list.body.items[1]).toEqual(created.body);
        for (const p of list.body.items) expect(Object.keys(p).sort()).toEqual(POOL_KEYS);

        const got = await call('GET', '/v1/pools/lab');
        expect(got.status).toBe(200);
        expect(Object.keys(got.body).sort()).toEqual([...POOL_KEYS, 'utilization'].sort());
        expect(Object.keys(got.body.utilization).sort()).toEqual(['allocated', 'free', 'reserved', 'total']);
        // a /16 holds 1024 /26; 10.1.0.0/24 covers 4 of them and 10.1.3.128/25 two
        expect(got.body.utilization).toEqual({ total: 1024, allocated: 0, free: 1018, reserved: 6 });

        const available = await call('GET', '/v1/pools/lab/available?limit=3');
        expect(available.status).toBe(200);
        expect(available.body).toEqual({ pool: 'lab', prefixLength: 26, items: ['10.1.1.0/26', '10.1.1.64/26', '10.1.1.128/26'] });
        const wide = await call('GET', '/v1/pools/lab/available?prefixLength=23&limit=2');
        expect(wide.body).toEqual({ pool: 'lab', prefixLength: 23, items: ['10.1.4.0/23', '10.1.6.0/23'] });
        expect((await call('GET', '/v1/pools/lab/available')).body.items).toHaveLength(10);

        // previewing reserved nothing: the first registration gets the first block shown
        await registerHost('node-1', '198.51.100.11', { pool: 'lab' });
        expect((await call('GET', '/v1/hosts/node-1')).body.subnets[0].cidr).toBe('10.1.1.0/26');
        expect((await call('GET', '/v1/pools/lab')).body.utilization).toEqual({ total: 1024, allocated: 1, free: 1017, reserved: 6 });
        expect((await call('GET', '/v1/pools/lab/available?limit=1')).body.items).toEqual(['10.1.1.64/26']);

        const deleted = await call('DELETE', '/v1/pools/plain');
        expect(deleted.status).toBe(204);
        expect(deleted.raw).toBe('');
        expectError(await call('GET', '/v1/pools/plain'), 404, 'POOL_NOT_FOUND', 'plain');
        expectError(await call('DELETE', '/v1/pools/plain'), 404, 'POOL_NOT_FOUND', 'plain');
        expect((await call('GET', '/v1/pools')).body.items.map((p: any) => p.name)).toEqual(['default', 'lab']);
        // its range is free for a new pool
        await createPool({ name: 'plain-again', cidr: '10.2.0.0/16' });
      });

      it('utilization counts subnets of other sizes by the pool-sized blocks they touch', async () => {
        await registerHost('node-1', '198.51.100.11', { allocate: false });
        await allocate({ host: 'node-1', prefixLength: 26, network: 'a' });
        await allocate({ host: 'node-1', prefixLength: 22, network: 'b' });
        // 10.100.0.0/26 touches one /24, 10.100.4.0/22 four
        expect((await call('GET', '/v1/pools/default')).body.utilization).toEqual({ total: 256, allocated: 5, free: 251, reserved: 0 });
      });

      it('allowFrom: given at creation, reported in every view, replaced by PATCH without touching anything else', async () => {
        const created = await createPool({ name: 'lab', cidr: '10.1.0.0/16', reserved: ['10.1.0.0/24'], allowFrom: ['192.0.2.0/24', '203.0.113.7/32'] });
        expect(created.allowFrom).toEqual(['192.0.2.0/24', '203.0.113.7/32']);
        expect((await call('GET', '/v1/pools/lab')).body.allowFrom).toEqual(['192.0.2.0/24', '203.0.113.7/32']);
        expect((await call('GET', '/v1/pools')).body.items.map((p: any) => [p.name, p.allowFrom])).toEqual([
          ['default', []],
          ['lab', ['192.0.2.0/24', '203.0.113.7/32']],
        ]);
        const { host } = await registerHost('node-1', '198.51.100.11', { pool: 'lab' });

        const patched = await call('PATCH', '/v1/pools/lab', { allowFrom: ['198.51.100.0/24'] });
        expect(patched.status).toBe(200);
        expect(patched.body).toEqual({ ...created, allowFrom: ['198.51.100.0/24'] });
        expect((await call('GET', '/v1/pools/lab')).body).toMatchObject({
          allowFrom: ['198.51.100.0/24'],
          reserved: ['10.1.0.0/24'],
          utilization: { allocated: 1 },
        });
        expect((await call('GET', '/v1/hosts/node-1')).body.subnets).toEqual(host.subnets);
        const emptied = await call('PATCH', '/v1/pools/lab', { allowFrom: [] });
        expect(emptied.body.allowFrom).toEqual([]);
        // and the change is durable
        const row = await t.prisma.pool.findUnique({ where: { name: 'lab' } });
        expect(row!.allowFrom).toBe('[]');
      });

      it('encapsulation and mtu: crossSubnet and null by default, given at creation, changed by PATCH alone, durable', async () => {
        expect((await call('GET', '/v1/pools/default')).body).toMatchObject({ encapsulation: 'crossSubnet', mtu: null });
        const created = await createPool({ name: 'lab', cidr: '10.1.0.0/16', encapsulation: 'never', mtu: 1400 });
        expect(created).toMatchObject({ encapsulation: 'never', mtu: 1400, allowFrom: [] });
        const patched = await call('PATCH', '/v1/pools/lab', { encapsulation: 'always' });
        expect(patched.body).toEqual({ ...created, encapsulation: 'always' });
        const cleared = await call('PATCH', '/v1/pools/lab', { mtu: null });
        expect(cleared.body).toEqual({ ...created, encapsulation: 'always', mtu: null });
        const row = await t.prisma.pool.findUnique({ where: { name: 'lab' } });
        expect([row!.encapsulation, row!.mtu]).toEqual(['always', null]);
      });

      it.each<[string, Record<string, unknown>, ...string[]]>([
        ['an unknown mode', { encapsulation: 'sometimes' }, 'encapsulation "sometimes" is not a mode', '"crossSubnet"'],
        ['a mode in the wrong case', { encapsulation: 'crosssubnet' }, 'not a mode', '"never"', '"always"'],
        ['an MTU below 576', { mtu: 100 }, 'mtu 100 is out of range', '576', '1450'],
        ['an MTU above 65535', { mtu: 70000 }, 'out of range'],
        ['nothing to change', {}, 'nothing to change', 'encapsulation'],
      ])('PATCH refuses %s with a message naming what is right, and changes nothing', async (_name, body, ...fragments) => {
        await createPool({ name: 'lab', cidr: '10.1.0.0/16' });
        await refused(() => call('PATCH', '/v1/pools/lab', body), 400, 'VALIDATION_FAILED', ...fragments);
        expect((await call('GET', '/v1/pools/lab')).body).toMatchObject({ encapsulation: 'crossSubnet', mtu: null });
      });

      it('create refuses an unknown encapsulation and creates nothing', async () => {
        await refused(() => call('POST', '/v1/pools', { name: 'lab', cidr: '10.1.0.0/16', encapsulation: 'vxlan' }), 400, 'VALIDATION_FAILED', 'not a mode');
        expect((await call('GET', '/v1/pools/lab')).status).toBe(404);
      });

      it('a pool holding subnets cannot be deleted (POOL_IN_USE), and can once they are released', async () => {
        await createPool({ name: 'lab', cidr: '10.1.0.0/16' });
        const { host } = await registerHost('node-1', '198.51.100.11', { pool: 'lab' });
        await refused(() => call('DELETE', '/v1/pools/lab'), 409, 'POOL_IN_USE', 'lab', 'GET /v1/subnets?pool=lab');
        expect((await call('DELETE', `/v1/subnets/${host.subnets[0].id}`)).status).toBe(204);
        expect((await call('DELETE', '/v1/pools/lab')).status).toBe(204);
      });
    });

    describe('refusals', () => {
      sharedFixtureApp();

      it.each<[string, Record<string, unknown>, number, string, ...Array<string | RegExp>]>([
        ['host bits set', { name: 'x', cidr: '10.20.0.5/16' }, 400, 'CIDR_HOST_BITS_SET', '10.20.0.0/16'],
        ['host bits set (the issue example)', { name: 'x', cidr: '10.1.0.5/16' }, 400, 'CIDR_HOST_BITS_SET', '10.1.0.0/16'],
        ['unparsable address', { name: 'x', cidr: '10.20.0/16' }, 400, 'INVALID_CIDR', /10\.1\.0\.0/],
        ['not a CIDR at all', { name: 'x', cidr: 'banana' }, 400, 'INVALID_CIDR', 'address/prefix'],
        ['no prefix', { name: 'x', cidr: '10.20.0.0' }, 400, 'INVALID_CIDR', '/24'],
        ['octet out of range', { name: 'x', cidr: '10.20.300.0/24' }, 400, 'INVALID_CIDR'],
        ['prefix /33', { name: 'x', cidr: '10.20.0.0/33' }, 400, 'INVALID_CIDR', '0 to 32'],
        ['prefix /-1', { name: 'x', cidr: '10.20.0.0/-1' }, 400, 'INVALID_CIDR', '0 to 32'],
        ['subnet length shorter than the pool', { name: 'x', cidr: '10.20.0.0/16', subnetPrefixLength: 8 }, 400, 'INVALID_PREFIX_LENGTH', '16 to 30'],
        ['subnet length /31', { name: 'x', cidr: '10.20.0.0/16', subnetPrefixLength: 31 }, 400, 'INVALID_PREFIX_LENGTH', '16 to 30'],
        ['subnet length negative', { name: 'x', cidr: '10.20.0.0/16', subnetPrefixLength: -24 }, 400, 'INVALID_PREFIX_LENGTH'],
        ['a pool too small for any subnet', { name: 'x', cidr: '10.20.0.0/31', subnetPrefixLength: 31 }, 400, 'INVALID_PREFIX_LENGTH'],
        [
          'a reserved range with host bits',
          { name: 'x', cidr: '10.20.0.0/16', reserved: ['10.20.0.1/24'] },
          400,
          'CIDR_HOST_BITS_SET',
          'reserved[0]',
          '10.20.0.0/24',
        ],
        ['an unparsable reserved range', { name: 'x', cidr: '10.20.0.0/16', reserved: ['10.20.0.0/24', 'x'] }, 400, 'INVALID_CIDR', 'reserved[1]'],
        [
          'a reserved range outside the pool',
          { name: 'x', cidr: '10.20.0.0/16', reserved: ['10.21.0.0/24'] },
          400,
          'RESERVED_OUTSIDE_POOL',
          '10.21.0.0/24',
          '10.20.0.0/16',
        ],
        [
          'reserved ranges overlapping each other',
          { name: 'x', cidr: '10.20.0.0/16', reserved: ['10.20.0.0/20', '10.20.2.0/24'] },
          400,
          'VALIDATION_FAILED',
          '10.20.2.0/24',
        ],
        ['a pool inside a pool', { name: 'x', cidr: '10.100.7.0/24' }, 409, 'POOL_OVERLAP', '"default"', '10.100.0.0/16'],
        ['a pool around pools', { name: 'x', cidr: '10.0.0.0/8' }, 409, 'POOL_OVERLAP'],
        ['a pool equal to a pool', { name: 'x', cidr: '10.1.0.0/16' }, 409, 'POOL_OVERLAP', '"lab"'],
        ['a name taken', { name: 'lab', cidr: '10.20.0.0/16' }, 409, 'POOL_EXISTS', 'lab'],
        ['a name that is not a DNS label', { name: 'My_Pool', cidr: '10.20.0.0/16' }, 400, 'INVALID_NAME', 'DNS label'],
        ['an empty name', { name: '', cidr: '10.20.0.0/16' }, 400, 'INVALID_NAME'],
        ['a missing cidr', { name: 'x' }, 400, 'VALIDATION_FAILED', 'cidr'],
        ['a missing name', { cidr: '10.20.0.0/16' }, 400, 'VALIDATION_FAILED', 'name'],
        ['an unknown field', { name: 'x', cidr: '10.20.0.0/16', prefix: 24 }, 400, 'VALIDATION_FAILED', '"prefix"'],
        ['subnetPrefixLength as a string', { name: 'x', cidr: '10.20.0.0/16', subnetPrefixLength: '24' }, 400, 'VALIDATION_FAILED', 'subnetPrefixLength'],
        ['subnetPrefixLength fractional', { name: 'x', cidr: '10.20.0.0/16', subnetPrefixLength: 24.5 }, 400, 'VALIDATION_FAILED', 'subnetPrefixLength'],
        ['cidr as a number', { name: 'x', cidr: 167837696 }, 400, 'VALIDATION_FAILED', 'cidr'],
        ['cidr null', { name: 'x', cidr: null }, 400, 'VALIDATION_FAILED', 'cidr'],
        ['reserved not a list', { name: 'x', cidr: '10.20.0.0/16', reserved: '10.20.0.0/24' }, 400, 'VALIDATION_FAILED', 'reserved'],
        ['reserved holding a number', { name: 'x', cidr: '10.20.0.0/16', reserved: [1] }, 400, 'VALIDATION_FAILED', 'reserved'],
        ['the loopback range', { name: 'x', cidr: '127.0.0.0/8' }, 400, 'POOL_RANGE_NOT_ALLOWED', '127.0.0.0/8', 'loopback', 'private range'],
        [
          'a block of the loopback range',
          { name: 'x', cidr: '127.0.0.0/24' },
          400,
          'POOL_RANGE_NOT_ALLOWED',
          '127.0.0.0/24 overlaps 127.0.0.0/8, the loopback range',
        ],
        ['the multicast range', { name: 'x', cidr: '224.0.0.0/4' }, 400, 'POOL_RANGE_NOT_ALLOWED', 'multicast'],
        ['the reserved range', { name: 'x', cidr: '240.0.0.0/4' }, 400, 'POOL_RANGE_NOT_ALLOWED', 'reserved range', 'broadcast'],
        ['the "this network" range', { name: 'x', cidr: '0.0.0.0/8' }, 400, 'POOL_RANGE_NOT_ALLOWED', '"this network"'],
        ['everything', { name: 'x', cidr: '0.0.0.0/0' }, 400, 'POOL_RANGE_NOT_ALLOWED', '0.0.0.0/8'],
        ['the link-local range', { name: 'x', cidr: '169.254.0.0/16' }, 400, 'POOL_RANGE_NOT_ALLOWED', 'link-local'],
        ['a range around the link-local range', { name: 'x', cidr: '169.0.0.0/8' }, 400, 'POOL_RANGE_NOT_ALLOWED', '169.254.0.0/16'],
        ['a range holding a host address', { name: 'x', cidr: '198.51.100.0/24' }, 409, 'ADDRESS_IN_POOL', '198.51.100.11', '"node-1"'],
        ...ALLOW_FROM_REFUSALS.map(
          ([why, allowFrom, status, code, ...mentions]): [string, Record<string, unknown>, number, string, ...Array<string | RegExp>] => [
            `allowFrom: ${why}`,
            { name: 'x', cidr: '10.20.0.0/16', allowFrom },
            status,
            code,
            ...mentions,
          ],
        ),
      ])('POST /v1/pools refuses %s', async (_why, body, status, code, ...mentions) => {
        await refused(() => call('POST', '/v1/pools', body), status, code, ...mentions);
      });

      it.each<[string, unknown, number, string, ...Array<string | RegExp>]>([
        ...ALLOW_FROM_REFUSALS,
        ['missing', undefined, 400, 'VALIDATION_FAILED', 'allowFrom'],
      ])('PATCH /v1/pools/:name refuses allowFrom %s', async (_why, allowFrom, status, code, ...mentions) => {
        await refused(() => call('PATCH', '/v1/pools/lab', allowFrom === undefined ? {} : { allowFrom }), status, code, ...mentions);
      });

      it.each<[string, string, Record<string, unknown>, number, string, ...Array<string | RegExp>]>([
        ['an unknown pool', '/v1/pools/nope', { allowFrom: [] }, 404, 'POOL_NOT_FOUND', 'nope'],
        ['any other field (only allowFrom changes)', '/v1/pools/lab', { allowFrom: [], cidr: '10.2.0.0/16' }, 400, 'VALIDATION_FAILED', '"cidr"'],
      ])('PATCH /v1/pools/:name refuses %s', async (_why, url, body, status, code, ...mentions) => {
        await refused(() => call('PATCH', url, body), status, code, ...mentions);
      });

      it.each<[string, Method, string, number, string, ...Array<string | RegExp>]>([
        ['GET an unknown pool', 'GET', '/v1/pools/nope', 404, 'POOL_NOT_FOUND', 'nope'],
        ['DELETE an unknown pool', 'DELETE', '/v1/pools/nope', 404, 'POOL_NOT_FOUND', 'nope'],
        ['DELETE a pool in use', 'DELETE', '/v1/pools/tiny', 409, 'POOL_IN_USE', 'tiny', '2 subnet'],
        ['available of an unknown pool', 'GET', '/v1/pools/nope/available', 404, 'POOL_NOT_FOUND', 'nope'],
        ['available shorter than the pool', 'GET', '/v1/pools/default/available?prefixLength=8', 400, 'INVALID_PREFIX_LENGTH', '16 to 30'],
        ['available /31', 'GET', '/v1/pools/default/available?prefixLength=31', 400, 'INVALID_PREFIX_LENGTH'],
        ['available prefix not a number', 'GET', '/v1/pools/default/available?prefixLength=abc', 400, 'VALIDATION_FAILED', 'prefixLength'],
        ['available limit 0', 'GET', '/v1/pools/default/available?limit=0', 400, 'VALIDATION_FAILED', 'limit'],
        ['available limit too large', 'GET', '/v1/pools/default/available?limit=100000', 400, 'VALIDATION_FAILED', 'limit'],
        ['available with an unknown parameter', 'GET', '/v1/pools/default/available?size=24', 400, 'VALIDATION_FAILED', 'size'],
      ])('%s', async (_why, method, url, status, code, ...mentions) => {
        await refused(() => call(method, url), status, code, ...mentions);
      });

      it('available in a full pool is an empty list, and reserved blocks are never offered', async () => {
        expect((await call('GET', '/v1/pools/tiny/available')).body).toEqual({ pool: 'tiny', prefixLength: 30, items: [] });
        expect((await call('GET', '/v1/pools/lab/available?limit=5')).body.items).toEqual([
          '10.1.1.0/24',
          '10.1.2.0/24',
          '10.1.3.0/24',
          '10.1.4.0/24',
          '10.1.6.0/24',
        ]);
        expect((await call('GET', '/v1/pools/lab/available?prefixLength=30&limit=2')).body.items).toEqual(['10.1.1.0/30', '10.1.1.4/30']);
        expect((await call('GET', '/v1/pools/tiny')).body.utilization).toEqual({ total: 2, allocated: 2, free: 0, reserved: 0 });
        expect((await call('GET', '/v1/pools/lab')).body.utilization).toEqual({ total: 256, allocated: 0, free: 254, reserved: 2 });
      });
    });
  });

  // -------------------------------------------------------------------------------------------

  describe('hosts', () => {
    describe('happy paths', () => {
      freshAppPerTest();

      it('register: 201 {host, token}, first subnet from the default pool, gateway its first host address', async () => {
        const res = await call('POST', '/v1/hosts', { name: 'node-1', address: '198.51.100.11' });
        expect(res.status).toBe(201);
        expect(Object.keys(res.body).sort()).toEqual(['caFingerprint', 'host', 'join', 'token']);
        // this app serves plain HTTP (server.ts gives it the certificates): nothing to pin
        expect(res.body.caFingerprint).toBeNull();
        const { host, token } = res.body;
        expectHostShape(host, { name: 'node-1', address: '198.51.100.11', interface: 'eth0', labels: {}, status: 'pending', lastSeenAt: null, executor: null });
        // the line to run on the host: the URL this request was made to (inject's Host is localhost:80)
        expect(res.body.join).toBe(`node crossdock-executor.mjs install --controller http://localhost:80 --token ${token}`);
        expect(host.subnets).toHaveLength(1);
        expectSubnetShape(host.subnets[0], {
          cidr: '10.100.0.0/24',
          gateway: '10.100.0.1',
          pool: 'default',
          host: 'node-1',
          network: 'crossdock',
          mode: 'network',
        });
        expectRandomToken(token);
        // only the hash is stored
        const row = await t.prisma.host.findUniqueOrThrow({ where: { name: 'node-1' } });
        expect(row.tokenHash).toBe(hashToken(token));
        expect(JSON.stringify(row)).not.toContain(token);

        const second = await registerHost('node-2', '198.51.100.12', { interface: 'ens3', labels: { rack: 'r1', 'topology.io/zone': 'a' } });
        expectHostShape(second.host, { name: 'node-2', interface: 'ens3', labels: { rack: 'r1', 'topology.io/zone': 'a' } });
        expect(second.host.subnets.map((s: any) => [s.cidr, s.gateway])).toEqual([['10.100.1.0/24', '10.100.1.1']]);
        expectRandomToken(second.token);
        expect(second.token).not.toBe(token);
      });

      it('register with allocate:false gets no subnet; with pool, a subnet from that pool', async () => {
        const bare = await registerHost('node-1', '198.51.100.11', { allocate: false });
        expect(bare.host.subnets).toEqual([]);
        await createPool({ name: 'lab', cidr: '10.1.0.0/16', subnetPrefixLength: 25, reserved: ['10.1.0.0/25'] });
        const pooled = await registerHost('node-2', '198.51.100.12', { pool: 'lab' });
        expect(pooled.host.subnets.map((s: any) => [s.cidr, s.gateway, s.pool])).toEqual([['10.1.0.128/25', '10.1.0.129', 'lab']]);
      });

      it('list and get', async () => {
        const a = await registerHost('node-1', '198.51.100.11');
        const b = await registerHost('node-2', '198.51.100.12', { allocate: false });
        const list = await call('GET', '/v1/hosts');
        expect(list.status).toBe(200);
        expect(Object.keys(list.body)).toEqual(['items']);
        // node-2 joining changed what node-1 should have (its chain accepts node-2): a new generation
        const aNow = { ...a.host, generation: { desired: a.host.generation.desired + 1, applied: 0 } };
        expect(list.body.items).toEqual([aNow, b.host]);
        const got = await call('GET', '/v1/hosts/node-1');
        expect(got.status).toBe(200);
        // node-1 has not reported its interfaces yet: node-2 counts as on-link until it does
        expect(got.body).toEqual({ ...aNow, peers: [{ host: 'node-2', address: '198.51.100.12', onLink: null, reach: 'direct', applied: false }] });
      });

      it('patch: address, interface and labels change; the same address again is a no-op', async () => {
        await registerHost('node-1', '198.51.100.11');
        const res = await call('PATCH', '/v1/hosts/node-1', { address: '198.51.100.21' });
        expect(res.status).toBe(200);
        expectHostShape(res.body, { name: 'node-1', address: '198.51.100.21', interface: 'eth0' });
        expect(res.body.subnets.map((s: any) => s.cidr)).toEqual(['10.100.0.0/24']);
        // the old address is free again, the new one is taken
        await registerHost('node-2', '198.51.100.11', { allocate: false });
        expectError(await call('POST', '/v1/hosts', { name: 'node-3', address: '198.51.100.21' }), 409, 'ADDRESS_IN_USE', 'node-1');

        const more = await call('PATCH', '/v1/hosts/node-1', { interface: 'ens4', labels: { role: 'edge' } });
        expect(more.status).toBe(200);
        expect(more.body).toMatchObject({ address: '198.51.100.21', interface: 'ens4', labels: { role: 'edge' } });
        const same = await call('PATCH', '/v1/hosts/node-1', { address: '198.51.100.21' });
        expect(same.status).toBe(200);
        expect((await call('GET', '/v1/hosts/node-1')).body).toMatchObject({ address: '198.51.100.21', interface: 'ens4', labels: { role: 'edge' } });
      });

      it('delete: 204, its subnets are released, and the next host gets the same lowest subnet back', async () => {
        const a = await registerHost('node-1', '198.51.100.11');
        await allocate({ host: 'node-1', prefixLength: 26, network: 'extra' });
        const b = await registerHost('node-2', '198.51.100.12');
        expect(a.host.subnets[0].cidr).toBe('10.100.0.0/24');
        expect(b.host.subnets[0].cidr).toBe('10.100.2.0/24');

        const res = await call('DELETE', '/v1/hosts/node-1');
        expect(res.status).toBe(204);
        expect(res.raw).toBe('');
        expectError(await call('GET', '/v1/hosts/node-1'), 404, 'HOST_NOT_FOUND');
        expect((await call('GET', '/v1/subnets')).body.items.map((s: any) => s.cidr)).toEqual(['10.100.2.0/24']);
        expectError(await call('GET', `/v1/subnets/${a.host.subnets[0].id}`), 404, 'SUBNET_NOT_FOUND');
        expect((await call('GET', '/v1/pools/default')).body.utilization).toMatchObject({ allocated: 1, free: 255 });

        const c = await registerHost('node-3', '198.51.100.11');
        expect(c.host.subnets[0]).toMatchObject({ cidr: '10.100.0.0/24', gateway: '10.100.0.1' });
        expect((await allocate({ host: 'node-3', prefixLength: 26, network: 'extra' })).cidr).toBe('10.100.1.0/26');
        // the name is free again too
        await registerHost('node-1', '198.51.100.13', { allocate: false });
      });

      it('rotate token: a new random token; only its hash is stored', async () => {
        const { token } = await registerHost('node-1', '198.51.100.11');
        const res = await call('POST', '/v1/hosts/node-1/token');
        expect(res.status).toBe(200);
        expect(Object.keys(res.body)).toEqual(['token', 'caFingerprint', 'join']);
        expectRandomToken(res.body.token);
        expect(res.body.join).toBe(`node crossdock-executor.mjs install --controller http://localhost:80 --token ${res.body.token}`);
        expect(res.body.token).not.toBe(token);
        const row = await t.prisma.host.findUniqueOrThrow({ where: { name: 'node-1' } });
        expect(row.tokenHash).toBe(hashToken(res.body.token));
        expect(row.tokenHash).not.toBe(hashToken(token));
        const again = await call('POST', '/v1/hosts/node-1/token');
        expect(again.body.token).not.toBe(res.body.token);
        expect((await t.prisma.host.findUniqueOrThrow({ where: { name: 'node-1' } })).tokenHash).toBe(hashToken(again.body.token));
      });

      it('a registration refused for an exhausted pool leaves its name and address free', async () => {
        await createPool({ name: 'tiny', cidr: '10.250.0.0/30', subnetPrefixLength: 30 });
        await registerHost('node-1', '198.51.100.11', { pool: 'tiny' });
        await refused(() => call('POST', '/v1/hosts', { name: 'node-2', address: '198.51.100.12', pool: 'tiny' }), 409, 'POOL_EXHAUSTED', 'tiny');
        await registerHost('node-2', '198.51.100.12', { allocate: false });
      });

      it('without a default pool, registration that needs one says how to get one', async () => {
        await t.close();
        t = await createTestApp({ defaultPool: null });
        await refused(() => call('POST', '/v1/hosts', { name: 'node-1', address: '198.51.100.11' }), 404, 'POOL_NOT_FOUND', 'POST /v1/pools');
        await registerHost('node-1', '198.51.100.11', { allocate: false });
      });
    });

    describe('refusals', () => {
      sharedFixtureApp();

      it.each<[string, string, Record<string, unknown>, number, string, ...Array<string | RegExp>]>([
        ['an address already registered', 'node-1', { address: '198.51.100.12' }, 409, 'ADDRESS_IN_USE', '198.51.100.12', 'node-2'],
        ['an address that is not unicast', 'node-1', { address: '127.0.0.1' }, 400, 'INVALID_ADDRESS', '127.0.0.1'],
        ['an address inside a pool', 'node-1', { address: '10.1.200.1' }, 409, 'ADDRESS_IN_POOL', '10.1.200.1', '"lab"', '10.1.0.0/16'],
        ['a label value with a zero-width space', 'node-1', { labels: { ok: 'a\u200bb' } }, 400, 'INVALID_LABELS', '"ok"', 'printable'],
        ['an address that is not an address', 'node-1', { address: '198.51.100' }, 400, 'INVALID_ADDRESS', /such as \d/],
        ['a bad interface name', 'node-1', { interface: 'eth/0' }, 400, 'INVALID_INTERFACE', 'eth0'],
        ['an interface name too long', 'node-1', { interface: 'a234567890123456' }, 400, 'INVALID_INTERFACE'],
        ['a bad label key', 'node-1', { labels: { '-bad': 'x' } }, 400, 'INVALID_LABELS', '-bad'],
        ['a label value with a newline', 'node-1', { labels: { ok: 'a\nb' } }, 400, 'INVALID_LABELS'],
        ['a label value that is not a string', 'node-1', { labels: { ok: 1 } }, 400, 'VALIDATION_FAILED', 'labels'],
        ['an empty body', 'node-1', {}, 400, 'VALIDATION_FAILED', 'at least one'],
        ['a name change (not a patchable field)', 'node-1', { name: 'node-9' }, 400, 'VALIDATION_FAILED', '"name"'],
        ['an address of the wrong type', 'node-1', { address: 3325256715 }, 400, 'VALIDATION_FAILED', 'address'],
        ['an unknown host', 'nope', { address: '198.51.100.40' }, 404, 'HOST_NOT_FOUND', 'nope'],
      ])('PATCH refuses %s', async (_why, name, body, status, code, ...mentions) => {
        await refused(() => call('PATCH', `/v1/hosts/${name}`, body), status, code, ...mentions);
      });

      it.each<[string, Method, string, string]>([
        ['GET', 'GET', '/v1/hosts/nope', 'nope'],
        ['DELETE', 'DELETE', '/v1/hosts/nope', 'nope'],
        ['token rotation for', 'POST', '/v1/hosts/nope/token', 'nope'],
      ])('%s an unknown host is 404', async (_why, method, url, mention) => {
        await refused(() => call(method, url), 404, 'HOST_NOT_FOUND', mention, 'GET /v1/hosts');
      });

      const longName = 'a'.repeat(64);
      it.each<[string, Record<string, unknown>, number, string, ...Array<string | RegExp>]>([
        ['an upper-case name', { name: 'Node-3', address: '198.51.100.20' }, 400, 'INVALID_NAME', 'DNS label', '"node-3"'],
        ['a name with an underscore', { name: 'node_3', address: '198.51.100.20' }, 400, 'INVALID_NAME', '"node-3"'],
        ['a name with a dot', { name: 'node.lan', address: '198.51.100.20' }, 400, 'INVALID_NAME', '"node-lan"'],
        ['a name starting with a hyphen', { name: '-node', address: '198.51.100.20' }, 400, 'INVALID_NAME'],
        ['a name ending with a hyphen', { name: 'node-', address: '198.51.100.20' }, 400, 'INVALID_NAME'],
        ['an empty name', { name: '', address: '198.51.100.20' }, 400, 'INVALID_NAME'],
        ['a 64-character name', { name: longName, address: '198.51.100.20' }, 400, 'INVALID_NAME', '1 to 63'],
        ['a name with a space', { name: 'node 3', address: '198.51.100.20' }, 400, 'INVALID_NAME'],
        ['loopback 127.0.0.1', { name: 'node-9', address: '127.0.0.1' }, 400, 'INVALID_ADDRESS', '127.0.0.1', 'unicast'],
        ['multicast 224.0.0.1', { name: 'node-9', address: '224.0.0.1' }, 400, 'INVALID_ADDRESS', '224.0.0.1'],
        ['0.0.0.0', { name: 'node-9', address: '0.0.0.0' }, 400, 'INVALID_ADDRESS', '0.0.0.0'],
        ['broadcast 255.255.255.255', { name: 'node-9', address: '255.255.255.255' }, 400, 'INVALID_ADDRESS', '255.255.255.255'],
        ['link-local 169.254.1.1', { name: 'node-9', address: '169.254.1.1' }, 400, 'INVALID_ADDRESS'],
        ['"300.1.1.1"', { name: 'node-9', address: '300.1.1.1' }, 400, 'INVALID_ADDRESS', '300.1.1.1', 'four decimal octets'],
        ['an address with a prefix', { name: 'node-9', address: '198.51.100.20/24' }, 400, 'INVALID_ADDRESS'],
        ['a host name for an address', { name: 'node-9', address: 'node-1.lan' }, 400, 'INVALID_ADDRESS'],
        ['an IPv6 address', { name: 'node-9', address: '2001:db8::1' }, 400, 'INVALID_ADDRESS'],
        ['a duplicate name', { name: 'node-1', address: '198.51.100.20' }, 409, 'HOST_EXISTS', 'node-1'],
        ['a duplicate address', { name: 'node-9', address: '198.51.100.11' }, 409, 'ADDRESS_IN_USE', '198.51.100.11', 'node-1'],
        ['an address inside a pool', { name: 'node-9', address: '10.100.0.7' }, 409, 'ADDRESS_IN_POOL', '10.100.0.7', '"default"', '10.100.0.0/16'],
        ['an address inside a pool, without a subnet', { name: 'node-9', address: '10.250.0.6', allocate: false }, 409, 'ADDRESS_IN_POOL', '"tiny"'],
        [
          'a label value with a right-to-left override',
          { name: 'node-9', address: '198.51.100.20', labels: { ok: 'exe.\u202egnp' } },
          400,
          'INVALID_LABELS',
          'printable',
        ],
        [
          'a label value with a next-line character',
          { name: 'node-9', address: '198.51.100.20', labels: { ok: 'a\u0085b' } },
          400,
          'INVALID_LABELS',
          'printable',
        ],
        ['a name with a right-to-left override, echoed escaped', { name: 'node\u202e9', address: '198.51.100.20' }, 400, 'INVALID_NAME', '"node\\u202e9"'],
        [
          'a 100,000-character name, echoed by a prefix',
          { name: 'n'.repeat(100_000), address: '198.51.100.20' },
          400,
          'INVALID_NAME',
          /"n{64}…" \(100000 characters\)/,
        ],
        ['an unknown pool', { name: 'node-9', address: '198.51.100.20', pool: 'nope' }, 404, 'POOL_NOT_FOUND', 'nope'],
        ['an exhausted pool', { name: 'node-9', address: '198.51.100.20', pool: 'tiny' }, 409, 'POOL_EXHAUSTED', 'tiny', '10.250.0.0/29'],
        ['pool with allocate:false', { name: 'node-9', address: '198.51.100.20', pool: 'default', allocate: false }, 400, 'VALIDATION_FAILED', 'allocate'],
        ['a bad interface', { name: 'node-9', address: '198.51.100.20', interface: 'eth 0' }, 400, 'INVALID_INTERFACE', 'eth0'],
        ['bad labels', { name: 'node-9', address: '198.51.100.20', labels: { 'a b': 'c' } }, 400, 'INVALID_LABELS'],
        ['labels that are a list', { name: 'node-9', address: '198.51.100.20', labels: ['a'] }, 400, 'VALIDATION_FAILED', 'labels'],
        ['allocate as a string', { name: 'node-9', address: '198.51.100.20', allocate: 'false' }, 400, 'VALIDATION_FAILED', 'allocate'],
        ['a missing address', { name: 'node-9' }, 400, 'VALIDATION_FAILED', '"address"'],
        ['a missing name', { address: '198.51.100.20' }, 400, 'VALIDATION_FAILED', '"name"'],
        ['an unknown field', { name: 'node-9', address: '198.51.100.20', token: 'x' }, 400, 'VALIDATION_FAILED', '"token"'],
        ['a name that is a number', { name: 1, address: '198.51.100.20' }, 400, 'VALIDATION_FAILED', 'name'],
      ])('POST /v1/hosts refuses %s', async (_why, body, status, code, ...mentions) => {
        await refused(() => call('POST', '/v1/hosts', body), status, code, ...mentions);
      });
    });
  });

  // -------------------------------------------------------------------------------------------

  describe('subnets', () => {
    describe('happy paths', () => {
      freshAppPerTest();
      beforeEach(async () => {
        await registerHost('node-1', '198.51.100.11');
        await registerHost('node-2', '198.51.100.12', { allocate: false });
      });

      it('allocate: 201 with the exact shape; lowest aligned first fit by length', async () => {
        const res = await call('POST', '/v1/subnets', { host: 'node-2' });
        expect(res.status).toBe(201);
        expectSubnetShape(res.body, { cidr: '10.100.1.0/24', gateway: '10.100.1.1', pool: 'default', host: 'node-2', network: 'crossdock', mode: 'network' });
        // a /26 goes to the lowest free aligned block; a /24 must skip the partly used
        // 10.100.2.0/24; the next /26 fills the gap
        expect((await allocate({ host: 'node-2', prefixLength: 26, network: 'a' })).cidr).toBe('10.100.2.0/26');
        expect((await allocate({ host: 'node-2', prefixLength: 24, network: 'b' })).cidr).toBe('10.100.3.0/24');
        expect((await allocate({ host: 'node-2', prefixLength: 26, network: 'c' })).cidr).toBe('10.100.2.64/26');
        expect((await allocate({ host: 'node-2', prefixLength: 23, network: 'd' })).cidr).toBe('10.100.4.0/23');
        expect(await allocate({ host: 'node-2', prefixLength: 30, network: 'e' })).toMatchObject({ cidr: '10.100.2.128/30', gateway: '10.100.2.129' });
        // the whole pool as one subnet no longer fits
        await refused(() => call('POST', '/v1/subnets', { host: 'node-2', prefixLength: 16, network: 'f' }), 409, 'POOL_EXHAUSTED', '/16');
      });

      it('allocate an explicit cidr, with or without a gateway, in network or bip mode', async () => {
        const exact = await allocate({ host: 'node-2', cidr: '10.100.9.0/24', gateway: '10.100.9.254', network: 'a' });
        expect(exact).toMatchObject({ cidr: '10.100.9.0/24', gateway: '10.100.9.254', pool: 'default', mode: 'network' });
        const bip = await allocate({ host: 'node-2', cidr: '10.100.10.0/25', network: 'b', mode: 'bip', pool: 'default' });
        expect(bip).toMatchObject({ cidr: '10.100.10.0/25', gateway: '10.100.10.1', mode: 'bip' });
        // by length still takes the lowest free block, below the explicit ones
        expect((await allocate({ host: 'node-2', network: 'c' })).cidr).toBe('10.100.1.0/24');
        await createPool({ name: 'lab', cidr: '10.1.0.0/16' });
        // an explicit cidr finds its own pool
        expect((await allocate({ host: 'node-2', cidr: '10.1.7.0/24', network: 'd' })).pool).toBe('lab');
        expect((await allocate({ host: 'node-2', pool: 'lab', network: 'e' })).cidr).toBe('10.1.0.0/24');
      });

      it('list with filters, get, delete', async () => {
        await createPool({ name: 'lab', cidr: '10.1.0.0/16' });
        const a = await allocate({ host: 'node-2', network: 'a' });
        const b = await allocate({ host: 'node-2', pool: 'lab', network: 'b' });
        const c = await allocate({ host: 'node-1', pool: 'lab', network: 'c' });
        const first = (await call('GET', '/v1/hosts/node-1')).body.subnets[0];

        const all = await call('GET', '/v1/subnets');
        expect(all.status).toBe(200);
        expect(Object.keys(all.body)).toEqual(['items']);
        expect(all.body.items).toEqual([first, a, b, c]);
        for (const s of all.body.items) expect(Object.keys(s).sort()).toEqual(SUBNET_KEYS);
        expect((await call('GET', '/v1/subnets?host=node-2')).body.items).toEqual([a, b]);
        expect((await call('GET', '/v1/subnets?pool=lab')).body.items).toEqual([b, c]);
        expect((await call('GET', '/v1/subnets?pool=lab&host=node-1')).body.items).toEqual([c]);
        expect((await call('GET', '/v1/subnets?pool=default&host=node-1')).body.items).toEqual([first]);

        const got = await call('GET', `/v1/subnets/${b.id}`);
        expect(got.status).toBe(200);
        expect(got.body).toEqual(b);

        const del = await call('DELETE', `/v1/subnets/${b.id}`);
        expect(del.status).toBe(204);
        expect(del.raw).toBe('');
        expectError(await call('GET', `/v1/subnets/${b.id}`), 404, 'SUBNET_NOT_FOUND', String(b.id));
        expectError(await call('DELETE', `/v1/subnets/${b.id}`), 404, 'SUBNET_NOT_FOUND');
        expect((await call('GET', '/v1/subnets?pool=lab')).body.items).toEqual([c]);
        expect((await call('GET', '/v1/hosts/node-2')).body.subnets).toEqual([a]);
        // released: the same block comes back first
        expect((await allocate({ host: 'node-2', pool: 'lab', network: 'b' })).cidr).toBe(b.cidr);
      });

      it('allocation by length steps around reserved ranges', async () => {
        await createPool({ name: 'lab', cidr: '10.1.0.0/16', reserved: ['10.1.0.0/24', '10.1.5.7/32'] });
        expect((await allocate({ host: 'node-2', pool: 'lab', network: 'a' })).cidr).toBe('10.1.1.0/24');
        expect((await allocate({ host: 'node-2', pool: 'lab', prefixLength: 22, network: 'b' })).cidr).toBe('10.1.8.0/22');
        expect((await allocate({ host: 'node-2', pool: 'lab', prefixLength: 25, network: 'c' })).cidr).toBe('10.1.2.0/25');
        const taken = ['10.1.3.0/24', '10.1.4.0/24', '10.1.6.0/24', '10.1.7.0/24'];
        for (const [i, cidr] of taken.entries()) expect((await allocate({ host: 'node-2', pool: 'lab', network: `d${i}` })).cidr).toBe(cidr);
        // 10.1.5.0/24 holds the reserved 10.1.5.7; the /25 above it is still free
        expect((await allocate({ host: 'node-2', pool: 'lab', prefixLength: 25, network: 'e' })).cidr).toBe('10.1.2.128/25');
        expect((await allocate({ host: 'node-2', pool: 'lab', prefixLength: 25, network: 'f' })).cidr).toBe('10.1.5.128/25');
      });
    });

    describe('refusals', () => {
      sharedFixtureApp();

      it.each<[string, string, number, string, ...string[]]>([
        ['an unknown host', '/v1/subnets?host=nope', 404, 'HOST_NOT_FOUND', 'nope'],
        ['an unknown pool', '/v1/subnets?pool=nope', 404, 'POOL_NOT_FOUND', 'nope'],
        ['an unknown query parameter', '/v1/subnets?cidr=10.100.0.0/24', 400, 'VALIDATION_FAILED', 'cidr'],
        ['an id that is not a number', '/v1/subnets/abc', 400, 'VALIDATION_FAILED', 'id'],
        ['id 0', '/v1/subnets/0', 400, 'VALIDATION_FAILED', 'id'],
        ['a negative id', '/v1/subnets/-1', 400, 'VALIDATION_FAILED', 'id'],
        ['a fractional id', '/v1/subnets/1.5', 400, 'VALIDATION_FAILED', 'id'],
        ['an unknown id', '/v1/subnets/999999', 404, 'SUBNET_NOT_FOUND', '999999'],
        ['an id beyond 32 bits', '/v1/subnets/99999999999999999999', 400, 'VALIDATION_FAILED', 'id'],
        ['an id of 1e400', '/v1/subnets/1e400', 400, 'VALIDATION_FAILED', 'id'],
        ['an id of Infinity', '/v1/subnets/Infinity', 400, 'VALIDATION_FAILED', 'id'],
      ])('GET refuses %s', async (_why, url, status, code, ...mentions) => {
        expectError(await call('GET', url), status, code, ...mentions);
      });

      it.each<[string, string, number, string]>([
        ['an id that is not a number', '/v1/subnets/abc', 400, 'VALIDATION_FAILED'],
        ['an unknown id', '/v1/subnets/999999', 404, 'SUBNET_NOT_FOUND'],
        ['an id of 1e400', '/v1/subnets/1e400', 400, 'VALIDATION_FAILED'],
      ])('DELETE refuses %s', async (_why, url, status, code) => {
        await refused(() => call('DELETE', url), status, code);
      });

      it.each<[string, Record<string, unknown>, number, string, ...Array<string | RegExp>]>([
        ['host bits set (10.1.0.5/16)', { cidr: '10.1.0.5/16' }, 400, 'CIDR_HOST_BITS_SET', '10.1.0.0/16'],
        ['a cidr not aligned to its own prefix (10.100.1.0/23)', { cidr: '10.100.1.0/23' }, 400, 'CIDR_HOST_BITS_SET', '10.100.0.0/23'],
        ['a cidr not aligned (10.100.7.128/24)', { cidr: '10.100.7.128/24' }, 400, 'CIDR_HOST_BITS_SET', '10.100.7.0/24'],
        ['an unparsable cidr', { cidr: '10.100.7/24' }, 400, 'INVALID_CIDR', 'cidr'],
        ['a cidr without a prefix', { cidr: '10.100.7.0' }, 400, 'INVALID_CIDR', '/24'],
        ['a cidr prefix /33', { cidr: '10.100.7.0/33' }, 400, 'INVALID_CIDR', '0 to 32'],
        ['prefixLength 33', { prefixLength: 33 }, 400, 'INVALID_PREFIX_LENGTH', '16 to 30'],
        ['prefixLength shorter than the pool', { prefixLength: 15 }, 400, 'INVALID_PREFIX_LENGTH', '16 to 30'],
        ['prefixLength 31', { prefixLength: 31 }, 400, 'INVALID_PREFIX_LENGTH', '16 to 30'],
        ['prefixLength 0', { prefixLength: 0 }, 400, 'INVALID_PREFIX_LENGTH'],
        ['an explicit /31', { cidr: '10.100.7.0/31' }, 400, 'INVALID_PREFIX_LENGTH'],
        ['a cidr and a prefixLength that disagree', { cidr: '10.100.7.0/24', prefixLength: 25 }, 400, 'INVALID_PREFIX_LENGTH', '10.100.7.0/24'],
        ['a subnet outside every pool', { cidr: '10.200.0.0/24' }, 400, 'SUBNET_OUTSIDE_POOL', '10.200.0.0/24', '"default" 10.100.0.0/16'],
        ['a subnet outside the pool named', { cidr: '10.200.0.0/24', pool: 'default' }, 400, 'SUBNET_OUTSIDE_POOL', '10.100.0.0/16'],
        ['a subnet in another pool than the one named', { cidr: '10.1.9.0/24', pool: 'default' }, 400, 'SUBNET_OUTSIDE_POOL', '"default"'],
        ['a subnet larger than its pool', { cidr: '10.100.0.0/15' }, 400, 'SUBNET_OUTSIDE_POOL'],
        [
          'a subnet overlapping another (same)',
          { cidr: '10.100.0.0/24' },
          409,
          'SUBNET_OVERLAP',
          '10.100.0.0/24',
          'node-1',
          'the lowest free /24 is 10.100.1.0/24',
        ],
        ['a subnet overlapping another (inside)', { cidr: '10.100.0.64/26' }, 409, 'SUBNET_OVERLAP', '10.100.0.0/24', '10.100.1.0/26'],
        ['a subnet overlapping another (around)', { cidr: '10.100.0.0/23' }, 409, 'SUBNET_OVERLAP', '10.100.0.0/24', '10.100.2.0/23'],
        ['a subnet inside a reserved range', { cidr: '10.1.0.128/25' }, 409, 'SUBNET_RESERVED', '10.1.0.0/24'],
        ['a subnet holding a reserved address', { cidr: '10.1.5.0/24' }, 409, 'SUBNET_RESERVED', '10.1.5.7/32'],
        ['a subnet spanning reserved ranges', { cidr: '10.1.0.0/16', pool: 'lab' }, 409, 'SUBNET_RESERVED'],
        [
          'the gateway is the network address',
          { cidr: '10.100.9.0/24', gateway: '10.100.9.0' },
          400,
          'INVALID_GATEWAY',
          'network address',
          'use a host address such as 10.100.9.1',
        ],
        [
          'the gateway is the broadcast address',
          { cidr: '10.100.9.0/24', gateway: '10.100.9.255' },
          400,
          'INVALID_GATEWAY',
          'broadcast',
          'use a host address such as 10.100.9.1',
        ],
        ['the gateway is the broadcast address of a /30', { cidr: '10.100.9.4/30', gateway: '10.100.9.7' }, 400, 'INVALID_GATEWAY', 'broadcast', '10.100.9.5'],
        ['the gateway is outside the subnet', { cidr: '10.100.9.0/24', gateway: '10.100.8.1' }, 400, 'INVALID_GATEWAY', 'outside', '10.100.9.1'],
        ['the gateway is not an address', { cidr: '10.100.9.0/24', gateway: 'router' }, 400, 'INVALID_GATEWAY', '10.100.9.1'],
        ['the gateway of an allocation by length is its network address', { gateway: '10.100.1.0' }, 400, 'INVALID_GATEWAY', 'network address', '10.100.1.1'],
        ['an exhausted pool', { pool: 'tiny' }, 409, 'POOL_EXHAUSTED', '"tiny"', '/30', 'release'],
        ['an exhausted pool, a longer block', { pool: 'tiny', prefixLength: 29 }, 409, 'POOL_EXHAUSTED', '/29'],
        ['the whole default pool', { prefixLength: 16 }, 409, 'POOL_EXHAUSTED', '/16'],
        ['an unknown host', { host: 'nope' }, 404, 'HOST_NOT_FOUND', 'nope'],
        ['an unknown pool', { pool: 'nope' }, 404, 'POOL_NOT_FOUND', 'nope'],
        ['a network name the host already has', { host: 'node-1', network: 'crossdock' }, 409, 'NETWORK_NAME_IN_USE', 'crossdock'],
        ['a second bip subnet on one host', { network: 'c', mode: 'bip' }, 409, 'NETWORK_NAME_IN_USE', 'bip'],
        ['a bad network name', { network: '-net' }, 400, 'INVALID_NETWORK_NAME', 'crossdock'],
        ["Docker's own network bridge", { network: 'bridge' }, 400, 'INVALID_NETWORK_NAME', '"bridge"', 'every Docker engine', 'crossdock'],
        ["Docker's own network host", { network: 'host' }, 400, 'INVALID_NETWORK_NAME', '"host"'],
        ["Docker's own network none, in bip mode too", { network: 'none', mode: 'bip' }, 400, 'INVALID_NETWORK_NAME', '"none"'],
        ['an unknown mode', { mode: 'overlay' }, 400, 'VALIDATION_FAILED', 'mode'],
        ['prefixLength as a string', { prefixLength: '24' }, 400, 'VALIDATION_FAILED', 'prefixLength'],
        ['prefixLength fractional', { prefixLength: 24.5 }, 400, 'VALIDATION_FAILED', 'prefixLength'],
        ['cidr as a list', { cidr: ['10.100.9.0/24'] }, 400, 'VALIDATION_FAILED', 'cidr'],
        ['a missing host', { host: undefined }, 400, 'VALIDATION_FAILED', '"host"'],
        ['an unknown field', { subnet: '10.100.9.0/24' }, 400, 'VALIDATION_FAILED', '"subnet"'],
      ])('POST /v1/subnets refuses %s', async (_why, body, status, code, ...mentions) => {
        const payload = JSON.parse(JSON.stringify({ host: 'node-2', network: 'extra', ...body })) as Record<string, unknown>;
        await refused(() => call('POST', '/v1/subnets', payload), status, code, ...mentions);
      });
    });
  });

  // -------------------------------------------------------------------------------------------

  describe('malformed requests are 400 (or 413/415), never 500, and change nothing', () => {
    sharedFixtureApp();

    // [why, body, content type, other acceptable 400 code]
    const bodies: Array<[string, string, string?, string?]> = [
      ['truncated JSON', '{"name": "x"'],
      ['not JSON', 'name=x'],
      ['a trailing comma', '{"name": "x",}'],
      ['single quotes', "{'name': 'x'}"],
      ['an empty body', ''],
      ['null', 'null'],
      ['an array', '[]'],
      ['a string', '"x"'],
      ['a number', '42'],
      ['a prototype key', '{"__proto__": {"admin": true}, "name": "x", "cidr": "10.20.0.0/16"}'],
      ['a constructor key', '{"constructor": {"prototype": {"admin": true}}, "name": "x", "cidr": "10.20.0.0/16"}'],
      // JSON.parse gives Infinity, which Ajv's integer check lets through; the pool rule refuses it
      ['a huge number', '{"name": "x", "cidr": "10.20.0.0/16", "subnetPrefixLength": 1e400}', undefined, 'INVALID_PREFIX_LENGTH'],
      ['deep nesting', `{"name": ${'['.repeat(500)}${']'.repeat(500)}}`],
      ['plain text', 'name=x', 'text/plain'],
      ['form encoding', 'name=x&cidr=10.20.0.0%2F16', 'application/x-www-form-urlencoded'],
    ];
    const targets: Array<[Method, string]> = [
      ['POST', '/v1/pools'],
      ['POST', '/v1/hosts'],
      ['PATCH', '/v1/hosts/node-1'],
      ['POST', '/v1/subnets'],
    ];

    it.each(targets)('%s %s', async (method, url) => {
      const before = await state();
      for (const [why, payload, contentType, alsoAccepted] of bodies) {
        const res = await callRaw(method, url, payload, contentType);
        expect([400, 415], `${why}: ${res.status} ${res.raw}`).toContain(res.status);
        expect(['INVALID_JSON', 'VALIDATION_FAILED', 'UNSUPPORTED_MEDIA_TYPE', alsoAccepted], `${why}: ${res.raw}`).toContain(res.body?.error?.code);
        expect(res.body.error.message.length).toBeGreaterThan(10);
      }
      expect(await state()).toEqual(before);
    });

    it('malformed JSON is INVALID_JSON; a body that is not an object is VALIDATION_FAILED', async () => {
      expectError(await callRaw('POST', '/v1/pools', '{"name":'), 400, 'INVALID_JSON', 'JSON');
      expectError(await callRaw('POST', '/v1/pools', ''), 400, 'INVALID_JSON');
      expectError(await callRaw('POST', '/v1/pools', '[1,2]'), 400, 'VALIDATION_FAILED', 'object');
    });

    it('a body over the size limit is 413', async () => {
      const res = await callRaw(
        'POST',
        '/v1/pools',
        JSON.stringify({ name: 'x', cidr: '10.20.0.0/16', reserved: Array.from({ length: 80_000 }, () => '10.20.0.0/24') }),
      );
      expectError(res, 413, 'PAYLOAD_TOO_LARGE');
    });

    it('an unexpected failure is a 500 that hides its text', async () => {
      const original = t.prisma.pool.findMany;
      t.prisma.pool.findMany = (() => Promise.reject(new Error('disk on fire at /secret/path'))) as unknown as typeof original;
      try {
        const res = await call('GET', '/v1/pools');
        expectError(res, 500, 'INTERNAL_ERROR', 'controller log');
        expect(res.raw).not.toContain('secret');
      } finally {
        t.prisma.pool.findMany = original;
      }
      expect((await call('GET', '/v1/pools')).status).toBe(200);
    });
  });

  describe('concurrent requests through the API', () => {
    freshAppPerTest();

    it('simultaneous registrations and allocations get distinct, lowest, aligned subnets', async () => {
      const regs = await Promise.all(Array.from({ length: 20 }, (_, i) => call('POST', '/v1/hosts', { name: `node-${i}`, address: `198.51.100.${i + 10}` })));
      expect(regs.map((r) => r.status)).toEqual(Array(20).fill(201));
      const third = (cidr: string) => Number(cidr.split('.')[2]);
      const cidrs = regs.map((r) => r.body.host.subnets[0].cidr as string).sort((a, b) => third(a) - third(b));
      expect(cidrs).toEqual(Array.from({ length: 20 }, (_, i) => `10.100.${i}.0/24`));

      const allocs = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          call(
            'POST',
            '/v1/subnets',
            i % 3 === 0
              ? { host: `node-${i % 20}`, cidr: `10.100.${30 + (i % 5)}.0/24`, network: `x${i}` }
              : { host: `node-${i % 20}`, prefixLength: 25, network: `x${i}` },
          ),
        ),
      );
      const ok = allocs.filter((r) => r.status === 201).map((r) => r.body.cidr as string);
      const refusedCodes = allocs.filter((r) => r.status !== 201).map((r) => `${r.status} ${r.body.error.code}`);
      // 10 explicit requests for 5 blocks: 5 win, 5 overlap; 20 /25s fill 10.100.20.0 .. 10.100.29.128
      expect(refusedCodes).toEqual(Array(5).fill('409 SUBNET_OVERLAP'));
      expect(new Set(ok).size).toBe(25);
      expect(ok.filter((c) => c.endsWith('/25')).sort()).toEqual(
        Array.from({ length: 20 }, (_, i) => `10.100.${20 + Math.floor(i / 2)}.${(i % 2) * 128}/25`).sort(),
      );
      const listed = (await call('GET', '/v1/subnets')).body.items.map((s: any) => s.cidr).sort();
      expect(listed).toEqual([...cidrs, ...ok].sort());
    });
  });
});
