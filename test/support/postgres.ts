// A throwaway PostgreSQL cluster for the suites that run the controller on PostgreSQL: Debian's
// server binaries, initdb as the `postgres` user (the server refuses root) in a temporary
// directory with trust authentication, listening on 127.0.0.1 only, on a free port of a range
// (CROSSDOCK_TEST_PG_PORTS, default 15400-15599), never the machine's own cluster. Each suite
// gets a fresh database of its own; the cluster is stopped and removed when the suite ends, and
// a cluster whose test process died (SIGKILL, a crash) is removed by the next start.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

const CLUSTER_PREFIX = 'crossdock-pg-';
const OWNER_FILE = 'owner.json';
const DEFAULT_PORTS = '15400-15599';
const START_ATTEMPTS = 5;
const PG_CTL_TIMEOUT_S = 60;

/** The newest Debian PostgreSQL server binaries, or null. */
export function postgresBinDir(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(path.join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(base, versions[0], 'bin') : null;
}

/** Why a cluster cannot be made here, or null. (requirements.ts turns this into skip or fail.) */
export function postgresProblem(): string | null {
  if (!postgresBinDir()) return 'PostgreSQL server binaries (Debian postgresql) are not installed';
  if (process.getuid?.() !== 0) return 'not running as root (the throwaway PostgreSQL cluster runs as the postgres user)';
  try {
    execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' });
  } catch {
    return 'there is no postgres user (Debian postgresql creates it)';
  }
  return null;
}

export interface PostgresCluster {
  port: number;
  dir: string;
  /** postgresql://postgres@127.0.0.1:PORT/NAME */
  url(database: string): string;
  /** A new database with a unique name (empty, or a copy of `template`); its URL. */
  createDatabase(prefix?: string, template?: string): Promise<string>;
  /** Runs SQL as the superuser in the `postgres` database (pg_terminate_backend, ...). */
  admin<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<T>>;
  /** Stops the server (immediate) and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

function asPostgres(file: string, args: string[], timeoutMs = PG_CTL_TIMEOUT_S * 1000 + 10_000): string {
  try {
    return execFileSync('runuser', ['-u', 'postgres', '--', file, ...args], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${path.basename(file)} ${args.join(' ')} failed: ${(e.stderr || e.stdout || e.message).trim()}`);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Stops and removes the clusters of test processes that are gone (never another live process's). */
export function removeLeftoverClusters(): string[] {
  const bin = postgresBinDir();
  const removed: string[] = [];
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(CLUSTER_PREFIX)) continue;
    const dir = path.join(tmpdir(), name);
    let owner: number;
    try {
      owner = (JSON.parse(readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as { pid: number }).pid;
    } catch {
      continue; // written right after the directory is made: without it, not ours to judge
    }
    if (processAlive(owner)) continue;
    if (bin && existsSync(path.join(dir, 'data', 'postmaster.pid'))) {
      try {
        asPostgres(path.join(bin, 'pg_ctl'), ['-D', path.join(dir, 'data'), '-m', 'immediate', '-w', '-t', String(PG_CTL_TIMEOUT_S), 'stop']);
      } catch {
        // Not running any more: only the directory is left.
      }
    }
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

function parsePorts(text: string): [number, number] {
  const match = /^(\d+)-(\d+)$/.exec(text);
  const [low, high] = match ? [Number(match[1]), Number(match[2])] : [NaN, NaN];
  if (!(low >= 1024 && high < 32768 && low <= high)) {
    throw new Error(`CROSSDOCK_TEST_PG_PORTS "${text}" is not a port range below 32768 such as ${DEFAULT_PORTS}`);
  }
  return [low, high];
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

async function pickPort(tried: Set<number>): Promise<number> {
  const [low, high] = parsePorts(process.env.CROSSDOCK_TEST_PG_PORTS ?? DEFAULT_PORTS);
  const start = low + Math.floor(Math.random() * (high - low + 1));
  for (let i = 0; i <= high - low; i++) {
    const port = low + ((start - low + i) % (high - low + 1));
    if (!tried.has(port) && (await portFree(port))) return port;
  }
  throw new Error(`no free port in ${low}-${high} for a throwaway PostgreSQL cluster; set CROSSDOCK_TEST_PG_PORTS`);
}

const running = new Set<PostgresCluster>();
let exitHookInstalled = false;

/** Makes and starts a cluster. Call postgresProblem() first (through needs('postgres')). */
export async function startPostgres(options: { fsync?: boolean } = {}): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  const problem = postgresProblem();
  if (!bin || problem) throw new Error(`cannot make a PostgreSQL cluster: ${problem}`);
  removeLeftoverClusters();

  const dir = mkdtempSync(path.join(tmpdir(), CLUSTER_PREFIX));
  writeFileSync(path.join(dir, OWNER_FILE), JSON.stringify({ pid: process.pid }));
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  const data = path.join(dir, 'data');
  const socket = path.join(dir, 'socket');
  mkdirSync(socket);
  chownSync(dir, uid, gid);
  chownSync(socket, uid, gid);
  const log = path.join(dir, 'server.log');

  let port = 0;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    running.delete(cluster);
    try {
      asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-t', String(PG_CTL_TIMEOUT_S), 'stop']);
    } catch {
      // Already stopped (or never started): removing the directory is what is left.
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const url = (database: string) => `postgresql://postgres@127.0.0.1:${port}/${database}`;
  const admin = async <T extends pg.QueryResultRow>(sql: string, params?: unknown[]) => {
    const client = new pg.Client({ connectionString: url('postgres') });
    await client.connect();
    try {
      return await client.query<T>(sql, params);
    } finally {
      await client.end();
    }
  };
  const cluster: PostgresCluster = {
    get port() {
      return port;
    },
    dir,
    url,
    async createDatabase(prefix = 'crossdock', template?: string) {
      const name = `${prefix}_${randomBytes(4).toString('hex')}`;
      await admin(`CREATE DATABASE "${name}"${template ? ` TEMPLATE "${template}"` : ''}`);
      return url(name);
    },
    admin,
    stop,
  };
  running.add(cluster);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // The test process ending without afterAll (an error, process.exit): stop what it started.
    process.once('exit', () => {
      for (const c of running) void c.stop();
    });
  }

  try {
    asPostgres(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
    const tried = new Set<number>();
    for (let attempt = 1; ; attempt++) {
      port = await pickPort(tried);
      tried.add(port);
      const serverOptions = [
        `-p ${port}`,
        `-k ${socket}`,
        '-c listen_addresses=127.0.0.1',
        `-c fsync=${options.fsync === false ? 'off' : 'on'}`,
        '-c max_connections=200',
      ].join(' ');
      try {
        asPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-l', log, '-o', serverOptions, '-w', '-t', String(PG_CTL_TIMEOUT_S), 'start']);
        break;
      } catch (error) {
        // Another engineer's cluster may have taken the port between the check and the start.
        const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
        if (attempt >= START_ATTEMPTS || !/could not bind|Address already in use/i.test(text)) throw new Error(`${(error as Error).message}\n${text}`);
      }
    }
    return cluster;
  } catch (error) {
    await stop();
    throw error;
  }
}
