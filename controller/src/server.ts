// Entry point: reads the configuration, opens the database, builds the app, listens.
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from './app.ts';
import { newAdminToken } from './auth/tokens.ts';
import { ConfigError, USAGE, loadConfig, type ControllerConfig } from './config.ts';
import { describeDatabase, openDatabase } from './db/client.ts';
import { StorageHealth } from './db/storage.ts';
import { Fleet, loadFleetRows } from './fleet.ts';
import { DEFAULT_POOL_NAME, Ipam } from './ipam/ipam.ts';

function fail(message: string): never {
  console.error(`crossdock-controller: ${message}`);
  process.exit(2);
}

function prepareDataDirectory(file: string): string {
  const dir = path.dirname(file);
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    if (existsSync(file)) accessSync(file, constants.R_OK | constants.W_OK);
  } catch (error) {
    fail(
      `database ${file} is not writable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); set CROSSDOCK_DB to a file in a writable directory`,
    );
  }
  return dir;
}

/** The admin token: configured, or the one saved beside the database, or a new one (printed once). */
function resolveAdminToken(config: ControllerConfig, dir: string | null): { token: string; announce: string } {
  if (config.adminToken) return { token: config.adminToken, announce: 'admin token: from configuration' };
  if (dir === null) {
    // No file beside a PostgreSQL database, and every controller on it must accept the same token.
    fail(
      'with a PostgreSQL database the admin token must be configured (the same on every controller of that database): set CROSSDOCK_ADMIN_TOKEN or --admin-token, for example to the output of `openssl rand -hex 32`',
    );
  }
  const file = path.join(dir, 'admin-token');
  if (existsSync(file)) {
    return { token: readFileSync(file, 'utf8').trim(), announce: `admin token: saved in ${file}` };
  }
  const token = newAdminToken();
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return { token, announce: `admin token (generated now, shown once, saved in ${file}):\n  ${token}` };
}

async function main(): Promise<void> {
  let config: ControllerConfig | 'help';
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  if (config === 'help') {
    console.log(USAGE);
    return;
  }
  const database = describeDatabase(config.database);
  const dir = config.database.kind === 'sqlite' ? prepareDataDirectory(config.database.file) : null;
  if (dir === null) resolveAdminToken(config, dir); // refuses before touching the database
  const { prisma, migrations } = await openDatabase(config.database).catch((error: Error) =>
    fail(`cannot open database ${database}: ${error.message || String(error)}`),
  );
  const firstStart = migrations.alreadyApplied === 0;
  const admin = resolveAdminToken(config, dir);
  const storage = new StorageHealth(database);
  const ipam = new Ipam(Fleet.fromRows(await loadFleetRows(prisma)), prisma, storage);
  if (firstStart && config.defaultPool && !ipam.hasPool(DEFAULT_POOL_NAME)) {
    await ipam.createPool({ name: DEFAULT_POOL_NAME, cidr: config.defaultPool, subnetPrefixLength: 24, reserved: [] });
  }

  // The build writes the dashboard to controller/dist/ui, beside dist/server.mjs; from the sources it is ../dist/ui too.
  const uiDir = fileURLToPath(new URL('../dist/ui/', import.meta.url));
  const app = await buildApp({
    prisma,
    ipam,
    adminToken: admin.token,
    metricsToken: config.metricsToken,
    maxSyncing: config.maxSyncing,
    logger: { level: config.logLevel },
    uiDir,
    advertiseUrl: config.advertiseUrl,
  });
  const shutdown = async (signal: string) => {
    app.log.info({ signal }, 'shutting down');
    await app.close();
    await prisma.$disconnect();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    fail(`cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`);
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const shown = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  console.log(`crossdock controller listening on http://${shown}:${port} (database ${database})`);
  console.log(`API reference: http://${shown}:${port}/docs`);
  console.log(`dashboard: http://${shown}:${port}/ui${existsSync(uiDir) ? '' : ' (not built: run `npm run build`)'}`);
  console.log(admin.announce);
}

await main();
