// Controller settings from flags, then environment, then defaults (DESIGN.md, Configuration).
import { isIP } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { VXLAN_DEFAULT_PORT, VXLAN_DEFAULT_VNI, VXLAN_VNI_MAX, formatCidr, parseCidr, type Cidr } from '@crossdock/shared';
import { DEFAULT_VTEP_RANGE, type VxlanSettings } from './planner/desired.ts';
import { DEFAULT_PG_POOL_SIZE, type DatabaseConfig } from './db/client.ts';
import { specialRangeProblem } from './ipam/rules.ts';

export interface ControllerConfig {
  host: string;
  port: number;
  /** a SQLite file (the default) or a PostgreSQL server */
  database: DatabaseConfig;
  adminToken: string | undefined;
  /** GET /metrics needs this bearer token; undefined: open */
  metricsToken: string | undefined;
  /** null: do not create a default pool */
  defaultPool: Cidr | null;
  logLevel: string;
  /** the controller's URL as hosts reach it, for the join line; undefined: the URL each request was made to */
  advertiseUrl: string | undefined;
  tls: TlsConfig;
  /** where the generated CA and server certificate are kept; undefined: beside a SQLite database, ./data for PostgreSQL */
  tlsDir: string | undefined;
  /** the fleet's VXLAN: network identifier, UDP port, and the link-local range VTEP addresses come from */
  vxlan: VxlanSettings;
  /** executors that may be syncing (connected, hello not yet planned) at once; 0: no limit */
  maxSyncing: number;
}

/**
 * off: plain HTTP (behind a TLS-terminating proxy); generated: the CA and server certificate
 * beside the database; operator: the given certificate (chain) and key files.
 */
export type TlsConfig = { mode: 'off' } | { mode: 'generated'; sans: string[] } | { mode: 'operator'; certFile: string; keyFile: string };

export class ConfigError extends Error {}

export const DEFAULTS = {
  listen: '0.0.0.0:7800',
  db: 'file:./data/crossdock.db',
  defaultPool: '10.100.0.0/16',
  logLevel: 'info',
  vxlanVni: VXLAN_DEFAULT_VNI,
  vxlanPort: VXLAN_DEFAULT_PORT,
  vxlanVtepRange: DEFAULT_VTEP_RANGE,
  maxSyncing: 200,
} as const;

export const USAGE = `usage: crossdock-controller [options]
  --listen HOST:PORT      listen address           (CROSSDOCK_LISTEN, default ${DEFAULTS.listen})
  --db URL                database: file:PATH (SQLite) or postgresql://USER:PASSWORD@HOST:5432/DB
                          (CROSSDOCK_DB, default ${DEFAULTS.db})
  --db-pool-size N        connections to PostgreSQL (CROSSDOCK_DB_POOL_SIZE, default ${DEFAULT_PG_POOL_SIZE})
  --admin-token TOKEN     operator token           (CROSSDOCK_ADMIN_TOKEN, default: generated, saved beside the database)
  --metrics-token TOKEN   bearer token GET /metrics needs (CROSSDOCK_METRICS_TOKEN, default: none, /metrics is open)
  --default-pool CIDR     pool created on first start, or "none" (CROSSDOCK_DEFAULT_POOL, default ${DEFAULTS.defaultPool})
  --log-level LEVEL       fatal|error|warn|info|debug (CROSSDOCK_LOG_LEVEL, default ${DEFAULTS.logLevel})
  --advertise-url URL     the controller's URL as hosts reach it, for the join line (CROSSDOCK_ADVERTISE_URL,
                          default: the URL each request was made to)
  --tls on|off            serve HTTPS and WSS only (CROSSDOCK_TLS, default on); off: plain HTTP, for a controller
                          behind a TLS-terminating proxy
  --tls-san NAME[,NAME]   more names or addresses for the generated server certificate (CROSSDOCK_TLS_SAN; repeatable)
  --tls-cert PATH         serve this certificate (PEM, the chain up to your CA) instead of a generated one (CROSSDOCK_TLS_CERT)
  --tls-key PATH          its private key (CROSSDOCK_TLS_KEY)
  --tls-dir DIR           where the generated CA and certificate are kept (CROSSDOCK_TLS_DIR, default: beside a SQLite
                          database; ./data with PostgreSQL; every controller of one database shares ca.pem and ca-key.pem)
  --vxlan-vni N           VXLAN network identifier (CROSSDOCK_VXLAN_VNI, default ${DEFAULTS.vxlanVni})
  --vxlan-port PORT       VXLAN UDP port (CROSSDOCK_VXLAN_PORT, default ${DEFAULTS.vxlanPort}, the IANA port)
  --vxlan-vtep-range CIDR link-local range of VTEP addresses, host id n gets address n
                          (CROSSDOCK_VXLAN_VTEP_RANGE, default ${DEFAULTS.vxlanVtepRange})
  --max-syncing N         executors syncing at once; more connecting together are told to retry
                          (CROSSDOCK_MAX_SYNCING, default ${DEFAULTS.maxSyncing}, 0: no limit)
  --help`;

export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 0 || port > 65535) {
    throw new ConfigError(`listen address "${text}" is not HOST:PORT; use something like 0.0.0.0:7800 or 127.0.0.1:7800`);
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

const MAX_PG_POOL_SIZE = 1_000;

export function parseDatabase(text: string, cwd = process.cwd(), poolSizeText?: string): DatabaseConfig {
  if (/^postgres(ql)?:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new ConfigError('database URL is not a valid URL; use postgresql://USER:PASSWORD@HOST:5432/DATABASE (percent-encode special characters)');
    }
    if (!url.hostname || url.pathname.length <= 1) {
      throw new ConfigError(
        `database URL ${url.protocol}//${url.host}${url.pathname} names no host or no database; use postgresql://USER:PASSWORD@HOST:5432/DATABASE`,
      );
    }
    return { kind: 'postgresql', url: text, poolSize: parsePoolSize(poolSizeText) };
  }
  const file = text.startsWith('file:') ? text.slice('file:'.length) : text;
  if (file === '' || /^[a-z]+:\/\//i.test(text)) {
    throw new ConfigError(
      `database "${text.replace(/\/\/[^@/]*@/, '//***@')}" is neither a SQLite file nor a PostgreSQL URL; use file:./data/crossdock.db or postgresql://USER:PASSWORD@HOST:5432/DATABASE`,
    );
  }
  if (poolSizeText !== undefined) {
    throw new ConfigError('the database pool size applies only to PostgreSQL (SQLite has one writer); unset CROSSDOCK_DB_POOL_SIZE / --db-pool-size');
  }
  return { kind: 'sqlite', file: path.resolve(cwd, file) };
}

function parsePoolSize(text: string | undefined): number {
  if (text === undefined || text === '') return DEFAULT_PG_POOL_SIZE;
  const size = /^\d{1,4}$/.test(text) ? Number(text) : NaN;
  if (!(size >= 1 && size <= MAX_PG_POOL_SIZE)) {
    throw new ConfigError(`database pool size "${text}" is not a whole number from 1 to ${MAX_PG_POOL_SIZE}; the default is ${DEFAULT_PG_POOL_SIZE}`);
  }
  return size;
}

export function parseDefaultPool(text: string): Cidr | null {
  if (text === 'none') return null;
  const result = parseCidr(text);
  if (!result.ok) {
    const hint = result.reason === 'host-bits' ? `use ${result.suggestion}` : 'use a CIDR such as 10.100.0.0/16, or "none"';
    throw new ConfigError(`default pool: ${result.message}; ${hint}`);
  }
  const problem = specialRangeProblem(result.cidr);
  if (problem) throw new ConfigError(`default pool ${problem}; or "none"`);
  if (result.cidr.prefixLength > 24) {
    throw new ConfigError(`default pool ${formatCidr(result.cidr)} is smaller than one /24 subnet; use a /24 or larger, such as 10.100.0.0/16`);
  }
  return result.cidr;
}

export function parseAdvertiseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(`advertise URL "${text}" is not a URL; use the URL hosts reach the controller at, such as http://192.168.32.5:7800`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`advertise URL must start with http:// or https://, not ${url.protocol}`);
  if (url.search || url.hash || url.username || url.password) {
    throw new ConfigError(
      `advertise URL "${text}" has a query, fragment or credentials; give only scheme, host, port and path, such as http://192.168.32.5:7800`,
    );
  }
  return url.toString().replace(/\/$/, '');
}

export function parseMaxSyncing(text: string): number {
  if (!/^\d{1,6}$/.test(text.trim())) {
    throw new ConfigError(
      `max syncing "${text}" is not a whole number; use how many executors may sync at once, such as ${DEFAULTS.maxSyncing}, or 0 for no limit`,
    );
  }
  return Number(text.trim());
}

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): ControllerConfig | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        listen: { type: 'string' },
        db: { type: 'string' },
        'db-pool-size': { type: 'string' },
        'admin-token': { type: 'string' },
        'metrics-token': { type: 'string' },
        'default-pool': { type: 'string' },
        'log-level': { type: 'string' },
        'advertise-url': { type: 'string' },
        tls: { type: 'string' },
        'tls-san': { type: 'string', multiple: true },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'tls-dir': { type: 'string' },
        'vxlan-vni': { type: 'string' },
        'vxlan-port': { type: 'string' },
        'vxlan-vtep-range': { type: 'string' },
        'max-syncing': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}; see --help`);
  }
  if (values.help) return 'help';
  const listen = parseListen(values.listen ?? env.CROSSDOCK_LISTEN ?? DEFAULTS.listen);
  const adminToken = values['admin-token'] ?? env.CROSSDOCK_ADMIN_TOKEN;
  if (adminToken !== undefined && !/^[\x21-\x7e]{16,256}$/.test(adminToken)) {
    throw new ConfigError('admin token must be 16 to 256 printable characters without spaces; leave it unset to have one generated');
  }
  const metricsToken = values['metrics-token'] ?? env.CROSSDOCK_METRICS_TOKEN;
  if (metricsToken !== undefined && !/^[\x21-\x7e]{16,256}$/.test(metricsToken)) {
    throw new ConfigError('metrics token must be 16 to 256 printable characters without spaces; leave it unset for an open /metrics');
  }
  const logLevel = values['log-level'] ?? env.CROSSDOCK_LOG_LEVEL ?? DEFAULTS.logLevel;
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(`log level "${logLevel}" is unknown; use one of fatal, error, warn, info, debug`);
  }
  const advertiseUrl = ((text) => (text === undefined || text === '' ? undefined : parseAdvertiseUrl(text)))(
    values['advertise-url'] ?? env.CROSSDOCK_ADVERTISE_URL,
  );
  const tls = parseTls(
    {
      tls: values.tls ?? env.CROSSDOCK_TLS,
      sans: values['tls-san'] ?? (env.CROSSDOCK_TLS_SAN ? [env.CROSSDOCK_TLS_SAN] : []),
      certFile: values['tls-cert'] ?? env.CROSSDOCK_TLS_CERT,
      keyFile: values['tls-key'] ?? env.CROSSDOCK_TLS_KEY,
    },
    process.cwd(),
  );
  if (tls.mode !== 'off' && advertiseUrl?.startsWith('http://')) {
    throw new ConfigError(
      `advertise URL ${advertiseUrl} is plain http://, but the controller serves HTTPS; use https://${advertiseUrl.slice('http://'.length)}, or --tls off behind a TLS-terminating proxy`,
    );
  }
  return {
    ...listen,
    database: parseDatabase(values.db ?? env.CROSSDOCK_DB ?? DEFAULTS.db, process.cwd(), values['db-pool-size'] ?? (env.CROSSDOCK_DB_POOL_SIZE || undefined)),
    adminToken,
    metricsToken,
    defaultPool: parseDefaultPool(values['default-pool'] ?? env.CROSSDOCK_DEFAULT_POOL ?? DEFAULTS.defaultPool),
    logLevel,
    maxSyncing: parseMaxSyncing(values['max-syncing'] ?? env.CROSSDOCK_MAX_SYNCING ?? String(DEFAULTS.maxSyncing)),
    advertiseUrl,
    tls,
    tlsDir: ((text) => (text === undefined || text === '' ? undefined : path.resolve(process.cwd(), text)))(values['tls-dir'] ?? env.CROSSDOCK_TLS_DIR),
    vxlan: {
      vni: parseInteger(values['vxlan-vni'] ?? env.CROSSDOCK_VXLAN_VNI ?? String(DEFAULTS.vxlanVni), 'VXLAN VNI', 1, VXLAN_VNI_MAX, String(DEFAULTS.vxlanVni)),
      port: parseInteger(
        values['vxlan-port'] ?? env.CROSSDOCK_VXLAN_PORT ?? String(DEFAULTS.vxlanPort),
        'VXLAN port',
        1,
        65_535,
        `${DEFAULTS.vxlanPort} (IANA)`,
      ),
      vtepRange: parseVtepRange(values['vxlan-vtep-range'] ?? env.CROSSDOCK_VXLAN_VTEP_RANGE ?? DEFAULTS.vxlanVtepRange),
    },
  };
}

const SAN_PATTERN = /^(?=.{1,253}$)[a-z0-9*]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export function parseTls(
  given: { tls: string | undefined; sans: string[]; certFile: string | undefined; keyFile: string | undefined },
  cwd: string,
): TlsConfig {
  const mode = (given.tls ?? 'on').toLowerCase();
  if (!['on', 'off', 'true', 'false'].includes(mode)) throw new ConfigError(`TLS setting "${given.tls}" is unknown; use on (the default) or off`);
  const sans = given.sans
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (mode === 'off' || mode === 'false') {
    if (given.certFile || given.keyFile || sans.length) {
      throw new ConfigError('TLS is off, but a TLS certificate, key or SAN was given; drop them, or leave TLS on');
    }
    return { mode: 'off' };
  }
  if ((given.certFile === undefined) !== (given.keyFile === undefined)) {
    throw new ConfigError(
      'a TLS certificate needs its key and the other way round; give both --tls-cert and --tls-key (CROSSDOCK_TLS_CERT, CROSSDOCK_TLS_KEY)',
    );
  }
  if (given.certFile !== undefined && given.keyFile !== undefined) {
    if (sans.length)
      throw new ConfigError('--tls-san names what the generated certificate covers; with --tls-cert, your certificate says what it covers: drop --tls-san');
    return { mode: 'operator', certFile: path.resolve(cwd, given.certFile), keyFile: path.resolve(cwd, given.keyFile) };
  }
  for (const san of sans) {
    if (isIP(san.replace(/^\[|\]$/g, '')) === 0 && !SAN_PATTERN.test(san)) {
      throw new ConfigError(`TLS SAN "${san}" is neither an IP address nor a DNS name; use something like 192.168.32.5 or controller.example.net`);
    }
  }
  return { mode: 'generated', sans: sans.map((s) => s.replace(/^\[|\]$/g, '')) };
}

function parseInteger(text: string, what: string, min: number, max: number, example: string): number {
  if (!/^\d{1,9}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new ConfigError(`${what} "${text}" is not a whole number from ${min} to ${max}; use one such as ${example}`);
  }
  return Number(text);
}

/** A link-local block of /8 to /24 (a /24 holds 253 hosts): VTEP addresses must never be routed off a host. */
function parseVtepRange(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new ConfigError(`VXLAN VTEP range: ${parsed.message}`);
  const { network, prefixLength } = parsed.cidr;
  const last = network + 2 ** (32 - prefixLength) - 1;
  // RFC 3927 reserves the first and last /24 of 169.254.0.0/16.
  if (network >>> 16 !== 0xa9fe || prefixLength < 17 || prefixLength > 24 || ((network >>> 8) & 255) === 0 || ((last >>> 8) & 255) === 255) {
    throw new ConfigError(
      `VXLAN VTEP range ${text} must be a /17 to /24 inside 169.254.1.0 to 169.254.254.255 (link-local, never routed; the first and last /24 are reserved); use ${DEFAULT_VTEP_RANGE}`,
    );
  }
  return parsed.cidr;
}
