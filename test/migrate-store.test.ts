// `npm run migrate-store`: a populated SQLite database (made by a real controller process)
// copied into PostgreSQL, then served by a controller on PostgreSQL exactly as before: the same
// pools, hosts, subnets and jobs, the same ids, host tokens that still work, and first fit and
// ids that continue after the copied rows. A target that holds anything is refused and left as it was.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, REPO_ROOT, startController, type ControllerProcess } from './support/controller-process.ts';
import { startPostgres, type PostgresCluster } from './support/postgres.ts';
import { missing } from './support/requirements.ts';

const ADMIN = 'cda_migrate-store-admin-token-0000';
const run = promisify(execFile);

async function migrateStore(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'controller/src/migrate-store.ts', ...args], {
      cwd: REPO_ROOT,
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Everything an operator sees, minus what depends on the moment (status, last seen). */
async function everything(call: ReturnType<typeof api>) {
  const hosts = (await call('GET', '/v1/hosts')).body.items.map(({ status: _s, lastSeenAt: _l, executor: _e, ...rest }: Record<string, unknown>) => rest);
  return {
    pools: (await call('GET', '/v1/pools')).body.items,
    hosts,
    subnets: (await call('GET', '/v1/subnets')).body.items,
    jobs: (await call('GET', '/v1/jobs')).body.items,
  };
}

describe.skipIf(missing('postgres') !== null)('npm run migrate-store (SQLite to PostgreSQL)', () => {
  let dir: string;
  let cluster: PostgresCluster;
  let controller: ControllerProcess | undefined;
  let sqliteFile: string;
  let before: Awaited<ReturnType<typeof everything>>;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'crossdock-migrate-store-'));
    cluster = await startPostgres();
    // A populated store, made the way operators make one: through the API of a real controller.
    sqliteFile = path.join(dir, 'crossdock.db');
    controller = await startController({ dbFile: sqliteFile, adminToken: ADMIN });
    const call = api(controller.url, ADMIN);
    expect(
      (await call('POST', '/v1/pools', { name: 'lab', cidr: '10.1.0.0/16', reserved: ['10.1.0.0/24', '10.1.5.7/32'], allowFrom: ['192.0.2.0/24'] })).status,
    ).toBe(201);
    for (let i = 1; i <= 5; i++) {
      const r = await call('POST', '/v1/hosts', { name: `node-${i}`, address: `198.51.100.${10 + i}`, labels: { rack: `r${i % 2}` } });
      expect(r.status).toBe(201);
      tokens[`node-${i}`] = r.body.token;
    }
    for (let i = 1; i <= 5; i++) expect((await call('POST', '/v1/subnets', { host: `node-${i}`, pool: 'lab', network: 'lab' })).status).toBe(201);
    // Gaps in the ids, a rotated token, a changed address: the copy must keep all of it.
    const gone = await call('POST', '/v1/subnets', { host: 'node-1', network: 'gone' });
    expect((await call('DELETE', `/v1/subnets/${gone.body.id}`)).status).toBe(204);
    expect((await call('DELETE', '/v1/hosts/node-5')).status).toBe(204);
    delete tokens['node-5'];
    tokens['node-2'] = (await call('POST', '/v1/hosts/node-2/token')).body.token;
    expect((await call('PATCH', '/v1/hosts/node-3', { address: '198.51.100.33' })).status).toBe(200);
    await controller.stop();
    controller = undefined;
    // A job with its results, as the reconciler records them.
    const db = new Database(sqliteFile);
    db.prepare(
      `INSERT INTO "Job" ("hostId", "generation", "status", "reason", "commands", "commandCount", "results", "createdAt", "finishedAt")
       SELECT "id", 1, 'succeeded', 'connect', '[]', 0, '[]', '2026-12-01T10:00:00.000+00:00', '2026-12-01T10:00:01.000+00:00' FROM "Host" WHERE "name" = 'node-1'`,
    ).run();
    db.close();
    controller = await startController({ dbFile: sqliteFile, adminToken: ADMIN });
    before = await everything(api(controller.url, ADMIN));
    await controller.stop();
    controller = undefined;
    expect(before.jobs).toHaveLength(1);
  }, 180_000);

  afterAll(async () => {
    await controller?.kill();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies everything; a controller on PostgreSQL serves it as before, tokens included, and continues after it', async () => {
    const target = await cluster.createDatabase('moved');
    const result = await migrateStore('--from', `file:${sqliteFile}`, '--to', target);
    expect(result.code, result.stderr).toBe(0);
    const reserved = before.pools.reduce((n: number, p: { reserved: string[] }) => n + p.reserved.length, 0);
    expect(result.stdout).toContain(
      `: ${before.pools.length} pools, ${reserved} reserved ranges, ${before.hosts.length} hosts, ${before.subnets.length} subnets, ${before.jobs.length} jobs`,
    );

    controller = await startController({ database: target, adminToken: ADMIN });
    const call = api(controller.url, ADMIN);
    expect(await everything(call)).toEqual(before);
    // Host tokens (stored as hashes) still authenticate their hosts; the rotated-away one does not.
    for (const token of Object.values(tokens)) expect((await api(controller.url, token)('GET', '/v1/agent/jobs')).status).toBe(200);
    expect((await api(controller.url, 'cdh_not-a-token-of-anyone-0000000')('GET', '/v1/agent/jobs')).status).toBe(401);
    // First fit continues past the copied subnets, and new rows get new ids.
    const next = await call('POST', '/v1/subnets', { host: 'node-4', pool: 'lab', network: 'after' });
    expect(next.status).toBe(201);
    expect(next.body.cidr).toBe('10.1.6.0/24');
    expect(next.body.id).toBeGreaterThan(Math.max(...before.subnets.map((s: { id: number }) => s.id)));
    const host = await call('POST', '/v1/hosts', { name: 'node-9', address: '198.51.100.99' });
    expect(host.status).toBe(201);
    expect(host.body.host.id).toBeGreaterThan(Math.max(...before.hosts.map((h: { id: number }) => h.id)));
    await controller.stop();
    controller = undefined;
  }, 180_000);

  it('refuses a target that is not empty, and leaves it as it was', async () => {
    const target = await cluster.createDatabase('used');
    expect((await migrateStore('--from', `file:${sqliteFile}`, '--to', target)).code).toBe(0);
    const again = await migrateStore('--from', `file:${sqliteFile}`, '--to', target);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      new RegExp(
        `refusing to write into postgresql://.*: it is not empty \\(${before.pools.length} Pool rows, .*${before.subnets.length} Subnet rows, 1 Job rows\\); nothing was copied`,
      ),
    );

    const foreign = await cluster.createDatabase('foreign');
    const client = new pg.Client({ connectionString: foreign });
    await client.connect();
    await client.query('CREATE TABLE invoices (id int)');
    await client.end();
    const other = await migrateStore('--from', `file:${sqliteFile}`, '--to', foreign);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/tables that are not crossdock's \(public\.invoices\)/);
    const left = new pg.Client({ connectionString: foreign });
    await left.connect();
    const { rows } = await left.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1");
    await left.end();
    expect(rows.map((r) => r.table_name)).toEqual(['invoices']);
  }, 180_000);

  it('says what is wrong with its arguments', async () => {
    const missingFile = await migrateStore('--from', `file:${path.join(dir, 'nope.db')}`, '--to', cluster.url('postgres'));
    expect([missingFile.code, missingFile.stderr]).toEqual([1, expect.stringMatching(/there is no SQLite database at .*nope\.db/)]);
    const noTo = await migrateStore('--from', `file:${sqliteFile}`);
    expect([noTo.code, noTo.stderr]).toEqual([2, expect.stringMatching(/both --from and --to are needed/)]);
    const bad = await migrateStore('--from', `file:${sqliteFile}`, '--to', 'mysql://x/y');
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/neither a SQLite file nor a PostgreSQL URL/)]);
    const same = await migrateStore('--from', `file:${sqliteFile}`, '--to', `file:${sqliteFile}`);
    expect([same.code, same.stderr]).toEqual([1, expect.stringMatching(/the same database/)]);
  }, 120_000);
});
