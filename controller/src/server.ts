// Entry point: reads the configuration, opens the database, takes part in the leader election
// (with SQLite the controller simply leads), and serves the app its role calls for.
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { buildApp } from './app.ts';
import { newAdminToken } from './auth/tokens.ts';
import { ConfigError, USAGE, loadConfig, type ControllerConfig } from './config.ts';
import { describeDatabase, openDatabase } from './db/client.ts';
import { StorageHealth } from './db/storage.ts';
import { Fleet, loadFleetRows } from './fleet.ts';
import { DEFAULT_POOL_NAME, Ipam } from './ipam/ipam.ts';
import { SoleLeadership, type Leadership } from './leadership/leadership.ts';
import { connectLockClient, PostgresLeadership } from './leadership/postgres.ts';
import { RoleServer } from './leadership/role-server.ts';
import { buildStandbyApp } from './leadership/standby-app.ts';
import { ControllerTls, TlsError, subjectAltNames } from './tls.ts';

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

/**
 * The HTTPS server Fastify runs on. A client speaking plain HTTP to it gets a plain-HTTP 400
 * saying to use https:// (not a connection reset it would have to guess at): OpenSSL reports
 * such a first record as "http request", and nothing was encrypted yet, so the raw socket can
 * still answer.
 */
function httpsServerFactory(tls: ControllerTls) {
  return (handler: (request: never, response: never) => void) => {
    const server = https.createServer({ cert: tls.material.cert, key: tls.material.key, ALPNProtocols: ['http/1.1'] }, handler as never);
    server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: TLSSocket) => {
      const raw = (socket as TLSSocket & { _parent?: import('node:net').Socket })._parent;
      if (error.code !== 'ERR_SSL_HTTP_REQUEST' || !raw || raw.destroyed) return;
      const body = JSON.stringify({
        error: { code: 'TLS_REQUIRED', message: 'this controller speaks HTTPS only; use an https:// URL (curl --cacert data/ca.pem https://...)' },
      });
      raw.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
    tls.onRenew((material) => server.setSecureContext({ cert: material.cert, key: material.key }));
    return server;
  };
}

/** The advertised URL by default: the listen address, or this machine's first external IPv4 address when listening on all. */
export function defaultAdvertiseUrl(host: string, port: number, scheme: 'http' | 'https' = 'https'): string {
  if (host !== '0.0.0.0' && host !== '::') return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal);
  return `${scheme}://${external?.address ?? '127.0.0.1'}:${port}`;
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
  // The CA and server certificate live beside a SQLite database; with PostgreSQL, in ./data
  // (every controller of that database copies the same ca.pem and ca-key.pem there: README, TLS).
  let tls: ControllerTls | undefined;
  let tlsChanges: string[] = [];
  if (config.tls.mode !== 'off') {
    const tlsDir = config.tlsDir ?? dir ?? path.resolve('data');
    mkdirSync(tlsDir, { recursive: true });
    const source =
      config.tls.mode === 'operator'
        ? ({ kind: 'operator', certFile: config.tls.certFile, keyFile: config.tls.keyFile } as const)
        : ({ kind: 'generated', dir: tlsDir, sans: subjectAltNames(config.host, config.advertiseUrl, config.tls.sans) } as const);
    try {
      ({ tls, changes: tlsChanges } = await ControllerTls.open(source));
    } catch (error) {
      if (error instanceof TlsError) fail(error.message);
      throw error;
    }
  }
  const scheme = tls ? 'https' : 'http';
  const serverFactory = tls ? httpsServerFactory(tls) : undefined;
  const storage = new StorageHealth(database);
  const log = pino({ level: config.logLevel });
  const advertiseUrl = config.advertiseUrl ?? defaultAdvertiseUrl(config.host, config.port, scheme);
  const { database: db } = config;
  const leadership: Leadership =
    db.kind === 'postgresql'
      ? new PostgresLeadership({ advertiseUrl, connect: () => connectLockClient(db.url), log: log.child({ component: 'leadership' }) })
      : new SoleLeadership(advertiseUrl);
  // The build writes the dashboard to controller/dist/ui, beside dist/server.mjs; from the sources it is ../dist/ui too.
  const uiDir = fileURLToPath(new URL('../dist/ui/', import.meta.url));
  let createDefaultPool = firstStart && config.defaultPool !== null;

  /** A new term: the state as the database has it now (the previous leader's last commit included). */
  const leaderApp = async (term: number) => {
    const started = Date.now();
    const rows = await loadFleetRows(prisma);
    const ipam = new Ipam(Fleet.fromRows(rows, config.vxlan), prisma, storage);
    if (leadership.fence) ipam.writer.fence = (tx) => leadership.fence!(tx);
    if (createDefaultPool && config.defaultPool && !ipam.hasPool(DEFAULT_POOL_NAME)) {
      await ipam.createPool({ name: DEFAULT_POOL_NAME, cidr: config.defaultPool, subnetPrefixLength: 24, reserved: [] });
    }
    createDefaultPool = false;
    log.info(
      { term, pools: rows.pools.length, hosts: rows.hosts.length, subnets: rows.subnets.length, tookMs: Date.now() - started },
      'loaded the fleet from the database',
    );
    return buildApp({
      prisma,
      ipam,
      adminToken: admin.token,
      metricsToken: config.metricsToken,
      maxSyncing: config.maxSyncing,
      logger: log,
      uiDir,
      advertiseUrl: config.advertiseUrl,
      leadership,
      ...(tls && serverFactory ? { tls, serverFactory } : {}),
    });
  };
  /** A leader's app over an empty fleet, built and thrown away: nothing is loaded, started or written. */
  const warmUp = async () => {
    const ipam = new Ipam(Fleet.fromRows({ pools: [], hosts: [], subnets: [] }, config.vxlan), prisma, new StorageHealth(database));
    const app = await buildApp({
      prisma,
      ipam,
      adminToken: admin.token,
      logger: log.child({ warmUp: true }, { level: 'warn' }),
      uiDir,
      startReconciler: false,
    });
    await app.ready();
    await app.close();
  };
  const roles = new RoleServer({
    host: config.host,
    port: config.port,
    leadership,
    log,
    leaderApp,
    standbyApp: () => buildStandbyApp({ leadership, logger: log, serverFactory }),
    listenFirst: config.port === 0 && config.advertiseUrl === undefined,
    warmUp,
    scheme,
    onPort: (port) => {
      if (config.advertiseUrl === undefined) leadership.advertiseUrl = defaultAdvertiseUrl(config.host, port, scheme);
    },
  });
  const shutdown = async (signal: string) => {
    log.info({ signal }, 'shutting down');
    await roles.stop();
    await prisma.$disconnect();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  try {
    await roles.start();
  } catch (error) {
    fail(`cannot listen on ${config.host}:${config.port}: ${(error as Error).message}`);
  }
  const port = roles.port;
  const shown = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  for (const change of tlsChanges) log.info(change);
  if (!tls) {
    log.warn(
      'TLS is off (CROSSDOCK_TLS=off): tokens and jobs cross the network in clear text; run this only behind a TLS-terminating proxy, with CROSSDOCK_ADVERTISE_URL set to its https:// URL',
    );
  }
  const hostPart = shown.includes(':') ? `[${shown}]` : shown;
  console.log(`crossdock controller listening on ${scheme}://${hostPart}:${port} (database ${database})`);
  console.log(`API reference: ${scheme}://${hostPart}:${port}/docs`);
  console.log(`dashboard: ${scheme}://${hostPart}:${port}/ui${existsSync(uiDir) ? '' : ' (not built: run `npm run build`)'}`);
  if (tls) {
    console.log(`CA fingerprint (every join line pins it): ${tls.material.caFingerprint}`);
    if (tls.source.kind === 'generated') {
      const caFile = path.join(tls.source.dir, 'ca.pem');
      const relative = path.relative(process.cwd(), caFile);
      console.log(`CA certificate: ${caFile} (curl --cacert ${relative.startsWith('..') ? caFile : relative} ...)`);
    }
  } else {
    console.log('TLS: off (plain HTTP; see the warning above)');
  }
  console.log(
    `role: ${roles.role}${roles.role === 'standby' ? ` (the leader is ${leadership.leaderUrl() ?? 'not known yet'})` : ''}; advertised as ${leadership.advertiseUrl}`,
  );
  console.log(admin.announce);
}

await main();
