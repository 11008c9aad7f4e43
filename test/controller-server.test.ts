// The controller as a real process on a real SQLite file and on PostgreSQL: concurrent
// allocation over HTTP, durability of every acknowledged allocation across SIGKILL, and the
// codes of writes the database itself refuses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lastAddress, mustParseCidr, overlaps } from '@crossdock/shared';
import { api, startController, type ControllerProcess } from './support/controller-process.ts';
import { startPostgres, type PostgresCluster } from './support/postgres.ts';
import { missing } from './support/requirements.ts';

const ADMIN = 'cda_integration-admin-token-000000';

function assertDisjoint(cidrs: string[]): void {
  const sorted = cidrs.map(mustParseCidr).sort((a, b) => a.network - b.network);
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1]!;
    expect(overlaps(previous, sorted[i]!), `${cidrs[i - 1]} overlaps ${cidrs[i]}`).toBe(false);
    expect(lastAddress(previous)).toBeLessThan(sorted[i]!.network);
  }
}

/** Runs SQL against the controller's database behind its back: another writer. */
async function writeBehind(database: string, sql: string): Promise<void> {
  if (database.startsWith('file:')) {
    const db = new Database(database.slice('file:'.length));
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

for (const store of ['sqlite', 'postgresql'] as const) {
  const skip = store === 'postgresql' && missing('postgres') !== null;
  describe.skipIf(skip)(`controller process on ${store === 'sqlite' ? 'a real SQLite file' : 'PostgreSQL'}`, () => {
    let dir: string;
    let cluster: PostgresCluster | undefined;
    let controller: ControllerProcess | undefined;
    /** A new database for one test: a file in the suite's directory, or a fresh PostgreSQL database. */
    const newDatabase = async (name: string) => (cluster ? cluster.createDatabase(name) : `file:${path.join(dir, `${name}.db`)}`);

    beforeAll(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'crossdock-server-'));
      if (store === 'postgresql') cluster = await startPostgres();
    });
    afterAll(async () => {
      await controller?.kill();
      await cluster?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('answers 200 concurrent mixed allocations with only 201 or 409, and the 201s never overlap', async () => {
      controller = await startController({ database: await newDatabase('burst'), adminToken: ADMIN });
      const call = api(controller.url, ADMIN);
      expect((await call('POST', '/v1/pools', { name: 'burst', cidr: '10.64.0.0/20', subnetPrefixLength: 24 })).status).toBe(201);
      for (let i = 1; i <= 8; i++) {
        expect((await call('POST', '/v1/hosts', { name: `h${i}`, address: `198.51.100.${10 + i}`, allocate: false })).status).toBe(201);
      }
      // Mixed: by prefix length (22..28) and explicit CIDRs that collide with each other and
      // with what first fit hands out; the pool holds 16 /24s, so it also runs out.
      const requests = Array.from({ length: 200 }, (_, i) => {
        const host = `h${(i % 8) + 1}`;
        const network = `n${i}`;
        if (i % 3 === 0) return { host, pool: 'burst', network, cidr: `10.64.${(i * 7) % 16}.${(i % 4) * 64}/26` };
        return { host, pool: 'burst', network, prefixLength: 22 + (i % 7) };
      });
      const answers = await Promise.all(requests.map((r) => call('POST', '/v1/subnets', r)));
      const statuses = new Set(answers.map((a) => a.status));
      expect(
        [...statuses].every((s) => s === 201 || s === 409),
        `statuses: ${[...statuses].join(',')}`,
      ).toBe(true);
      const created = answers.filter((a) => a.status === 201).map((a) => a.body.cidr as string);
      expect(created.length).toBeGreaterThan(20);
      expect(answers.some((a) => a.status === 409)).toBe(true);
      for (const a of answers.filter((x) => x.status === 409)) {
        expect(['SUBNET_OVERLAP', 'POOL_EXHAUSTED']).toContain(a.body.error.code);
      }
      assertDisjoint(created);
      const listed = await call('GET', '/v1/subnets?pool=burst');
      expect(listed.body.items.map((s: { cidr: string }) => s.cidr).sort()).toEqual([...created].sort());
      await controller.stop();
      controller = undefined;
    });

    it('keeps every acknowledged allocation when killed with SIGKILL mid-burst', async () => {
      const database = await newDatabase('kill');
      controller = await startController({ database, adminToken: ADMIN });
      let call = api(controller.url, ADMIN);
      expect((await call('POST', '/v1/pools', { name: 'kill', cidr: '10.80.0.0/14', subnetPrefixLength: 28 })).status).toBe(201);
      expect((await call('POST', '/v1/hosts', { name: 'victim', address: '198.51.100.50', allocate: false })).status).toBe(201);

      const acknowledged: Array<{ id: number; cidr: string }> = [];
      let killed = false;
      const worker = async (w: number) => {
        for (let i = 0; !killed; i++) {
          try {
            const r = await call('POST', '/v1/subnets', { host: 'victim', pool: 'kill', network: `w${w}-${i}`, prefixLength: 26 + (i % 3) });
            if (r.status === 201) acknowledged.push({ id: r.body.id, cidr: r.body.cidr });
            else throw new Error(`unexpected ${r.status} ${JSON.stringify(r.body)}`);
          } catch (error) {
            if (killed) return;
            throw error;
          }
        }
      };
      const workers = Array.from({ length: 16 }, (_, w) => worker(w));
      while (acknowledged.length < 300) await new Promise((r) => setTimeout(r, 5));
      killed = true;
      await controller.kill();
      await Promise.allSettled(workers);
      const acked = [...acknowledged];

      controller = await startController({ database, adminToken: ADMIN });
      call = api(controller.url, ADMIN);
      const listed = await call('GET', '/v1/subnets?host=victim');
      const present = new Map<number, string>(listed.body.items.map((s: { id: number; cidr: string }) => [s.id, s.cidr]));
      for (const a of acked) expect(present.get(a.id), `acknowledged subnet ${a.id} ${a.cidr} lost`).toBe(a.cidr);
      assertDisjoint([...present.values()]);
      // The index rebuilt at start-up agrees with the database: first fit continues past them.
      const next = await call('POST', '/v1/subnets', { host: 'victim', pool: 'kill', network: 'after-restart', prefixLength: 26 });
      expect(next.status).toBe(201);
      assertDisjoint([...present.values(), next.body.cidr]);
      // The next test starts its own: this one must not outlive the run.
      await controller.stop();
      controller = undefined;
      // Two controller starts and a 300-allocation burst: more than the default 30 s on a loaded machine.
    }, 90_000);

    it('answers a write the database refuses (another writer got there first) with the code the index would give', async () => {
      const database = await newDatabase('behind');
      controller = await startController({ database, adminToken: ADMIN, env: { CROSSDOCK_DEFAULT_POOL: '10.90.0.0/16' } });
      const call = api(controller.url, ADMIN);
      expect((await call('POST', '/v1/hosts', { name: 'h1', address: '198.51.100.61', allocate: false })).status).toBe(201);
      const now = store === 'sqlite' ? "'2026-12-02T12:00:00.000+00:00'" : 'now()';
      await writeBehind(
        database,
        `INSERT INTO "Host" ("name", "address", "interface", "labels", "tokenHash", "updatedAt") VALUES ('ghost', '198.51.100.62', 'eth0', '{}', 'x', ${now});
       INSERT INTO "Subnet" ("cidr", "prefixLength", "gateway", "network", "mode", "poolId", "hostId", "createdAt")
         SELECT '10.90.0.0/24', 24, '10.90.0.1', 'elsewhere', 'network', p."id", h."id", ${now} FROM "Pool" p, "Host" h WHERE p."name" = 'default' AND h."name" = 'ghost';`,
      );
      const host = await call('POST', '/v1/hosts', { name: 'ghost', address: '198.51.100.63', allocate: false });
      expect([host.status, host.body.error?.code]).toEqual([409, 'HOST_EXISTS']);
      const address = await call('POST', '/v1/hosts', { name: 'h2', address: '198.51.100.62', allocate: false });
      expect([address.status, address.body.error?.code]).toEqual([409, 'ADDRESS_IN_USE']);
      const subnet = await call('POST', '/v1/subnets', { host: 'h1', cidr: '10.90.0.0/24' });
      expect([subnet.status, subnet.body.error?.code]).toEqual([409, 'SUBNET_OVERLAP']);
      expect(subnet.body.error.message).toMatch(/database refused/);
      // Nothing of the refused writes was kept, and the controller goes on. (Its index does not
      // know the other writer's rows until it restarts: first fit would offer 10.90.0.0/24 again.)
      const next = await call('POST', '/v1/subnets', { host: 'h1', cidr: '10.90.1.0/24' });
      expect([next.status, next.body.cidr]).toEqual([201, '10.90.1.0/24']);
      await controller.stop();
      controller = undefined;
    });
  });
}
