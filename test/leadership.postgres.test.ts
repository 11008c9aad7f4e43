// Two controller processes on one PostgreSQL (issue 12): one leads, one stands by; the standby
// takes over when the leader is killed or cut off from the database, nothing acknowledged is
// lost or duplicated, the old leader stops writing at once and comes back as a standby, and
// executors given both URLs follow the leader without anything on their hosts being removed.
// One throwaway cluster for the file; a database per test.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { lastAddress, mustParseCidr, overlaps } from '@crossdock/shared';
import { REPO_ROOT, startController, type ControllerProcess } from './support/controller-process.ts';
import { startPostgres, type PostgresCluster } from './support/postgres.ts';
import { missing } from './support/requirements.ts';

const ADMIN = 'cda_leadership-admin-token-00000';
/** The issue's bounds. */
const TAKEOVER_MAX_MS = 5_000;
const EXECUTORS_ATTACHED_MAX_MS = 10_000;
const BURST_CLIENTS = 16;
const skip = missing('postgres');

interface Answer {
  status: number;
  body: any;
}

async function request(base: string, method: string, route: string, body?: unknown, timeoutMs = 10_000): Promise<Answer> {
  const response = await fetch(`${base}${route}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function health(base: string): Promise<{ role: string; leader: string | null } | null> {
  try {
    return (await request(base, 'GET', '/healthz', undefined, 2_000)).body;
  } catch {
    return null;
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs: number, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The new leader's steps, in ms after `from`: where a takeover spends its time. */
function timeline(output: string, from: number): string {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{') && /elected leader|loaded the fleet|serving as leader|stopped leading/.test(line))
    .map((line) => {
      const entry = JSON.parse(line) as { time: number; msg: string; tookMs?: number };
      return `  +${entry.time - from} ms ${entry.msg}${entry.tookMs === undefined ? '' : ` (${entry.tookMs} ms)`}`;
    })
    .join('\n');
}

function assertDisjoint(cidrs: string[]): void {
  expect(new Set(cidrs).size, 'a subnet listed twice').toBe(cidrs.length);
  const sorted = cidrs.map(mustParseCidr).sort((a, b) => a.network - b.network);
  for (let i = 1; i < sorted.length; i++) {
    expect(overlaps(sorted[i - 1]!, sorted[i]!)).toBe(false);
    expect(lastAddress(sorted[i - 1]!)).toBeLessThan(sorted[i]!.network);
  }
}

/**
 * A burst of allocation clients that follow the leader as the CLI does: NOT_LEADER naming a
 * leader goes there; an unreachable controller or an unknown leader tries the other URL.
 */
function allocationBurst(urls: () => string[], host: string, pool: string) {
  const acknowledged: Array<{ id: number; cidr: string; by: string; at: number }> = [];
  const refusedNotLeader: Array<{ by: string; at: number }> = [];
  let stopped = false;
  const worker = async (w: number) => {
    let target = urls()[0]!;
    for (let i = 0; !stopped; i++) {
      try {
        const answer = await request(target, 'POST', '/v1/subnets', { host, pool, network: `w${w}-${i}`, prefixLength: 28 });
        if (answer.status === 201) acknowledged.push({ id: answer.body.id, cidr: answer.body.cidr, by: target, at: Date.now() });
        else if (answer.status === 503 && answer.body?.error?.code === 'NOT_LEADER') {
          refusedNotLeader.push({ by: target, at: Date.now() });
          const leader = answer.body.error.leader as string | null;
          target = leader && leader !== target ? leader : (urls().find((u) => u !== target) ?? target);
          await new Promise((r) => setTimeout(r, 50));
        } else if (answer.status >= 500) {
          await new Promise((r) => setTimeout(r, 50));
        } else throw new Error(`unexpected answer ${answer.status}: ${JSON.stringify(answer.body)}`);
      } catch (error) {
        if ((error as Error).message.startsWith('unexpected answer')) throw error;
        // Unreachable (killed), reset mid-request, or timed out: not acknowledged; try elsewhere.
        target = urls().find((u) => u !== target) ?? target;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const done = Promise.all(Array.from({ length: BURST_CLIENTS }, (_, w) => worker(w)));
  return {
    acknowledged,
    refusedNotLeader,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

describe.skipIf(skip)('two controllers on one PostgreSQL', () => {
  let cluster: PostgresCluster;
  let dir: string;
  const controllers: ControllerProcess[] = [];
  const executors: ChildProcess[] = [];

  beforeAll(async () => {
    cluster = await startPostgres({ fsync: false });
    dir = mkdtempSync(path.join(tmpdir(), 'crossdock-leadership-'));
  }, 120_000);
  afterEach(async () => {
    for (const e of executors.splice(0)) if (e.exitCode === null && e.signalCode === null) e.kill('SIGKILL');
    await Promise.all(controllers.splice(0).map((c) => c.kill()));
  });
  afterAll(async () => {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A controller on the database; `name` tags its PostgreSQL sessions (application_name). */
  async function start(db: string, name: string, listen = '127.0.0.1:0'): Promise<ControllerProcess> {
    const url = `${db}?application_name=${name}`;
    const controller = await startController({
      dbFile: path.join(dir, 'unused.db'),
      adminToken: ADMIN,
      listen,
      env: { CROSSDOCK_DB: url, CROSSDOCK_LOG_LEVEL: 'info', CROSSDOCK_DEFAULT_POOL: 'none' },
    });
    controllers.push(controller);
    return controller;
  }

  async function leaderAndStandby(db: string): Promise<[ControllerProcess, ControllerProcess]> {
    const a = await start(db, 'ctl_a');
    await waitFor('a to lead', async () => (await health(a.url))?.role === 'leader', 15_000);
    const b = await start(db, 'ctl_b');
    expect(await health(b.url), b.output()).toMatchObject({ role: 'standby', leader: a.url });
    return [a, b];
  }

  it('a standby answers /healthz naming the leader and /v1 with 503 NOT_LEADER naming it', { timeout: 90_000 }, async () => {
    const db = await cluster.createDatabase();
    const [a, b] = await leaderAndStandby(db);
    expect(await health(a.url)).toMatchObject({ status: 'ok', role: 'leader', leader: a.url });
    for (const [method, route] of [
      ['GET', '/v1/pools'],
      ['POST', '/v1/hosts'],
      ['GET', '/v1/agent/jobs'],
      ['GET', '/ui'],
    ] as const) {
      const answer = await request(b.url, method, route, method === 'POST' ? { name: 'x' } : undefined);
      expect(answer.status, `${method} ${route}`).toBe(503);
      expect(answer.body.error.code).toBe('NOT_LEADER');
      expect(answer.body.error.leader).toBe(a.url);
      expect(answer.body.error.message).toContain(a.url);
    }
    // The leader serves; what it wrote, the standby does not hold in memory (it loads at takeover).
    expect((await request(a.url, 'POST', '/v1/pools', { name: 'p', cidr: '10.20.0.0/16' })).status).toBe(201);
    // A graceful stop hands over at once: the lock's session ends with the process.
    await a.stop();
    await waitFor('b to lead after a stopped', async () => (await health(b.url))?.role === 'leader', TAKEOVER_MAX_MS);
    expect((await request(b.url, 'GET', '/v1/pools/p')).body).toMatchObject({ name: 'p', cidr: '10.20.0.0/16' });
  });

  it('SIGKILL of the leader mid-burst: the standby leads within 5 s, every acknowledged allocation is kept, none overlap, the old leader returns as standby', {
    timeout: 180_000,
  }, async () => {
    const db = await cluster.createDatabase();
    const [a, b] = await leaderAndStandby(db);
    expect((await request(a.url, 'POST', '/v1/pools', { name: 'burst', cidr: '10.64.0.0/14', subnetPrefixLength: 28 })).status).toBe(201);
    expect((await request(a.url, 'POST', '/v1/hosts', { name: 'h1', address: '198.51.100.11', allocate: false })).status).toBe(201);

    const burst = allocationBurst(() => [a.url, b.url], 'h1', 'burst');
    await waitFor('acknowledged allocations on a', async () => burst.acknowledged.length >= 50, 60_000);
    const killedAt = Date.now();
    await a.kill();
    const led = await waitFor('b to lead', async () => ((await health(b.url))?.role === 'leader' ? Date.now() : null), TAKEOVER_MAX_MS + 5_000, 20);
    const takeoverMs = led - killedAt;
    await new Promise((r) => setTimeout(r, 500)); // the log lines of the takeover, still in the pipe
    console.log(`takeover after SIGKILL: ${takeoverMs} ms (bound ${TAKEOVER_MAX_MS} ms)\n${timeline(b.output(), killedAt)}`);
    expect(takeoverMs).toBeLessThan(TAKEOVER_MAX_MS);
    await waitFor('allocations acknowledged by b', async () => burst.acknowledged.filter((x) => x.by === b.url).length >= 30, 30_000);
    await burst.stop();

    const listed = (await request(b.url, 'GET', '/v1/subnets?pool=burst')).body.items as Array<{ id: number; cidr: string }>;
    const byId = new Map(listed.map((s) => [s.id, s.cidr]));
    for (const ack of burst.acknowledged) expect(byId.get(ack.id), `acknowledged ${ack.cidr} (id ${ack.id}) by ${ack.by}`).toBe(ack.cidr);
    expect(new Set(burst.acknowledged.map((x) => x.id)).size).toBe(burst.acknowledged.length);
    assertDisjoint(listed.map((s) => s.cidr));

    // The killed controller comes back as a standby naming the new leader.
    const again = await start(db, 'ctl_a2');
    expect(await health(again.url)).toMatchObject({ role: 'standby', leader: b.url });
    expect((await request(again.url, 'GET', '/v1/pools')).body.error).toMatchObject({ code: 'NOT_LEADER', leader: b.url });
  });

  it("the leader's database connection cut mid-burst: it stops writing at once, the standby leads within 5 s, nothing acknowledged is lost, and the old leader rejoins as standby", {
    timeout: 180_000,
  }, async () => {
    const db = await cluster.createDatabase();
    const [a, b] = await leaderAndStandby(db);
    expect((await request(a.url, 'POST', '/v1/pools', { name: 'cut', cidr: '10.68.0.0/14', subnetPrefixLength: 28 })).status).toBe(201);
    expect((await request(a.url, 'POST', '/v1/hosts', { name: 'h1', address: '198.51.100.11', allocate: false })).status).toBe(201);

    const burst = allocationBurst(() => [a.url, b.url], 'h1', 'cut');
    await waitFor('acknowledged allocations on a', async () => burst.acknowledged.length >= 50, 60_000);
    // Every session of a: the lock's and the pool's.
    const cutAt = Date.now();
    const terminated = await cluster.admin<{ pid: number }>(
      // A subquery: the planner may evaluate quals in any order, and must not terminate this session.
      `SELECT pid FROM (SELECT pid FROM pg_stat_activity WHERE application_name = 'ctl_a' AND pid <> pg_backend_pid() OFFSET 0) a WHERE pg_terminate_backend(pid)`,
    );
    expect(terminated.rowCount).toBeGreaterThan(0);
    const led = await waitFor('b to lead', async () => ((await health(b.url))?.role === 'leader' ? Date.now() : null), TAKEOVER_MAX_MS + 5_000, 20);
    console.log(`takeover after the leader's connections were cut: ${led - cutAt} ms (bound ${TAKEOVER_MAX_MS} ms)`);
    expect(led - cutAt).toBeLessThan(TAKEOVER_MAX_MS);
    await waitFor('allocations acknowledged by b', async () => burst.acknowledged.filter((x) => x.by === b.url).length >= 30, 30_000);
    await burst.stop();

    // a stopped at once: nothing it acknowledged was answered after the cut had reached it
    // (a request committing in the instant of the cut may still succeed, the FOR SHARE fence
    // orders it before b's term), and it answers NOT_LEADER now, naming b.
    const lateAcks = burst.acknowledged.filter((x) => x.by === a.url && x.at > cutAt + 1_000);
    expect(lateAcks, 'allocations a acknowledged more than 1 s after its connections were cut').toEqual([]);
    // a swaps its leader app for a standby app on the same port: a connection made in that
    // instant is refused, and is tried again. A request reaching the closing leader app on an
    // open connection is answered NOT_LEADER as well (CI once met Fastify's bare 503 there,
    // before the app routed what arrives while closing).
    const refusal = await waitFor(
      'a to answer',
      async () => request(a.url, 'POST', '/v1/subnets', { host: 'h1', pool: 'cut', network: 'late', prefixLength: 28 }).catch(() => null),
      5_000,
    );
    expect(refusal.status).toBe(503);
    expect(refusal.body.error.code).toBe('NOT_LEADER');
    await waitFor(
      'a to rejoin as standby naming b',
      async () => {
        const h = await health(a.url);
        return h?.role === 'standby' && h.leader === b.url;
      },
      15_000,
    );
    expect(a.output()).toMatch(/stopped leading: lost the database connection/);

    const listed = (await request(b.url, 'GET', '/v1/subnets?pool=cut')).body.items as Array<{ id: number; cidr: string }>;
    const byId = new Map(listed.map((s) => [s.id, s.cidr]));
    for (const ack of burst.acknowledged) expect(byId.get(ack.id), `acknowledged ${ack.cidr} (id ${ack.id}) by ${ack.by}`).toBe(ack.cidr);
    assertDisjoint(listed.map((s) => s.cidr));
  });

  it("a term that moved on refuses the old leader's write transaction, even before it notices (the fence)", { timeout: 90_000 }, async () => {
    const db = await cluster.createDatabase();
    const a = await start(db, 'ctl_a');
    await waitFor('a to lead', async () => (await health(a.url))?.role === 'leader', 15_000);
    expect((await request(a.url, 'POST', '/v1/pools', { name: 'f', cidr: '10.72.0.0/16', subnetPrefixLength: 28 })).status).toBe(201);
    expect((await request(a.url, 'POST', '/v1/hosts', { name: 'h1', address: '198.51.100.11', allocate: false })).status).toBe(201);
    // Another term begins behind a's back (as a new leader's election would write it), while a
    // still holds its lock connection and believes it leads.
    const client = new pg.Client({ connectionString: db });
    await client.connect();
    try {
      await client.query('UPDATE "Leadership" SET term = term + 1 WHERE id = 1');
      const answer = await request(a.url, 'POST', '/v1/subnets', { host: 'h1', pool: 'f', network: 'n', prefixLength: 28 });
      expect(answer.status).toBe(503);
      expect(answer.body.error.code).toBe('NOT_LEADER');
      const { rows } = await client.query('SELECT count(*)::int AS n FROM "Subnet"');
      expect(rows[0].n).toBe(0);
    } finally {
      await client.end();
    }
    expect(a.output()).toMatch(/another controller was elected/);
  });

  it('executors given both URLs follow a takeover: all attached to the new leader within 10 s of the SIGKILL, and nothing on a host is removed', {
    timeout: 180_000,
  }, async () => {
    const db = await cluster.createDatabase();
    const [a, b] = await leaderAndStandby(db);
    expect((await request(a.url, 'POST', '/v1/pools', { name: 'fleet', cidr: '10.80.0.0/16' })).status).toBe(201);
    const HOSTS = 6;
    const tokens: string[] = [];
    for (let i = 1; i <= HOSTS; i++) {
      const answer = await request(a.url, 'POST', '/v1/hosts', { name: `node-${i}`, address: `198.51.100.${10 + i}`, pool: 'fleet' });
      expect(answer.status).toBe(201);
      tokens.push(answer.body.token);
    }
    const attachments: Array<Array<{ url: string; at: number }>> = tokens.map(() => []);
    tokens.forEach((token, i) => {
      // b first: a standby, which sends the executor on to a at once.
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/sim-executor-process.ts', `${b.url},${a.url}`, token], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      executors.push(child);
      child.stdout!.on('data', (d: Buffer) => {
        for (const match of d.toString().matchAll(/attached (\S+)/g)) attachments[i]!.push({ url: match[1]!, at: Date.now() });
      });
    });
    const converged = async (base: string) => {
      const hosts = (await request(base, 'GET', '/v1/hosts')).body?.items as Array<{ status: string; generation: { desired: number; applied: number } }>;
      return hosts?.length === HOSTS && hosts.every((h) => h.status === 'online' && h.generation.applied === h.generation.desired && h.generation.desired > 0);
    };
    await waitFor('every executor online on a and applied', () => converged(a.url), 60_000, 200);
    expect(attachments.every((list) => list.at(-1)?.url === a.url)).toBe(true);
    const jobsBefore = (await request(a.url, 'GET', '/v1/jobs?limit=1')).body.items[0]?.id ?? 0;

    const killedAt = Date.now();
    await a.kill();
    const attachedAll = await waitFor(
      'every executor attached to b',
      async () => (attachments.every((list) => list.some((x) => x.url === b.url && x.at > killedAt)) ? Date.now() : null),
      EXECUTORS_ATTACHED_MAX_MS + 10_000,
      50,
    );
    const latest = Math.max(...attachments.map((list) => list.find((x) => x.url === b.url && x.at > killedAt)!.at)) - killedAt;
    console.log(`all ${HOSTS} executors attached to the new leader ${latest} ms after the SIGKILL (bound ${EXECUTORS_ATTACHED_MAX_MS} ms)`);
    expect(attachedAll - killedAt).toBeLessThan(EXECUTORS_ATTACHED_MAX_MS + 1_000);
    expect(latest).toBeLessThan(EXECUTORS_ATTACHED_MAX_MS);

    await waitFor('every executor online on b and applied', () => converged(b.url), 30_000, 200);
    // Nothing on a host was removed: no job of the new leader deletes a route or a network.
    const jobs = (await request(b.url, 'GET', '/v1/jobs?limit=500')).body.items as Array<{ id: number }>;
    for (const job of jobs.filter((j) => j.id > jobsBefore)) {
      const detail = (await request(b.url, 'GET', `/v1/jobs/${job.id}`)).body as { results: Array<{ command: { kind: string } }> };
      const removals = detail.results.filter((r) => ['route.delete', 'docker.network.remove'].includes(r.command.kind));
      expect(removals, `job ${job.id} of the new leader`).toEqual([]);
    }
    // And nothing is left to do: each host's plan on the new leader is empty.
    for (let i = 1; i <= HOSTS; i++) {
      const plan = await request(b.url, 'GET', `/v1/hosts/node-${i}/plan`);
      expect(plan.body.commands, `plan of node-${i}`).toEqual([]);
    }
  });
});
