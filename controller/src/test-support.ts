// For tests: a controller app on a fresh database: a SQLite file in a temp directory, or, inside
// describeEachStore's PostgreSQL half, a fresh database on a throwaway PostgreSQL cluster.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
// The cluster is shared test infrastructure (the process-level suites in test/ use it too):
// the one place these in-package tests reach outside their package.
import { startPostgres, type PostgresCluster } from '../../test/support/postgres.ts';
import { missing } from '../../test/support/requirements.ts';
import { buildApp } from './app.ts';
import { openDatabase, type Dialect } from './db/client.ts';
import { applyPostgresMigrations } from './db/migrate-postgres.ts';
import { Fleet, loadFleetRows } from './fleet.ts';
import { DEFAULT_POOL_NAME, Ipam } from './ipam/ipam.ts';
import { mustParseCidr } from '@crossdock/shared';

export const TEST_ADMIN_TOKEN = 'cda_test-admin-token-0123456789';
/** Connections per test database on PostgreSQL (the cluster allows 200 in all). */
const TEST_PG_POOL_SIZE = 4;

export const STORES: readonly Dialect[] = ['sqlite', 'postgresql'];
let activeStore: Dialect = 'sqlite';
let cluster: Promise<PostgresCluster> | undefined;
let migratedTemplate: Promise<string> | undefined;
let clusterStopRegistered = false;

/** The store createTestDatabase uses now: PostgreSQL inside describeEachStore's PostgreSQL half. */
export function currentStore(): Dialect {
  return activeStore;
}

/**
 * Runs the same suite on each store: `on sqlite` and `on postgresql` (a throwaway cluster for
 * the whole file, a fresh database per createTestDatabase). Where PostgreSQL cannot run, its
 * half is skipped with one line, and fails under CI.
 */
export function describeEachStore(body: (store: Dialect) => void): void {
  if (!clusterStopRegistered) {
    clusterStopRegistered = true;
    afterAll(async () => {
      const started = cluster;
      cluster = undefined;
      migratedTemplate = undefined;
      await (await started?.catch(() => undefined))?.stop();
    });
  }
  for (const store of STORES) {
    const skip = store === 'postgresql' && missing('postgres') !== null;
    describe.skipIf(skip)(`on ${store}`, () => {
      beforeAll(() => {
        activeStore = store;
      });
      afterAll(() => {
        activeStore = 'sqlite';
      });
      body(store);
    });
  }
}

/** A fresh, migrated PostgreSQL database: a copy of a template migrated once per file. */
async function freshPostgresDatabase(): Promise<string> {
  cluster ??= startPostgres();
  const pg = await cluster;
  migratedTemplate ??= (async () => {
    const url = await pg.createDatabase('crossdock_template');
    await applyPostgresMigrations(url);
    return new URL(url).pathname.slice(1);
  })();
  return pg.createDatabase('crossdock', await migratedTemplate);
}

export async function createTestDatabase(options: { defaultPool?: string | null } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'crossdock-test-'));
  const file = path.join(dir, 'crossdock.db');
  const { prisma } = await openDatabase(
    activeStore === 'postgresql' ? { kind: 'postgresql', url: await freshPostgresDatabase(), poolSize: TEST_PG_POOL_SIZE } : { kind: 'sqlite', file },
  );
  const ipam = new Ipam(Fleet.fromRows(await loadFleetRows(prisma)), prisma);
  const defaultPool = options.defaultPool === undefined ? '10.100.0.0/16' : options.defaultPool;
  if (defaultPool) {
    await ipam.createPool({ name: DEFAULT_POOL_NAME, cidr: mustParseCidr(defaultPool), subnetPrefixLength: 24, reserved: [] });
  }
  return {
    dir,
    file,
    prisma,
    ipam,
    fleet: ipam.fleet,
    async close() {
      await prisma.$disconnect();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function createTestApp(options: { defaultPool?: string | null } = {}) {
  const db = await createTestDatabase(options);
  const app = await buildApp({ prisma: db.prisma, ipam: db.ipam, adminToken: TEST_ADMIN_TOKEN });
  await app.ready();
  const auth = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
  return {
    ...db,
    app,
    auth,
    async close() {
      await app.close();
      await db.close();
    },
  };
}
