// For tests: a controller app on a fresh SQLite file in a temp directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildApp } from './app.ts';
import { openDatabase } from './db/client.ts';
import { Fleet, loadFleetRows } from './fleet.ts';
import { DEFAULT_POOL_NAME, Ipam } from './ipam/ipam.ts';
import { mustParseCidr } from '@crossdock/shared';

export const TEST_ADMIN_TOKEN = 'cda_test-admin-token-0123456789';

export async function createTestDatabase(options: { defaultPool?: string | null } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'crossdock-test-'));
  const file = path.join(dir, 'crossdock.db');
  const { prisma } = await openDatabase(file);
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
