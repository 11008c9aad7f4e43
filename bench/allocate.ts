// allocate: durable subnet allocations through the REST API of a real controller process on a
// SQLite file and on PostgreSQL (a throwaway local cluster, fsync and synchronous_commit on),
// one client and 16 concurrent clients, on an empty pool and on a /8 pool of /24 subnets that
// is 90% full (about 59,000 allocated, lowest addresses first, as first fit leaves them).
// CROSSDOCK_BENCH_STORES=sqlite (or postgresql) measures one store only.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { applyMigrations } from '../controller/src/db/migrate.ts';
import { DEFAULT_PG_POOL_SIZE } from '../controller/src/db/client.ts';
import { applyPostgresMigrations } from '../controller/src/db/migrate-postgres.ts';
import { hashToken } from '../controller/src/auth/tokens.ts';
import { formatIPv4 } from '../shared/src/ip/ipv4.ts';
import { percentile, summarize, type Bench, type BenchReport, type Row } from './harness.ts';
import { startController } from '../test/support/controller-process.ts';
import { postgresProblem, startPostgres, type PostgresCluster } from '../test/support/postgres.ts';

const ADMIN = 'cda_bench-allocate-admin-token-00';
const HOSTS = 16;
const POOL_CIDR = '10.0.0.0/8';
const POOL_BLOCKS = 2 ** 16;
const FULL_FRACTION = 0.9;
const ALLOCATIONS_PER_RUN = 2_000;
const RUNS = 5;
const CONCURRENCY = 16;

/** A database with pool "bench" and HOSTS hosts, prefilled with `prefill` /24s from the bottom. */
function prepareSqlite(file: string, prefill: number): void {
  applyMigrations(file);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const now = new Date().toISOString();
  db.transaction(() => {
    const pool = db.prepare('INSERT INTO Pool (name, cidr, subnetPrefixLength, createdAt) VALUES (?, ?, 24, ?)').run('bench', POOL_CIDR, now);
    const insertHost = db.prepare('INSERT INTO Host (name, address, interface, labels, tokenHash, createdAt, updatedAt) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const hostIds: number[] = [];
    for (let h = 0; h < HOSTS; h++) {
      hostIds.push(Number(insertHost.run(`bench-${h}`, `198.51.100.${10 + h}`, 'eth0', '{}', hashToken(`bench-token-${h}`), now, now).lastInsertRowid));
    }
    const insertSubnet = db.prepare(
      'INSERT INTO Subnet (cidr, prefixLength, gateway, network, mode, poolId, hostId, createdAt) VALUES (?, 24, ?, ?, ?, ?, ?, ?)',
    );
    for (let i = 0; i < prefill; i++) {
      const network = (10 << 24) + i * 256;
      insertSubnet.run(`${formatIPv4(network)}/24`, formatIPv4(network + 1), `pre-${i}`, 'network', pool.lastInsertRowid, hostIds[i % HOSTS], now);
    }
  })();
  db.close();
}

/** The same on PostgreSQL, the prefill in one INSERT ... SELECT over generate_series. */
async function preparePostgres(url: string, prefill: number): Promise<void> {
  await applyPostgresMigrations(url);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN');
    const pool = await client.query<{ id: number }>(`INSERT INTO "Pool" ("name", "cidr", "subnetPrefixLength") VALUES ('bench', $1, 24) RETURNING "id"`, [
      POOL_CIDR,
    ]);
    for (let h = 0; h < HOSTS; h++) {
      await client.query(`INSERT INTO "Host" ("name", "address", "interface", "tokenHash", "updatedAt") VALUES ($1, $2, 'eth0', $3, now())`, [
        `bench-${h}`,
        `198.51.100.${10 + h}`,
        hashToken(`bench-token-${h}`),
      ]);
    }
    const dotted = (n: string) => `((${n}) >> 24) || '.' || (((${n}) >> 16) & 255) || '.' || (((${n}) >> 8) & 255) || '.' || ((${n}) & 255)`;
    await client.query(
      `INSERT INTO "Subnet" ("cidr", "prefixLength", "gateway", "network", "mode", "poolId", "hostId")
       SELECT ${dotted('(10::bigint << 24) + i * 256')} || '/24', 24, ${dotted('(10::bigint << 24) + i * 256 + 1')}, 'pre-' || i, 'network', $1,
              (SELECT "id" FROM "Host" WHERE "name" = 'bench-' || (i % ${HOSTS}))
       FROM generate_series(0, $2::int - 1) AS i`,
      [pool.rows[0]!.id, prefill],
    );
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

type Store = 'sqlite' | 'postgresql';

async function measure(store: Store, label: string, prefill: number, dir: string, cluster: PostgresCluster | undefined, tls = true): Promise<Row[]> {
  let database: string;
  if (store === 'postgresql') {
    database = await cluster!.createDatabase('bench');
    await preparePostgres(database, prefill);
  } else {
    const file = path.join(dir, `${label.replace(/[^a-z0-9]+/gi, '-')}.db`);
    prepareSqlite(file, prefill);
    database = `file:${file}`;
  }
  const controller = await startController({
    database,
    adminToken: ADMIN,
    bundle: true,
    args: ['--default-pool', 'none'],
    ...(tls ? {} : { env: { CROSSDOCK_TLS: 'off' } }),
  });
  let counter = 0;
  // A plain keep-alive HTTP client: on a 2-core machine the client shares the CPU with the
  // controller, and fetch's own cost per request would be measured as the controller's.
  // HTTPS (the default) trusts the run's CA through NODE_EXTRA_CA_CERTS (bench/run.ts).
  const { hostname, port, protocol } = new URL(controller.url);
  const transport = protocol === 'https:' ? https : http;
  const agent = new transport.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const allocate = (client: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ host: `bench-${client % HOSTS}`, pool: 'bench', network: `n${counter++}` });
      const started = performance.now();
      const request = transport.request(
        {
          agent,
          hostname,
          port,
          method: 'POST',
          path: '/v1/subnets',
          headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (response) => {
          let text = '';
          response.on('data', (d: Buffer) => (text += d.toString()));
          response.on('end', () => {
            const elapsed = performance.now() - started;
            if (response.statusCode !== 201) reject(new Error(`allocation answered ${response.statusCode}: ${text}`));
            else resolve(elapsed);
          });
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  const release = async () => {
    // Give the pool back its state between runs: release what the run allocated.
    const list = (await (await fetch(`${controller.url}/v1/subnets?pool=bench`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as {
      items: Array<{ id: number; network: string }>;
    };
    const mine = list.items.filter((s) => s.network.startsWith('n'));
    for (let i = 0; i < mine.length; i += 64) {
      await Promise.all(
        mine.slice(i, i + 64).map((s) => fetch(`${controller.url}/v1/subnets/${s.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN}` } })),
      );
    }
  };

  const rows: Row[] = [];
  try {
    for (const clients of [1, CONCURRENCY]) {
      const rates: number[] = [];
      const latencies: number[] = [];
      await (async () => {
        for (let i = 0; i < 200; i++) await allocate(i); // warm-up
        await release();
      })();
      for (let run = 0; run < RUNS; run++) {
        const started = performance.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: clients }, async (_, c) => {
            while (next < ALLOCATIONS_PER_RUN) {
              next++;
              latencies.push(await allocate(c));
            }
          }),
        );
        rates.push(ALLOCATIONS_PER_RUN / ((performance.now() - started) / 1000));
        await release();
      }
      rows.push({
        name: `${store === 'sqlite' ? 'SQLite' : 'PostgreSQL'}: ${label}, ${clients === 1 ? 'sequential' : `${clients} concurrent clients`}${tls ? '' : ', TLS off'}`,
        stat: summarize(rates),
        unit: 'alloc/s',
        extra: { p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99), max_ms: Math.max(...latencies) },
      });
    }
  } finally {
    agent.destroy();
    await controller.stop();
  }
  return rows;
}

const bench: Bench = {
  name: 'allocate',
  description: 'durable subnet allocations through the REST API, empty and 90%-full pool',
  async run(): Promise<BenchReport> {
    const dir = mkdtempSync(path.join(tmpdir(), 'crossdock-bench-allocate-'));
    const wanted = (process.env.CROSSDOCK_BENCH_STORES ?? 'sqlite,postgresql').split(',') as Store[];
    const pgProblem = wanted.includes('postgresql') ? postgresProblem() : null;
    const stores = wanted.filter((s) => s === 'sqlite' || (s === 'postgresql' && !pgProblem));
    let cluster: PostgresCluster | undefined;
    try {
      if (stores.includes('postgresql')) cluster = await startPostgres();
      const rows: Row[] = [];
      const byStore: Partial<Record<Store, { empty: number; full: number; p99: number }>> = {};
      for (const store of stores) {
        const empty = await measure(store, 'empty /8 pool', 0, dir, cluster);
        const prefill = Math.round(POOL_BLOCKS * FULL_FRACTION);
        const full = await measure(store, `90%-full /8 pool (${prefill} allocated)`, prefill, dir, cluster);
        rows.push(...empty, ...full);
        const concurrent = [...empty, ...full].filter((r) => r.name.includes('concurrent'));
        byStore[store] = {
          empty: concurrent[0]!.stat!.median,
          full: concurrent[1]!.stat!.median,
          p99: Math.max(...[...empty, ...full].map((r) => Number(r.extra!.p99_ms))),
        };
      }
      // What TLS costs an allocation: the empty pool again on plain HTTP, in the same run.
      if (stores.includes('sqlite') && process.env.CROSSDOCK_BENCH_TLS_OFF !== '0')
        rows.push(...(await measure('sqlite', 'empty /8 pool', 0, dir, cluster, false)));
      const targets = stores.flatMap((store) => {
        const { empty, full, p99 } = byStore[store]!;
        const name = store === 'sqlite' ? 'SQLite' : 'PostgreSQL';
        return [
          {
            figure: `${name}: allocations per second (16 clients)`,
            target: '>= 2,000/s',
            measured: `${Math.min(empty, full).toFixed(0)}/s`,
            met: Math.min(empty, full) >= 2000,
          },
          { figure: `${name}: p99 latency`, target: '< 10 ms', measured: `${p99.toFixed(1)} ms`, met: p99 < 10 },
          {
            figure: `${name}: 90%-full pool vs empty`,
            target: 'no slower',
            measured: `${((full / empty) * 100).toFixed(0)}% of the empty pool's rate`,
            met: full >= empty * 0.9,
          },
        ];
      });
      return {
        bench: 'allocate',
        rows,
        targets,
        notes: [
          `${ALLOCATIONS_PER_RUN} allocations per run, ${RUNS} runs per case after a warm-up; each acknowledged allocation is committed before its 201 (SQLite: WAL, synchronous=FULL; PostgreSQL: a local throwaway cluster, fsync=on, synchronous_commit=on, over TCP on 127.0.0.1, pool of ${DEFAULT_PG_POOL_SIZE} connections).`,
          ...(pgProblem ? [`PostgreSQL not measured: ${pgProblem}`] : []),
        ],
        summary: `allocate: ${stores
          .map(
            (s) =>
              `${s === 'sqlite' ? 'SQLite' : 'PostgreSQL'} ${byStore[s]!.empty.toFixed(0)}/s empty, ${byStore[s]!.full.toFixed(0)}/s 90%-full, p99 <= ${byStore[s]!.p99.toFixed(1)} ms`,
          )
          .join('; ')} (16 clients)`,
      };
    } finally {
      await cluster?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default bench;
