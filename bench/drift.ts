// drift: how long a host takes to get back what someone removed by hand. On the lab (two hosts
// with real engines, the controller and the executors as `npm run lab -- up` starts them) with
// the executors' periodic report at the product default of 30 s, so what brings a repair
// sooner is the executor's monitors (ip monitor, xtables-monitor, the engine's events). Each
// figure runs from the removal to the thing being back on h1, found by looking every 10 ms;
// the floor beside it is what putting it back by hand costs there (one process, or one API
// call), which no repair can beat.
import { performance } from 'node:perf_hooks';
import { existsSync, readFileSync } from 'node:fs';
import { REPO_ROOT, startExecutor } from '../test/lab/crossdock.ts';
import { down, dockerIn, hostExec, up } from '../test/lab/lab.ts';
import { missing } from '../test/support/requirements.ts';
import { percentile, summarize, type Bench, type BenchReport, type Row } from './harness.ts';

const RUNS = 20;
const POLL_MS = 10;
const GIVE_UP_MS = 60_000;
const DEFAULT_REPORT_INTERVAL_MS = 30_000;
const TARGETS = { route: 1_000, network: 2_000, chain: 5_000 };
/** The bundled executor, as an operator runs it (`npm run bench` builds it first). */
const EXECUTOR_BUNDLE = 'executor/dist/main.mjs';
/** How long the idle executor is watched for its resident memory and CPU. */
const IDLE_WATCH_MS = 120_000;
const IDLE_TARGETS = { rssMiB: 60, cpuPercent: 0.1 };

/** utime + stime of a process, in seconds (clock ticks of 1/100 s on Linux). */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMiBOf(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

async function sh(host: string, argv: string[]): Promise<string> {
  const result = await hostExec(host, argv, { check: true });
  return result.stdout;
}

/** Polls until `back` holds; returns the ms since `since`. */
async function until(back: () => Promise<boolean>, since: number, what: string): Promise<number> {
  while (performance.now() - since < GIVE_UP_MS) {
    if (await back()) return performance.now() - since;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`${what} was not back within ${GIVE_UP_MS / 1000} s`);
}

interface Case {
  name: string;
  target: number;
  /** removes the thing; resolves when the removal is done */
  remove(): Promise<void>;
  isBack(): Promise<boolean>;
  /** puts it back by hand, for the floor */
  restore(): Promise<void>;
}

async function measure(c: Case): Promise<{ repair: number[]; floor: number[] }> {
  const repair: number[] = [];
  const floor: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await c.remove();
    const removedAt = performance.now();
    repair.push(await until(c.isBack, removedAt, c.name));
    // Let the repair's job finish and its own changes be announced before the next removal.
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  for (let i = 0; i < Math.min(RUNS, 5); i++) {
    await c.remove();
    const started = performance.now();
    await c.restore();
    floor.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  return { repair, floor };
}

const bench: Bench = {
  name: 'drift',
  description: 'how long a lab host takes to get back a route, a Docker network or a chain removed by hand (report timer at 30 s)',
  unavailable: () => missing('root', 'netns', 'dockerd', 'busybox', 'iptables'),
  async run(): Promise<BenchReport> {
    process.env.CROSSDOCK_LAB_RECONCILE_INTERVAL_MS = String(DEFAULT_REPORT_INTERVAL_MS);
    const lab = await up({ hosts: 2 });
    try {
      // h1 runs the bundled executor, as a host does (the lab's own run under tsx).
      if (!existsSync(`${REPO_ROOT}/${EXECUTOR_BUNDLE}`)) throw new Error(`${EXECUTOR_BUNDLE} is missing: npm run build`);
      const executorPid = await startExecutor(lab, 'h1', { executorEntry: EXECUTOR_BUNDLE });
      const h2Subnet = lab.hosts[1]!.subnets[0]!.cidr;
      const via = lab.hosts[1]!.address;
      const { url, adminToken } = lab.controller!;
      const inSync = async () => {
        const response = await fetch(`${url}/v1/hosts`, { headers: { authorization: `Bearer ${adminToken}` } });
        const { items } = (await response.json()) as { items: Array<{ status: string; generation: { desired: number; applied: number } }> };
        return items.every((h) => h.status === 'online' && h.generation.applied === h.generation.desired);
      };
      await until(inSync, performance.now(), 'the lab in sync');
      const network = await dockerIn('h1', ['network', 'inspect', 'crossdock', '--format', '{{json .}}'], { check: true });
      const info = JSON.parse(network.stdout) as {
        IPAM: { Config: Array<{ Subnet: string; Gateway: string }> };
        Labels: Record<string, string>;
        Options: Record<string, string>;
      };
      const chain = await sh('h1', ['iptables', '-S', 'CROSSDOCK-FORWARD']);
      const chainRules = chain.split('\n').filter((l) => l.startsWith('-A '));

      const cases: Case[] = [
        {
          name: 'route deleted by hand',
          target: TARGETS.route,
          remove: async () => void (await sh('h1', ['ip', 'route', 'delete', h2Subnet])),
          isBack: async () => (await sh('h1', ['ip', 'route', 'show', h2Subnet])).includes(`via ${via}`),
          restore: async () => void (await sh('h1', ['ip', 'route', 'replace', h2Subnet, 'via', via, 'dev', 'eth0', 'proto', '252'])),
        },
        {
          name: 'Docker network removed by hand',
          target: TARGETS.network,
          remove: async () => void (await dockerIn('h1', ['network', 'rm', 'crossdock'], { check: true })),
          isBack: async () => (await dockerIn('h1', ['network', 'inspect', 'crossdock'], { check: false })).code === 0,
          restore: async () =>
            void (await dockerIn(
              'h1',
              [
                'network',
                'create',
                '--subnet',
                info.IPAM.Config[0]!.Subnet,
                '--gateway',
                info.IPAM.Config[0]!.Gateway,
                ...Object.entries(info.Labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
                ...Object.entries(info.Options).flatMap(([k, v]) => ['--opt', `${k}=${v}`]),
                'crossdock',
              ],
              { check: true },
            )),
        },
        {
          name: 'firewall chain flushed by hand',
          target: TARGETS.chain,
          remove: async () => void (await sh('h1', ['iptables', '-F', 'CROSSDOCK-FORWARD'])),
          isBack: async () =>
            (await sh('h1', ['iptables', '-S', 'CROSSDOCK-FORWARD'])).split('\n').filter((l) => l.startsWith('-A ')).length === chainRules.length,
          restore: async () =>
            void (await hostExec('h1', ['iptables-restore', '--noflush'], { check: true, input: `*filter\n${chainRules.join('\n')}\nCOMMIT\n` })),
        },
      ];

      const rows: Row[] = [];
      const targets: NonNullable<BenchReport['targets']> = [];
      const summaries: string[] = [];
      for (const c of cases) {
        const { repair, floor } = await measure(c);
        const p99 = percentile(repair, 99);
        rows.push({ name: `${c.name}: back`, stat: summarize(repair), extra: { p99_ms: Number(p99.toFixed(0)) } });
        rows.push({ name: `${c.name}: floor (put back by hand)`, stat: summarize(floor) });
        targets.push({ figure: `${c.name}, back (p99 of ${RUNS})`, target: `< ${c.target / 1000} s`, measured: `${p99.toFixed(0)} ms`, met: p99 < c.target });
        summaries.push(`${c.name.split(' ')[0]} p99 ${p99.toFixed(0)} ms`);
      }
      // The executor at rest, as it spends nearly all its life: the repairs are over, nothing
      // changes; what is left is its monitors, its heartbeats and the periodic report.
      await new Promise((resolve) => setTimeout(resolve, 10_000));
      const cpuBefore = cpuSecondsOf(executorPid);
      const watchStarted = performance.now();
      const rssSamples: number[] = [];
      while (performance.now() - watchStarted < IDLE_WATCH_MS) {
        rssSamples.push(rssMiBOf(executorPid));
        await new Promise((resolve) => setTimeout(resolve, 5_000));
      }
      const cpuPercent = ((cpuSecondsOf(executorPid) - cpuBefore) / ((performance.now() - watchStarted) / 1000)) * 100;
      const rss = Math.max(...rssSamples);
      rows.push({
        name: `idle executor (bundled, report every ${DEFAULT_REPORT_INTERVAL_MS / 1000} s): resident memory, max over ${IDLE_WATCH_MS / 1000} s`,
        extra: { rss_MiB: Number(rss.toFixed(1)) },
      });
      rows.push({ name: `idle executor: CPU over ${IDLE_WATCH_MS / 1000} s`, extra: { percent_of_a_core: Number(cpuPercent.toFixed(3)) } });
      targets.push({
        figure: 'idle executor, resident memory',
        target: `< ${IDLE_TARGETS.rssMiB} MiB`,
        measured: `${rss.toFixed(0)} MiB`,
        met: rss < IDLE_TARGETS.rssMiB,
      });
      targets.push({
        figure: 'idle executor, CPU',
        target: `< ${IDLE_TARGETS.cpuPercent}% of a core`,
        measured: `${cpuPercent.toFixed(2)}%`,
        met: cpuPercent < IDLE_TARGETS.cpuPercent,
      });
      summaries.push(`idle executor ${rss.toFixed(0)} MiB, ${cpuPercent.toFixed(2)}% CPU`);
      return {
        bench: 'drift',
        rows,
        targets,
        summary: `drift: ${summaries.join(', ')} (report timer ${DEFAULT_REPORT_INTERVAL_MS / 1000} s)`,
        notes: [
          `${RUNS} removals per case on lab host h1 (nf_tables), each timed from the removal to the thing being back, looking every ${POLL_MS} ms (the polling adds up to ${POLL_MS} ms and a process start to every figure).`,
          'A repair is: the monitor sees the change, the executor waits 100 ms for the burst to end, observes the host, sends its state; the controller plans; the executor runs the job.',
        ],
      };
    } finally {
      await down();
    }
  },
};

export default bench;
