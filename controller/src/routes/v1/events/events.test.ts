// GET /v1/events over a real listening server: fetch reads the stream as the dashboard does.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEST_ADMIN_TOKEN, createTestApp } from '../../../test-support.ts';

type TestApp = Awaited<ReturnType<typeof createTestApp>>;

interface Stream {
  /** resolves with the first event (not yet taken) that matches */
  next(match: (name: string, data: any) => boolean, timeoutMs?: number): Promise<{ name: string; data: any }>;
  ended: Promise<void>;
  cancel(): Promise<void>;
}

async function openStream(url: string, token = TEST_ADMIN_TOKEN): Promise<Stream> {
  const response = await fetch(`${url}/v1/events`, { headers: { authorization: `Bearer ${token}` } });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: Array<{ name: string; data: any }> = [];
  let wake: (() => void) | undefined;
  const ended = (async () => {
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) break;
      buffer += value;
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        const name = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (name && data) events.push({ name, data: JSON.parse(data) });
      }
      wake?.();
    }
    wake?.();
  })();
  let finished = false;
  void ended.then(() => (finished = true));
  return {
    ended,
    async next(match, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = events.findIndex((e) => match(e.name, e.data));
        if (i >= 0) return events.splice(0, i + 1).at(-1)!;
        if (finished) throw new Error(`the stream ended before the event; got ${events.map((e) => e.name).join(', ')}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching event within ${timeoutMs} ms; got ${events.map((e) => e.name).join(', ')}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, left);
        });
      }
    },
    cancel: () => reader.cancel(),
  };
}

describe('GET /v1/events', () => {
  let t: TestApp;
  let url: string;

  beforeEach(async () => {
    t = await createTestApp();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const address = t.app.server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });

  afterEach(async () => {
    await t.close();
  });

  it('refuses a missing or wrong admin token, and a token in the URL', async () => {
    for (const [path, headers] of [
      ['/v1/events', {}],
      ['/v1/events', { authorization: 'Bearer cda_wrong' }],
      [`/v1/events?token=${TEST_ADMIN_TOKEN}`, {}],
      [`/v1/events?access_token=${TEST_ADMIN_TOKEN}`, {}],
    ] as const) {
      const response = await fetch(`${url}${path}`, { headers });
      expect(response.status, path).toBe(401);
      expect(((await response.json()) as any).error.code).toBe('UNAUTHORIZED');
    }
  });

  it('starts with a snapshot of the fleet, then sends what changes', async () => {
    const registered = await t.app.inject({ method: 'POST', url: '/v1/hosts', headers: t.auth, payload: { name: 'h1', address: '198.51.100.11' } });
    expect(registered.statusCode).toBe(201);
    const stream = await openStream(url);

    const snapshot = await stream.next((name) => name === 'snapshot');
    expect(snapshot.data.hosts.map((h: any) => [h.name, h.status, h.subnets.map((s: any) => s.cidr)])).toEqual([['h1', 'pending', ['10.100.0.0/24']]]);
    expect(snapshot.data.hosts[0].lastJob).toBeNull();
    expect(snapshot.data.pools.map((p: any) => [p.name, p.utilization.allocated])).toEqual([['default', 1]]);

    await t.app.inject({ method: 'POST', url: '/v1/hosts', headers: t.auth, payload: { name: 'h2', address: '198.51.100.12' } });
    const h2 = await stream.next((name, data) => name === 'host' && data.name === 'h2');
    expect(h2.data).toMatchObject({ address: '198.51.100.12', status: 'pending', subnets: [{ cidr: '10.100.1.0/24' }] });
    expect((await stream.next((name) => name === 'pools')).data.items[0].utilization.allocated).toBe(2);

    const allocated = await t.app.inject({ method: 'POST', url: '/v1/subnets', headers: t.auth, payload: { host: 'h1', network: 'backend' } });
    expect(allocated.statusCode).toBe(201);
    const h1 = await stream.next((name, data) => name === 'host' && data.name === 'h1' && data.subnets.length === 2);
    expect(h1.data.subnets.map((s: any) => s.cidr)).toEqual(['10.100.0.0/24', '10.100.2.0/24']);

    await t.app.inject({ method: 'POST', url: '/v1/pools', headers: t.auth, payload: { name: 'backend', cidr: '10.200.0.0/16' } });
    const pools = await stream.next((name, data) => name === 'pools' && data.items.length === 2);
    expect(pools.data.items[1]).toMatchObject({ name: 'backend', cidr: '10.200.0.0/16', utilization: { allocated: 0, total: 256 } });

    expect((await t.app.inject({ method: 'DELETE', url: '/v1/hosts/h2', headers: t.auth })).statusCode).toBe(204);
    expect((await stream.next((name) => name === 'host.removed')).data).toEqual({ id: h2.data.id, name: 'h2' });
    await stream.cancel();
  });

  it("sends a host's status when its executor attaches and detaches", async () => {
    const registered = await t.app.inject({ method: 'POST', url: '/v1/hosts', headers: t.auth, payload: { name: 'h1', address: '198.51.100.11' } });
    const id = registered.json().host.id as number;
    const stream = await openStream(url);
    await stream.next((name) => name === 'snapshot');
    // The hub is what the agent route attaches real sessions to; this session only records.
    const session = { hostId: id, transport: 'polling' as const, send() {}, close() {} };
    t.app.agents.hub.attach(session);
    expect((await stream.next((name, data) => name === 'host' && data.status === 'online')).data.name).toBe('h1');
    t.app.agents.hub.detach(session);
    const offline = await stream.next((name, data) => name === 'host' && data.status === 'offline');
    expect(offline.data.lastSeenAt).not.toBeNull();
    await stream.cancel();
  });

  it('stops listening to the fleet once the last client is gone', async () => {
    const before = t.fleet.events.listenerCount('change');
    const a = await openStream(url);
    const b = await openStream(url);
    await a.next((name) => name === 'snapshot');
    await b.next((name) => name === 'snapshot');
    expect(t.fleet.events.listenerCount('change')).toBe(before + 1);
    await a.cancel();
    await b.cancel();
    await expect.poll(() => t.fleet.events.listenerCount('change')).toBe(before);
    expect(t.app.agents.hub.events.listenerCount('status')).toBe(0);
    expect(t.app.agents.jobs.events.listenerCount('jobs')).toBe(0);
  });

  it('ends open streams when the controller shuts down', async () => {
    const stream = await openStream(url);
    await stream.next((name) => name === 'snapshot');
    const closed = t.app.close();
    await stream.ended;
    await closed;
  });

  it('is described in the OpenAPI document', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    // Routes registered at a prefix's root are listed with the trailing slash, as /v1/jobs/ is.
    const get = doc.paths['/v1/events/'].get;
    expect(Object.keys(get.responses['200'].content)).toEqual(['text/event-stream']);
    expect(get.description).toContain('snapshot');
    expect(get.description).toContain('host.removed');
  });
});
