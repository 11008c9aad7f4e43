// converge: a real controller process on a SQLite file and N simulated executors (real
// WebSocket clients speaking the real protocol, answering each job at once without touching
// any host). Measures the initial sync of N hosts, then, from the API's 201 for one more
// host, the time until every executor has reported the job that change caused; and the
// controller's resident memory with N executors connected.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startController } from '../test/support/controller-process.ts';
import { percentile, summarize, type Bench, type BenchReport, type Row } from './harness.ts';
import { SimExecutor } from '../test/support/sim-executor.ts';

const ADMIN = 'cda_bench-converge-admin-token-00';
const OPEN_FILES = 65_536;
const JOIN_RUNS = 5;
const REGISTER_CONCURRENCY = 32;
const CONNECT_CONCURRENCY = 200;
/** Up to this many hosts each gets a subnet, so each initial sync carries N-1 routes. */
const FULL_TABLE_MAX_HOSTS = 1_000;
const SIZES = (process.env.CROSSDOCK_BENCH_CONVERGE_SIZES ?? '100,1000,10000').split(',').map(Number);

function raiseOpenFileLimit(): number {
  for (const pid of [process.pid]) {
    try {
      execFileSync('prlimit', ['--pid', String(pid), `--nofile=${OPEN_FILES}:${OPEN_FILES}`], { stdio: 'ignore' });
    } catch {
      // Not permitted: raise the soft limit to the hard one instead.
      const hard = execFileSync('prlimit', ['--pid', String(pid), '--nofile', '--output', 'HARD', '--noheadings'], { encoding: 'utf8' }).trim();
      execFileSync('prlimit', ['--pid', String(pid), `--nofile=${hard}:${hard}`], { stdio: 'ignore' });
    }
  }
  return Number(execFileSync('prlimit', ['--pid', String(process.pid), '--nofile', '--output', 'SOFT', '--noheadings'], { encoding: 'utf8' }).trim());
}

function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

function addressOf(i: number): string {
  // Underlay addresses in 198.51.100.0/24 and 203.0.113.0/24 would run out at 10,000 hosts;
  // the simulated hosts never send a packet, so any unicast address serves: 172.16.0.0/12.
  // (i >= 1; a .0 or .255 inside the /12 is an ordinary host address)
  return `172.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
}

async function runSize(n: number, dir: string): Promise<{ rows: Row[]; p99: number; rss: number; syncMs: number }> {
  const withSubnets = n <= FULL_TABLE_MAX_HOSTS;
  const controller = await startController({
    dbFile: path.join(dir, `converge-${n}.db`),
    adminToken: ADMIN,
    bundle: true,
    args: ['--default-pool', '10.0.0.0/8'],
  });
  const api = async (method: string, route: string, body?: unknown) => {
    const r = await fetch(`${controller.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    if (r.status >= 300) throw new Error(`${method} ${route} answered ${r.status}: ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  const sims: SimExecutor[] = [];
  try {
    // Register N hosts.
    const tokens: string[] = new Array(n);
    let next = 0;
    await Promise.all(
      Array.from({ length: REGISTER_CONCURRENCY }, async () => {
        while (next < n) {
          const i = next++;
          tokens[i] = (await api('POST', '/v1/hosts', { name: `sim-${i}`, address: addressOf(i + 1), allocate: withSubnets })).token;
        }
      }),
    );
    // Initial sync: every executor connects and applies its first job.
    const synced = new Set<number>();
    let allSynced: () => void = () => {};
    const syncDone = new Promise<void>((resolve) => (allSynced = resolve));
    for (let i = 0; i < n; i++) {
      const sim = new SimExecutor(`sim-${i}`, controller.url, tokens[i]!);
      sim.onJob = () => {
        if (!synced.has(i)) {
          synced.add(i);
          if (synced.size === n) allSynced();
        }
      };
      sims.push(sim);
    }
    const syncStarted = performance.now();
    let connecting = 0;
    await Promise.all(
      Array.from({ length: CONNECT_CONCURRENCY }, async () => {
        while (connecting < n) await sims[connecting++]!.connect();
      }),
    );
    await syncDone;
    const syncMs = performance.now() - syncStarted;
    await new Promise((r) => setTimeout(r, 500));
    const rss = rssMiB(controller.child.pid!);

    // One host joins, with a subnet: every executor gets one route.
    const runs: number[][] = [];
    for (let run = 0; run < JOIN_RUNS; run++) {
      const reportedAt: number[] = [];
      let done: () => void = () => {};
      const allReported = new Promise<void>((resolve) => (done = resolve));
      for (const sim of sims) {
        sim.onJob = (report, commands) => {
          if (!commands.some((c) => c.kind === 'route.replace')) return;
          reportedAt.push(report.sentAt);
          if (reportedAt.length === n) done();
        };
      }
      const joined = await api('POST', '/v1/hosts', { name: `joiner-${run}`, address: addressOf(n + 100 + run) });
      const answeredAt = performance.now();
      await Promise.race([
        allReported,
        new Promise((_, reject) => setTimeout(() => reject(new Error(`join ${run}: only ${reportedAt.length}/${n} executors reported within 60 s`)), 60_000)),
      ]);
      // An executor can report before the client has even read the 201: that counts as 0.
      runs.push(reportedAt.map((t) => Math.max(0, t - answeredAt)));
      for (const sim of sims) sim.onJob = undefined;
      await api('DELETE', `/v1/hosts/${joined.host.name}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    // A reconnect storm: every executor drops and connects again at once, as after a controller
    // restart or a takeover, each with its full table; until every host is online and applied.
    for (const sim of sims) sim.close();
    await new Promise((r) => setTimeout(r, 500));
    const stormStarted = performance.now();
    let reconnecting = 0;
    await Promise.all(
      Array.from({ length: CONNECT_CONCURRENCY }, async () => {
        while (reconnecting < n) await sims[reconnecting++]!.connect();
      }),
    );
    for (;;) {
      const { items } = (await api('GET', '/v1/hosts')) as { items: Array<{ status: string; generation: { desired: number; applied: number } }> };
      const away = items.filter((h) => h.status !== 'online').length;
      const behind = items.filter((h) => h.status === 'online' && h.generation.applied < h.generation.desired).length;
      if (away + behind === 0) break;
      if (performance.now() - stormStarted > 120_000) {
        throw new Error(
          `reconnect storm: after 120 s ${away} hosts are not online and ${behind} online hosts have not applied their generation; the controller said:\n${controller.output().slice(-3000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const stormMs = performance.now() - stormStarted;
    const stormRss = rssMiB(controller.child.pid!);

    const p50s = runs.map((r) => percentile(r, 50));
    const p99s = runs.map((r) => percentile(r, 99));
    const maxes = runs.map((r) => Math.max(...r));
    const rows: Row[] = [
      {
        name: `N=${n}: initial sync${withSubnets ? ` (${n - 1} routes per host)` : ' (hosts without subnets yet)'}`,
        extra: { total_ms: syncMs, per_host_ms: syncMs / n },
      },
      { name: `N=${n}: one host joins, p50 from the 201`, stat: summarize(p50s) },
      { name: `N=${n}: one host joins, p99 from the 201`, stat: summarize(p99s) },
      { name: `N=${n}: one host joins, max from the 201`, stat: summarize(maxes) },
      { name: `N=${n}: controller resident memory`, extra: { rss_MiB: rss } },
      { name: `N=${n}: all reconnect at once, in sync (tables kept)`, extra: { total_ms: stormMs } },
      { name: `N=${n}: controller resident memory after the storm`, extra: { rss_MiB: stormRss } },
    ];
    return { rows, p99: summarize(p99s).median, rss, syncMs };
  } finally {
    for (const sim of sims) sim.close();
    await controller.stop();
  }
}

const bench: Bench = {
  name: 'converge',
  description: 'fan-out convergence with N simulated executors',
  async run(): Promise<BenchReport> {
    // Every simulated executor's socket is an open file here and in the controller: raise the
    // limit as far as this machine lets us (the hard limit may be fixed by the sandbox).
    const limit = raiseOpenFileLimit();
    const dir = mkdtempSync(path.join(tmpdir(), 'crossdock-bench-converge-'));
    const rows: Row[] = [];
    const results = new Map<number, { p99: number; rss: number; syncMs: number }>();
    const notes: string[] = [`open-files limit: ${limit} per process`];
    try {
      for (const n of SIZES) {
        if (n + 1_000 > limit) {
          notes.push(`N=${n} skipped: needs about ${n + 1_000} open files, the limit here is ${limit}`);
          continue;
        }
        try {
          const r = await runSize(n, dir);
          rows.push(...r.rows);
          results.set(n, r);
        } catch (error) {
          notes.push(`N=${n} did not complete: ${(error as Error).message}`);
          break;
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const at1000 = results.get(1000);
    const largest = Math.max(...results.keys());
    const atLargest = results.get(largest);
    notes.push(
      `Latency runs from the API's 201 for the new host to each executor sending its result (${JOIN_RUNS} joins per N; median of the per-join figures).`,
      `Up to N=${FULL_TABLE_MAX_HOSTS} every host has a subnet, so its initial sync carries a route to every other host. Above that, hosts are registered without subnets: the full table is N^2 routes in total (10^8 at 10,000), which one process cannot simulate here; the join still fans out one route to every executor.`,
    );
    return {
      bench: 'converge',
      rows,
      targets: [
        {
          figure: 'join p99, 1,000 executors',
          target: '< 250 ms',
          measured: at1000 ? `${at1000.p99.toFixed(0)} ms` : 'not run',
          met: at1000 ? at1000.p99 < 250 : null,
        },
        {
          figure: `join p99, ${largest} executors`,
          target: '< 3 s at 10,000',
          measured: atLargest ? `${atLargest.p99.toFixed(0)} ms` : 'not run',
          met: largest >= 10_000 && atLargest ? atLargest.p99 < 3000 : null,
        },
        {
          figure: 'controller memory, 1,000 executors',
          target: '< 150 MB',
          measured: at1000 ? `${at1000.rss.toFixed(0)} MiB` : 'not run',
          met: at1000 ? at1000.rss * 1.048576 < 150 : null,
        },
      ],
      notes,
      summary: `converge: ${[...results].map(([n, r]) => `N=${n} join p99 ${r.p99.toFixed(0)} ms, RSS ${r.rss.toFixed(0)} MiB`).join('; ')}`,
    };
  },
};

export default bench;
