// converge: a real controller process on a SQLite file and N simulated executors (real
// WebSocket clients speaking the real protocol, answering each job at once without touching
// any host). Measures the initial sync of N hosts, then, from the API's 201 for one more
// host, the time until every executor has reported the job that change caused; and the
// controller's resident memory with N executors connected; then a reconnect storm (every
// executor at once, each with its full table) until every host is in sync. The simulated
// executors run in CROSSDOCK_BENCH_SIM_PROCESSES child processes (default 2), which report
// their CPU time, so the storm's figure can say how much of it was the simulator's.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startController } from '../test/support/controller-process.ts';
import { keptAliveApi } from '../test/support/kept-alive-api.ts';
import { percentile, summarize, type Bench, type BenchReport, type Row } from './harness.ts';
import { epochNow, SimFleet, type FleetHost } from '../test/support/sim-fleet.ts';

const ADMIN = 'cda_bench-converge-admin-token-00';
const OPEN_FILES = 65_536;
const JOIN_RUNS = 5;
const REGISTER_CONCURRENCY = 32;
const CONNECT_CONCURRENCY = 200;
/** Up to this many hosts each gets a subnet, so each initial sync carries N-1 routes. */
const FULL_TABLE_MAX_HOSTS = 1_000;
const SIZES = (process.env.CROSSDOCK_BENCH_CONVERGE_SIZES ?? '100,1000,10000').split(',').map(Number);
const SIM_PROCESSES = Math.max(2, Number(process.env.CROSSDOCK_BENCH_SIM_PROCESSES ?? 2));
const STORM_POLL_MS = 100;
const STORM_TIMEOUT_MS = 120_000;

/** Raised here, before the controller and the simulators are started: they inherit it. */
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

/** How long after a sync the resident memory is read. */
const SETTLE_MS = 5_000;

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

interface SizeResult {
  rows: Row[];
  p99: number;
  rss: number;
  syncMs: number;
  stormMs: number;
  stormSimCpuS: number;
}

async function runSize(n: number, dir: string): Promise<SizeResult> {
  const withSubnets = n <= FULL_TABLE_MAX_HOSTS;
  const controller = await startController({
    dbFile: path.join(dir, `converge-${n}.db`),
    adminToken: ADMIN,
    bundle: true,
    args: ['--default-pool', '10.0.0.0/8'],
  });
  // Kept-alive connections, opened before any storm: a new one would wait behind the storm's own
  // TLS handshakes (at 10,000 executors, past fetch's 10 s connect timeout).
  const client = keptAliveApi(controller.url, ADMIN, REGISTER_CONCURRENCY);
  const api = async (method: string, route: string, body?: unknown) => {
    const r = await client.call(method, route, body);
    if (r.status >= 300) throw new Error(`${method} ${route} answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  let fleet: SimFleet | undefined;
  try {
    // Register N hosts.
    const hosts: FleetHost[] = new Array(n);
    let next = 0;
    await Promise.all(
      Array.from({ length: REGISTER_CONCURRENCY }, async () => {
        while (next < n) {
          const i = next++;
          const address = addressOf(i + 1);
          const { token } = await api('POST', '/v1/hosts', { name: `sim-${i}`, address, allocate: withSubnets });
          // All on one link (the /12): plain routes between them, the case crossdock is for.
          hosts[i] = { name: `sim-${i}`, token, underlay: `${address}/12` };
        }
      }),
    );
    fleet = await SimFleet.start({ processes: SIM_PROCESSES, url: controller.url, hosts });
    const sims = fleet;
    // Initial sync: every executor connects and applies its first job.
    const synced = new Set<string>();
    let allSynced: () => void = () => {};
    const syncDone = new Promise<void>((resolve) => (allSynced = resolve));
    sims.onJob = (job) => {
      if (!synced.has(job.name)) {
        synced.add(job.name);
        if (synced.size === n) allSynced();
      }
    };
    const syncStarted = performance.now();
    await sims.connect({ concurrency: CONNECT_CONCURRENCY });
    await syncDone;
    const syncMs = performance.now() - syncStarted;
    // Memory once the sync is over and settled: the controller collects a burst's garbage 3 s
    // after the burst (agents/memory.ts).
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const rss = rssMiB(controller.child.pid!);

    // One host joins, with a subnet: every executor gets one route.
    const runs: number[][] = [];
    for (let run = 0; run < JOIN_RUNS; run++) {
      const reportedAt: number[] = [];
      let done: () => void = () => {};
      const allReported = new Promise<void>((resolve) => (done = resolve));
      sims.onJob = (job) => {
        if (!job.kinds['route.replace']) return;
        reportedAt.push(job.at);
        if (reportedAt.length === n) done();
      };
      const joined = await api('POST', '/v1/hosts', { name: `joiner-${run}`, address: addressOf(n + 100 + run) });
      const answeredAt = epochNow();
      await Promise.race([
        allReported,
        new Promise((_, reject) => setTimeout(() => reject(new Error(`join ${run}: only ${reportedAt.length}/${n} executors reported within 60 s`)), 60_000)),
      ]);
      // An executor can report before the client has even read the 201: that counts as 0.
      runs.push(reportedAt.map((t) => Math.max(0, t - answeredAt)));
      sims.onJob = undefined;
      await api('DELETE', `/v1/hosts/${joined.host.name}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    // A reconnect storm: every executor drops and connects again at once, as after a controller
    // restart or a takeover, each with its full table; until every host is online and applied.
    // All at once, as after a restart: admission control (503 and Retry-After) paces them.
    await sims.close();
    await new Promise((r) => setTimeout(r, 500));
    const stormCpuBefore = await sims.cpuSeconds();
    const stormStarted = performance.now();
    const reconnected = sims.connect();
    reconnected.catch(() => {});
    for (;;) {
      // As `crossdock wait` reads it, from the controller's memory: listing every host from the
      // database ten times a second would be a load of its own on the controller being measured.
      const status = (await api('GET', '/v1/status')) as { hosts: { total: number; online: number }; behind: { counts: { online: number } } };
      const away = status.hosts.total - status.hosts.online;
      const behind = status.behind.counts.online;
      if (away + behind === 0) break;
      if (performance.now() - stormStarted > STORM_TIMEOUT_MS) {
        throw new Error(
          `reconnect storm: after ${STORM_TIMEOUT_MS / 1000} s ${away} hosts are not online and ${behind} online hosts have not applied their generation; the controller said:\n${controller.output().slice(-3000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, STORM_POLL_MS));
    }
    const stormMs = performance.now() - stormStarted;
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const stormRss = rssMiB(controller.child.pid!);
    const stormSimCpuS = (await sims.cpuSeconds()) - stormCpuBefore;
    const { refusals: stormRefusals } = await reconnected;

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
      { name: `N=${n}: controller resident memory, 5 s after the initial sync`, extra: { rss_MiB: rss } },
      {
        name: `N=${n}: all reconnect at once, in sync (tables kept)`,
        extra: { total_ms: stormMs, refusals: stormRefusals, sim_cpu_s: stormSimCpuS, sim_cpu_share: stormSimCpuS / (stormMs / 1000) },
      },
      { name: `N=${n}: controller resident memory, 5 s after the storm`, extra: { rss_MiB: stormRss } },
    ];
    return { rows, p99: summarize(p99s).median, rss, syncMs, stormMs, stormSimCpuS };
  } finally {
    await fleet?.stop();
    client.close();
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
    const results = new Map<number, SizeResult>();
    const notes: string[] = [`open-files limit: ${limit} per process (the controller and the ${SIM_PROCESSES} simulator processes inherit it)`];
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
          const cause = (error as Error).cause as Error | undefined;
          notes.push(`N=${n} did not complete: ${(error as Error).message}${cause ? ` (${cause.message})` : ''}`);
          break;
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const at1000 = results.get(1000);
    const at10000 = results.get(10_000);
    const largest = Math.max(...results.keys());
    const atLargest = results.get(largest);
    notes.push(
      `Latency runs from the API's 201 for the new host to each executor sending its result (${JOIN_RUNS} joins per N; median of the per-join figures).`,
      `The simulated executors run in ${SIM_PROCESSES} processes (CROSSDOCK_BENCH_SIM_PROCESSES). sim_cpu_s is their CPU time (user + system) during the storm, sim_cpu_share that over the storm's wall time: the part of the figure (at most, on a machine with spare cores) that was the simulator's work rather than the controller's.`,
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
          target: '< 200 MiB',
          measured: at1000 ? `${at1000.rss.toFixed(0)} MiB` : 'not run',
          met: at1000 ? at1000.rss < 200 : null,
        },
        {
          figure: '1,000 executors with full tables connect at once: all in sync',
          target: '< 5 s',
          measured: at1000 ? `${(at1000.stormMs / 1000).toFixed(1)} s (simulators ${at1000.stormSimCpuS.toFixed(1)} CPU s)` : 'not run',
          met: at1000 ? at1000.stormMs < 5_000 : null,
        },
        {
          figure: '10,000 executors connect at once: all in sync',
          target: '< 20 s',
          measured: at10000 ? `${(at10000.stormMs / 1000).toFixed(1)} s (simulators ${at10000.stormSimCpuS.toFixed(1)} CPU s)` : 'not run',
          met: at10000 ? at10000.stormMs < 20_000 : null,
        },
      ],
      notes,
      summary: `converge: ${[...results].map(([n, r]) => `N=${n} join p99 ${r.p99.toFixed(0)} ms, RSS ${r.rss.toFixed(0)} MiB, storm ${(r.stormMs / 1000).toFixed(1)} s`).join('; ')}`,
    };
  },
};

export default bench;
