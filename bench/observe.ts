// observe: the executor's observation of a host (observeHost: routes, interfaces, firewall,
// Docker, sysctl) with 1,000 and 10,000 crossdock routes present, in a throwaway namespace,
// and its parts: routes only, iptables only, each driver's own work on captured output (no
// process), and the floor of starting the same tool processes without parsing anything.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createDockerDriver, createIpDriver, createIptablesDriver, createRunner, createSysctlDriver, type Runner } from '../executor/src/drivers/index.ts';
import { observeHost, type Drivers } from '../executor/src/observe.ts';
import { renderIpBatch } from '../shared/src/index.ts';
import { MIN_RUNS, summarize, type Bench, type BenchReport, type Row, type Stat } from './harness.ts';
import { restoreInput } from './apply.ts';
import {
  NONEXISTENT_DOCKER,
  cleanLeftovers,
  countApplied,
  createNamespace,
  deleteNamespace,
  desiredFor,
  flushCrossdock,
  loadNote,
  inNs,
  mustSpawn,
  nsenter,
  unavailable,
} from './netns.ts';

const SIZES = [1_000, 10_000];
const RUNS = Math.max(MIN_RUNS, 15);
const ROUTES_ARGV = ['ip', '-N', '-4', '-json', 'route', 'show', 'table', 'main', 'proto', '252'];
const ADDRESSES_ARGV = ['ip', '-json', 'address', 'show'];
const SAVE_ARGV = ['iptables-save'];

const time = async (f: () => Promise<unknown>): Promise<number> => {
  const started = performance.now();
  await f();
  return performance.now() - started;
};

/** A runner that answers every argv with what the real one printed for it, with no process. */
function replaying(captured: Map<string, string>): Runner {
  return async (argv) => {
    const stdout = captured.get(argv.join(' '));
    if (stdout === undefined) throw new Error(`nothing captured for ${argv.join(' ')}`);
    return { ok: true, exitCode: 0, stdout, stderr: '', durationMs: 0 };
  };
}

const bench: Bench = {
  name: 'observe',
  description: 'observeHost (real ip + iptables drivers in a namespace, Docker unreachable) with 1,000 and 10,000 crossdock routes, and its parts',
  unavailable,

  async run(): Promise<BenchReport> {
    const left = cleanLeftovers();
    const loadBefore = loadNote('at the start');
    const ns = createNamespace('observe');
    // The sysctl driver reads /proc/sys of the bench's own namespace; point it at a stand-in tree.
    const sysRoot = mkdtempSync(path.join(tmpdir(), 'cdbench-sys-'));
    mkdirSync(path.join(sysRoot, 'net', 'ipv4'), { recursive: true });
    writeFileSync(path.join(sysRoot, 'net', 'ipv4', 'ip_forward'), '1\n');
    const rows: Row[] = [];
    const stats = new Map<string, Stat>();
    const notes: string[] = [];
    if (left.length > 0) notes.push(`removed namespaces an interrupted run left: ${left.join(', ')}`);
    try {
      const runner = createRunner({ netns: ns });
      const drivers: Drivers = {
        ip: createIpDriver({ runner }),
        iptables: createIptablesDriver({ runner }),
        docker: createDockerDriver({ dockerHost: NONEXISTENT_DOCKER }),
        sysctl: createSysctlDriver({ root: sysRoot }),
      };
      for (const size of SIZES) {
        // Setup, not timed: the host's full desired state, applied with the tools directly.
        const d = desiredFor(size);
        flushCrossdock(ns);
        inNs(ns, ['iptables-restore', '--noflush'], restoreInput(d.chains, d.jumps));
        inNs(ns, ['ip', '-batch', '-'], renderIpBatch(d.routes));
        const applied = countApplied(ns);
        if (applied.routes !== size) throw new Error(`setup at ${size}: ${applied.routes} routes applied`);

        const state = await observeHost(drivers);
        if (state.routes.length !== size || state.firewall.chains.length !== 2 || state.firewall.jumps.length !== 2 || state.docker.available) {
          throw new Error(
            `observeHost at ${size} saw ${state.routes.length} routes, ${state.firewall.chains.length} chains, ${state.firewall.jumps.length} jumps, docker ${state.docker.available}`,
          );
        }
        const captured = new Map<string, string>();
        for (const argv of [ROUTES_ARGV, ADDRESSES_ARGV, SAVE_ARGV]) captured.set(argv.join(' '), inNs(ns, argv));
        const replay = replaying(captured);
        const ipInProcess = createIpDriver({ runner: replay });
        const iptablesInProcess = createIptablesDriver({ runner: replay });
        const outputKiB = (argv: string[]) => Math.round(captured.get(argv.join(' '))!.length / 1024);

        const cases: Array<[string, () => Promise<unknown>, Record<string, string | number>]> = [
          [`observeHost ${size}`, () => observeHost(drivers), { processes: '3' }],
          [`  routes only ${size}`, () => drivers.ip.observeRoutes(), { processes: '1', 'output KiB': outputKiB(ROUTES_ARGV) }],
          [`  iptables only ${size}`, () => drivers.iptables.observe(), { processes: '1', 'output KiB': outputKiB(SAVE_ARGV) }],
          [`  interfaces only ${size}`, () => drivers.ip.observeInterfaces(), { processes: '1' }],
          [`  docker (unreachable) ${size}`, () => drivers.docker.observe(), { processes: '0' }],
          [`  routes, no process ${size}`, () => ipInProcess.observeRoutes(), { processes: '0' }],
          [`  iptables, no process ${size}`, () => iptablesInProcess.observe(), { processes: '0' }],
          [
            `floor: 3 tools at once ${size}`,
            () => Promise.all([ROUTES_ARGV, ADDRESSES_ARGV, SAVE_ARGV].map((a) => mustSpawn([...nsenter(ns), ...a]))),
            { processes: '3' },
          ],
          [`floor: ip route show ${size}`, () => mustSpawn([...nsenter(ns), ...ROUTES_ARGV]), { processes: '1' }],
          [`floor: iptables-save ${size}`, () => mustSpawn([...nsenter(ns), ...SAVE_ARGV]), { processes: '1' }],
          [`floor: nsenter true ${size}`, () => mustSpawn([...nsenter(ns), 'true']), { processes: '1' }],
        ];
        const samples = new Map<string, number[]>(cases.map(([name]) => [name, []]));
        for (const [, once] of cases) await once(); // warm-up
        for (let i = 0; i < RUNS; i++) {
          for (const [name, once] of cases) samples.get(name)!.push(await time(once));
        }
        for (const [name, , extra] of cases) {
          const stat = summarize(samples.get(name)!);
          stats.set(name.trim(), stat);
          rows.push({ name, stat, extra });
        }
      }
    } finally {
      deleteNamespace(ns);
      rmSync(sysRoot, { recursive: true, force: true });
    }

    const o1 = stats.get('observeHost 1000')!.median;
    const o10 = stats.get('observeHost 10000')!.median;
    const floor1 = stats.get('floor: 3 tools at once 1000')!.median;
    const spawn1 = stats.get('floor: nsenter true 1000')!.median;
    const targets: NonNullable<BenchReport['targets']> = [
      { figure: 'observeHost at 1,000 routes', target: 'under 5 ms', measured: `${o1.toFixed(1)} ms`, met: o1 < 5 },
    ];
    const ours1 = stats.get('routes, no process 1000')!.median + stats.get('iptables, no process 1000')!.median;
    const spawnMin = stats.get('floor: nsenter true 1000')!.min;
    notes.push(
      loadBefore,
      loadNote('at the end'),
      `our own work on the tools' output at 1,000 (routes + iptables, no process): ${ours1.toFixed(2)} ms; the rest is the 3 processes ` +
        `(ip route show, ip address show, iptables-save, run at once): starting even \`nsenter true\` costs ${spawn1.toFixed(1)} ms here (min ${spawnMin.toFixed(1)}), ` +
        `so a 5 ms observe needs no process at all (netlink from the executor itself), not a faster parser`,
    );
    notes.push(
      "each size: the planner's full desired state applied first (untimed): N routes over 250 peers, the two chains and their jumps, in a namespace set up like a Docker host",
      `Docker: the driver points at ${NONEXISTENT_DOCKER} (no such socket): observeHost reports it unavailable, as on a host without an engine; its cost is the failed connect only`,
      "sysctl: read from a stand-in /proc/sys tree (the bench runs in the root namespace, whose values are not the namespace's)",
      '"no process" rows: the same driver code on the output captured from the tool (JSON.parse / iptables-save parsing and mapping), to separate our work from the tools\'',
      `floor rows: the same tool processes started directly through nsenter, output read but not parsed; starting any process here costs ${spawn1.toFixed(1)} ms (nsenter true), the 3 tools at once ${floor1.toFixed(1)} ms`,
    );
    const summary = `observeHost ${o1.toFixed(1)} ms at 1,000 routes (floor of its 3 processes ${floor1.toFixed(1)} ms), ${o10.toFixed(1)} ms at 10,000; ${targets.filter((t) => t.met).length}/${targets.length} targets met`;
    return { bench: 'observe', rows, targets, notes, summary };
  },
};

export default bench;
