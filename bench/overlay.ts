// overlay: the executor applying a host's full state for 1,000 peers, half of them on-link
// (a direct route each) and half off-link (each a route through crossdock's VXLAN device, a
// permanent neighbour entry and a forwarding-database entry), through runJob and the real
// drivers in a throwaway namespace; beside it, in the same run, the floor: the same commands as
// one `ip -batch` (device, neighbours, routes), one `bridge -batch` (fdb) and one
// `iptables-restore --noflush` (chains, jumps), started the same way.
import { performance } from 'node:perf_hooks';
import { DEFAULT_VXLAN, desiredState, firewallPolicy, type PlanHost, type ReachPolicy } from '../controller/src/planner/desired.ts';
import {
  createDockerDriver,
  createIpDriver,
  createIptablesDriver,
  createRunner,
  createSysctlDriver,
  createVxlanDriver,
  type Runner,
} from '../executor/src/drivers/index.ts';
import type { Drivers } from '../executor/src/observe.ts';
import { runJob, type JobOptions } from '../executor/src/run-job.ts';
import { VXLAN_DEVICE, parseCidr, parseIPv4, renderBridgeBatchLine, renderIpBatchLine, renderVxlanIpLines, type Cidr } from '../shared/src/index.ts';
import { restoreInput } from './apply.ts';
import { MIN_RUNS, summarize, type Bench, type BenchReport, type Row } from './harness.ts';
import {
  DEV,
  HOST_ADDRESS,
  NONEXISTENT_DOCKER,
  POOLS,
  cleanLeftovers,
  createNamespace,
  deleteNamespace,
  flushCrossdock,
  inNs,
  loadNote,
  mustSpawn,
  nsenter,
  unavailable,
} from './netns.ts';

const PEERS = 1_000;
const RUNS = Math.max(MIN_RUNS, 7);
const JOB_OPTIONS: JobOptions = { daemonJsonPath: '/nonexistent/cdbench/daemon.json', engineRestartCommand: null };
/** The namespace's second on-link network: with 198.51.100.0/24, room for 500 on-link peers. */
const SECOND_ADDRESS = '203.0.113.1/24';
const ON_LINK = ['198.51.100.1/24', SECOND_ADDRESS];

/** Peer i's underlay address: on-link for the first half, elsewhere (never sent to: only an fdb destination) for the rest. */
function peerAddress(i: number): string {
  if (i < 250) return `198.51.100.${i + 2}`;
  if (i < 500) return `203.0.113.${i - 250 + 2}`;
  const j = i - 500;
  return `10.254.${j >> 8}.${j & 255}`;
}

function desiredOverlay() {
  const host: PlanHost = { id: 1, name: 'bench', address: HOST_ADDRESS, interface: DEV, subnets: [] };
  const peers: PlanHost[] = Array.from({ length: PEERS }, (_, i) => ({
    id: i + 2,
    name: `peer${i}`,
    address: peerAddress(i),
    interface: DEV,
    subnets: [
      { id: 1000 + i, cidr: `10.${(i >> 8) + 1}.${i & 255}.0/24`, gateway: `10.${(i >> 8) + 1}.${i & 255}.1`, network: 'crossdock', mode: 'network' as const },
    ],
  }));
  const hosts = [host, ...peers];
  const policy = firewallPolicy(
    POOLS.map((cidr) => ({ cidr, allowFrom: [] })),
    hosts.map((h) => parseIPv4(h.address)!),
  );
  const reach: ReachPolicy = { vxlan: DEFAULT_VXLAN, encapsulationOf: () => 'crossSubnet', mtuOf: () => null, possible: true };
  const networks = ON_LINK.map((a) => {
    const parsed = parseCidr(a.replace(/\.1\//, '.0/'));
    if (!parsed.ok) throw new Error(parsed.message);
    return parsed.cidr as Cidr;
  });
  const env = {
    dockerAvailable: false,
    dockerUser: true,
    engineMajor: null,
    interfaces: [{ name: DEV, mtu: 1500, addresses: ON_LINK, networks }],
    inputPolicy: 'ACCEPT',
  };
  return desiredState(host, hosts, policy, env, reach);
}

function flushOverlay(ns: string): void {
  flushCrossdock(ns);
  if (inNs(ns, ['ip', '-o', 'link', 'show']).includes(`${VXLAN_DEVICE}:`)) inNs(ns, ['ip', 'link', 'delete', VXLAN_DEVICE]);
}

function countOverlay(ns: string): { routes: number; viaDevice: number; neighbours: number; fdb: number } {
  const routes = inNs(ns, ['ip', '-o', 'route', 'show', 'proto', '252']).split('\n').filter(Boolean);
  const neighbours = inNs(ns, ['ip', 'neigh', 'show', 'dev', VXLAN_DEVICE, 'nud', 'permanent']).split('\n').filter(Boolean);
  const fdb = inNs(ns, ['bridge', 'fdb', 'show', 'dev', VXLAN_DEVICE])
    .split('\n')
    .filter((l) => l.includes(' dst ') && l.includes('permanent'));
  return { routes: routes.length, viaDevice: routes.filter((r) => r.includes(`dev ${VXLAN_DEVICE}`)).length, neighbours: neighbours.length, fdb: fdb.length };
}

const bench: Bench = {
  name: 'overlay',
  description:
    'runJob applying 1,000 peers, half off-link through VXLAN (route, neighbour, fdb each), against one ip -batch + one bridge -batch + one iptables-restore',
  unavailable,

  async run(): Promise<BenchReport> {
    const left = cleanLeftovers();
    const loadBefore = loadNote('at the start');
    const ns = createNamespace('overlay');
    const rows: Row[] = [];
    const notes: string[] = [];
    if (left.length > 0) notes.push(`removed namespaces an interrupted run left: ${left.join(', ')}`);
    try {
      inNs(ns, ['ip', 'address', 'add', SECOND_ADDRESS, 'dev', DEV]);
      const real = createRunner({ netns: ns });
      let processes = 0;
      const runner: Runner = (argv, options) => {
        processes += 1;
        return real(argv, options);
      };
      const drivers: Drivers = {
        ip: createIpDriver({ runner }),
        vxlan: createVxlanDriver({ runner }),
        iptables: createIptablesDriver({ runner }),
        docker: createDockerDriver({ dockerHost: NONEXISTENT_DOCKER }),
        sysctl: createSysctlDriver({ root: '/nonexistent/cdbench/sys' }),
      };
      const d = desiredOverlay();
      if (!d.device) throw new Error('the planner made no VXLAN device');
      const job = [d.device, ...d.chains, ...d.jumps, ...d.neighbours, ...d.fdb, ...d.routes];
      const expected = { routes: PEERS, viaDevice: PEERS / 2, neighbours: PEERS / 2, fdb: PEERS / 2 };
      const check = (what: string) => {
        const got = countOverlay(ns);
        if (JSON.stringify(got) !== JSON.stringify(expected)) throw new Error(`${what}: applied ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
      };
      const ipBatch = `${[...renderVxlanIpLines(d.device)!, ...d.neighbours.flatMap((n) => renderVxlanIpLines(n)!), ...d.routes.map(renderIpBatchLine)].join('\n')}\n`;
      const bridgeBatch = `${d.fdb.map(renderBridgeBatchLine).join('\n')}\n`;
      const firewall = restoreInput(d.chains, d.jumps);

      const cases: Array<[string, () => Promise<{ ms: number; processes: number }>]> = [
        [
          `executor ${PEERS} peers, half off-link`,
          async () => {
            const commands = JSON.parse(JSON.stringify(job)) as unknown[];
            processes = 0;
            const t0 = performance.now();
            const outcome = await runJob(commands, drivers, JOB_OPTIONS);
            const ms = performance.now() - t0;
            if (!outcome.accepted) throw new Error(`job refused: ${outcome.error}`);
            const failed = outcome.results.find((r) => !r.ok);
            if (failed) throw new Error(`${failed.text}: ${failed.stderr}`);
            return { ms, processes };
          },
        ],
        [
          `floor ${PEERS} peers, half off-link`,
          async () => {
            let ms = await mustSpawn([...nsenter(ns), 'iptables-restore', '--noflush'], firewall);
            ms += await mustSpawn([...nsenter(ns), 'ip', '-force', '-batch', '-'], ipBatch);
            ms += await mustSpawn([...nsenter(ns), 'bridge', '-force', '-batch', '-'], bridgeBatch);
            return { ms, processes: 3 };
          },
        ],
      ];
      const samples = new Map<string, Array<{ ms: number; processes: number }>>(cases.map(([name]) => [name, []]));
      for (const [name, once] of cases) {
        flushOverlay(ns);
        await once();
        check(`warm-up ${name}`);
      }
      for (let i = 0; i < RUNS; i++) {
        for (const [name, once] of cases) {
          flushOverlay(ns);
          samples.get(name)!.push(await once());
          check(name);
        }
      }
      flushOverlay(ns);
      for (const [name] of cases) {
        const s = samples.get(name)!;
        rows.push({ name, stat: summarize(s.map((x) => x.ms)), extra: { processes: String(s[0]!.processes) } });
      }
    } finally {
      deleteNamespace(ns);
    }
    const exec = rows[0]!.stat!.median;
    const floor = rows[1]!.stat!.median;
    rows[0]!.extra!['x floor'] = `${(exec / floor).toFixed(2)}x`;
    notes.push(
      loadBefore,
      loadNote('at the end'),
      `job = the planner's desiredState for a host on 198.51.100.1/24 and 203.0.113.1/24 with 1,000 peers of one subnet each: 500 on-link (a route via the peer on ${DEV}), ` +
        `500 off-link under crossSubnet (a route via the peer's VTEP on ${VXLAN_DEVICE}, a permanent neighbour entry, an fdb entry to its address), the device, the chains and jumps`,
      'each run starts from a namespace without crossdock routes, chains, jumps or VXLAN device (removed between runs, not timed); every run is checked: 1,000 routes, 500 of them on the device, 500 neighbours, 500 fdb entries',
      'floor = one iptables-restore --noflush, one ip -force -batch - (device, neighbours, routes) and one bridge -force -batch - (fdb), each through nsenter, timed to exit',
    );
    return {
      bench: 'overlay',
      rows,
      targets: [
        {
          figure: 'executor / floor, 1,000 peers half off-link',
          target: 'within 2x',
          measured: `${(exec / floor).toFixed(2)}x (${exec.toFixed(1)} / ${floor.toFixed(1)} ms)`,
          met: exec / floor <= 2,
        },
      ],
      notes,
      summary: `overlay: executor ${exec.toFixed(0)} ms for 1,000 peers half off-link, ${(exec / floor).toFixed(2)}x the floor (${floor.toFixed(0)} ms)`,
    };
  },
};

export default bench;
