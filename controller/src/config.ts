// Controller settings from flags, then environment, then defaults (DESIGN.md, Configuration).
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatCidr, parseCidr, type Cidr } from '@crossdock/shared';
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
  /** executors that may be syncing (connected, hello not yet planned) at once; 0: no limit */
  maxSyncing: number;
}

export class ConfigError extends Error {}

export const DEFAULTS = {
  listen: '0.0.0.0:7800',
  db: 'file:./data/crossdock.db',
  defaultPool: '10.100.0.0/16',
  logLevel: 'info',
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
  return {
    ...listen,
    database: parseDatabase(values.db ?? env.CROSSDOCK_DB ?? DEFAULTS.db, process.cwd(), values['db-pool-size'] ?? (env.CROSSDOCK_DB_POOL_SIZE || undefined)),
    adminToken,
    metricsToken,
    defaultPool: parseDefaultPool(values['default-pool'] ?? env.CROSSDOCK_DEFAULT_POOL ?? DEFAULTS.defaultPool),
    logLevel,
    maxSyncing: parseMaxSyncing(values['max-syncing'] ?? env.CROSSDOCK_MAX_SYNCING ?? String(DEFAULTS.maxSyncing)),
    advertiseUrl: ((text) => (text === undefined || text === '' ? undefined : parseAdvertiseUrl(text)))(values['advertise-url'] ?? env.CROSSDOCK_ADVERTISE_URL),
  };
}
