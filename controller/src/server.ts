// Entry point: reads the configuration, opens the database, builds the app, listens.
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { buildApp } from './app.ts';
import { newAdminToken } from './auth/tokens.ts';
import { ConfigError, USAGE, loadConfig, type ControllerConfig } from './config.ts';
import { openDatabase } from './db/client.ts';
import { StorageHealth } from './db/storage.ts';
import { Fleet, loadFleetRows } from './fleet.ts';
import { DEFAULT_POOL_NAME, Ipam } from './ipam/ipam.ts';
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
function resolveAdminToken(config: ControllerConfig, dir: string): { token: string; announce: string } {
  if (config.adminToken) return { token: config.adminToken, announce: 'admin token: from configuration' };
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
  const dir = prepareDataDirectory(config.databaseFile);
  const { prisma, migrations } = await openDatabase(config.databaseFile).catch((error: Error) =>
    fail(`cannot open database ${config.databaseFile}: ${error.message}`),
  );
  const firstStart = migrations.alreadyApplied === 0;
  const admin = resolveAdminToken(config, dir);
  let tls: ControllerTls | undefined;
  let tlsChanges: string[] = [];
  if (config.tls.mode !== 'off') {
    const source =
      config.tls.mode === 'operator'
        ? ({ kind: 'operator', certFile: config.tls.certFile, keyFile: config.tls.keyFile } as const)
        : ({ kind: 'generated', dir, sans: subjectAltNames(config.host, config.advertiseUrl, config.tls.sans) } as const);
    try {
      ({ tls, changes: tlsChanges } = await ControllerTls.open(source));
    } catch (error) {
      if (error instanceof TlsError) fail(error.message);
      throw error;
    }
  }
  const storage = new StorageHealth(config.databaseFile);
  const ipam = new Ipam(Fleet.fromRows(await loadFleetRows(prisma), config.vxlan), prisma, storage);
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
    ...(tls ? { tls, serverFactory: httpsServerFactory(tls) } : {}),
  });
  for (const change of tlsChanges) app.log.info(change);
  if (!tls) {
    app.log.warn(
      'TLS is off (CROSSDOCK_TLS=off): tokens and jobs cross the network in clear text; run this only behind a TLS-terminating proxy, with CROSSDOCK_ADVERTISE_URL set to its https:// URL',
    );
  }
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
  const scheme = tls ? 'https' : 'http';
  const hostPart = shown.includes(':') ? `[${shown}]` : shown;
  console.log(`crossdock controller listening on ${scheme}://${hostPart}:${port} (database ${config.databaseFile})`);
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
  console.log(admin.announce);
}

await main();
