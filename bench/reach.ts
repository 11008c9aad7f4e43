// reach: the rules that let the fleet's hosts and a pool's allowFrom networks reach the pools
// (issue 13), at 1,000 hosts, by how the hosts are numbered: how many rules every host's
// CROSSDOCK-FORWARD carries, what building them costs the controller, how large the chain a
// change sends every host is, and how long the executor takes to apply it (the real iptables
// driver in a throwaway namespace set up like a Docker host).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createDockerDriver, createIpDriver, createIptablesDriver, createRunner, createSysctlDriver } from '../executor/src/drivers/index.ts';
import type { Drivers } from '../executor/src/observe.ts';
import { runJob, type JobOptions } from '../executor/src/run-job.ts';
import { firewallJumps, firewallPolicy, localState, type PlanHost, type PlanPool } from '../controller/src/planner/desired.ts';
import { parseIPv4 } from '../shared/src/index.ts';
import { MIN_RUNS, summarize, type Bench, type BenchReport, type Row } from './harness.ts';
import {
  NONEXISTENT_DOCKER,
  NS_PREFIX,
  cleanLeftovers,
  countApplied,
  createNamespace,
  deleteNamespace,
  flushCrossdock,
  loadNote,
  nsenter,
  unavailable,
} from './netns.ts';

const HOSTS = 1_000;
const RUNS = Math.max(MIN_RUNS, 7);
const POLICY_RUNS = 50;
const POOL = '10.100.0.0/16';
const JOB_OPTIONS: JobOptions = { daemonJsonPath: '/nonexistent/cdbench/daemon.json', engineRestartCommand: null };
/** Four underlay segments of 1,024 addresses each: 10.20.0.0/22, 10.20.4.0/22, ... */
const SEGMENTS = [0, 1, 2, 3].map((i) => ({ cidr: `10.20.${i * 4}.0/22`, base: parseIPv4(`10.20.${i * 4}.0`)! }));
const SEGMENT_SIZE = 1024;
const PACKET_RULES = [0, 2_000];
const PINGS = 3_000;

/** Deterministic, so every run measures the same scattered layout (mulberry32). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 250 hosts at random places in each segment, the other addresses other machines'. */
function scattered(): number[] {
  const next = random(13);
  return SEGMENTS.flatMap(({ base }) => {
    const offsets = new Set<number>();
    while (offsets.size < HOSTS / SEGMENTS.length) offsets.add(1 + Math.floor(next() * (SEGMENT_SIZE - 2)));
    return [...offsets].map((o) => base + o);
  });
}

interface Layout {
  name: string;
  addresses: number[];
  pools: PlanPool[];
}

const LAYOUTS: Layout[] = [
  { name: 'one run (10.20.0.10 up)', addresses: Array.from({ length: HOSTS }, (_, i) => SEGMENTS[0]!.base + 10 + i), pools: [{ cidr: POOL, allowFrom: [] }] },
  {
    name: '4 segments, a run in each',
    addresses: SEGMENTS.flatMap(({ base }) => Array.from({ length: HOSTS / SEGMENTS.length }, (_, i) => base + 2 + i)),
    pools: [{ cidr: POOL, allowFrom: [] }],
  },
  { name: '4 segments, scattered', addresses: scattered(), pools: [{ cidr: POOL, allowFrom: [] }] },
  { name: '4 segments, scattered, segments in allowFrom', addresses: scattered(), pools: [{ cidr: POOL, allowFrom: SEGMENTS.map((s) => s.cidr) }] },
  {
    name: 'every other address (= a rule per host)',
    addresses: Array.from({ length: HOSTS }, (_, i) => SEGMENTS[0]!.base + 2 * i),
    pools: [{ cidr: POOL, allowFrom: [] }],
  },
];

const bench: Bench = {
  name: 'reach',
  description: 'the rules letting 1,000 hosts (and allowFrom networks) reach the pools, by numbering: rule count, planner time, chain size, apply time',
  unavailable,

  async run(): Promise<BenchReport> {
    const left = cleanLeftovers();
    const notes = [loadNote('at the start')];
    if (left.length > 0) notes.push(`removed namespaces an interrupted run left: ${left.join(', ')}`);
    const ns = createNamespace('reach');
    const rows: Row[] = [];
    const figures = new Map<string, { rules: number; applyMs: number }>();
    try {
      const drivers: Drivers = {
        ip: createIpDriver({ runner: createRunner({ netns: ns }) }),
        iptables: createIptablesDriver({ runner: createRunner({ netns: ns }) }),
        docker: createDockerDriver({ dockerHost: NONEXISTENT_DOCKER }),
        sysctl: createSysctlDriver({ root: '/nonexistent/cdbench/sys' }),
      };
      const host: PlanHost = {
        id: 1,
        name: 'bench',
        address: '10.20.0.1',
        interface: 'eth0',
        subnets: [{ id: 1, cidr: '10.100.1.0/24', gateway: '10.100.1.1', network: 'crossdock', mode: 'network' }],
      };
      const env = { dockerAvailable: false, dockerUser: true, engineMajor: null };
      for (const layout of LAYOUTS) {
        // the controller's part: the policy, once per change (the fleet model keeps it)
        const policyMs: number[] = [];
        let policy = firewallPolicy(layout.pools, layout.addresses);
        for (let i = 0; i < POLICY_RUNS; i++) {
          const t0 = performance.now();
          policy = firewallPolicy(layout.pools, layout.addresses);
          policyMs.push(performance.now() - t0);
        }
        const local = localState(host, policy, env);
        const filter = local.chains.find((c) => c.table === 'filter')!;
        const job = [...local.chains, ...firewallJumps(env)];
        // what a host joining sends every attached host: the filter chain
        const chainKiB = JSON.stringify(filter).length / 1024;

        const samples: number[] = [];
        for (let i = 0; i < RUNS + 1; i++) {
          flushCrossdock(ns);
          const commands = JSON.parse(JSON.stringify(job)) as unknown[];
          const t0 = performance.now();
          const outcome = await runJob(commands, drivers, JOB_OPTIONS);
          const ms = performance.now() - t0;
          if (!outcome.accepted || outcome.results.some((r) => !r.ok))
            throw new Error(`${layout.name}: the job failed: ${JSON.stringify(outcome).slice(0, 500)}`);
          const applied = countApplied(ns).rules;
          const expected = local.chains.reduce((n, c) => n + c.rules.length, 0);
          if (applied !== expected) throw new Error(`${layout.name}: ${applied} rules applied, expected ${expected}`);
          if (i > 0) samples.push(ms); // the first run warms up
        }
        const stat = summarize(samples);
        figures.set(layout.name, { rules: policy.reach.length, applyMs: stat.median });
        rows.push({
          name: layout.name,
          stat,
          extra: {
            'reach rules': policy.reach.length,
            'filter rules': filter.rules.length,
            'policy ms': summarize(policyMs).median,
            'chain KiB': chainKiB,
          },
        });
      }
    } finally {
      flushCrossdock(ns);
      deleteNamespace(ns);
    }
    const packet = await perPacket();
    if (packet) rows.push(...packet.rows);
    else notes.push('round-trip rows skipped: busybox (for ping -A) is not installed');
    notes.push(
      loadNote('at the end'),
      `${HOSTS} hosts, one pool; the receiving host has one local subnet (2 rules of its own); reach rules = 2 per host block and per allowFrom network (both ways)`,
      'apply = runJob of both chains and both jumps through the real iptables driver (iptables-save, one iptables-restore), from a namespace without them, median of the runs after one warm-up',
      'policy ms = firewallPolicy for the whole fleet (the controller builds it once per change, not once per host); chain KiB = the filter chain as JSON, what a host joining or leaving sends every attached host',
      `scattered: ${HOSTS / SEGMENTS.length} hosts at random addresses of each of 4 /22 segments (seeded), the rest of each segment other machines; with the segments in allowFrom their blocks give way to 4 allowFrom networks`,
    );
    const run = figures.get(LAYOUTS[0]!.name)!;
    const runs4 = figures.get(LAYOUTS[1]!.name)!;
    const worst = figures.get(LAYOUTS[4]!.name)!;
    const summary =
      `1,000 hosts: ${run.rules} reach rules numbered in one run, ${runs4.rules} in 4 runs (applied in ${runs4.applyMs.toFixed(0)} ms); ` +
      `${worst.rules} when no two are adjacent (${worst.applyMs.toFixed(0)} ms), as many as a rule per host`;
    notes.push(
      `ping round trip = the mean of ${PINGS} back-to-back pings (busybox ping -A) through a namespace forwarding them, whose CROSSDOCK-FORWARD holds N non-matching host rules ahead of the one that accepts them (both directions cross it)`,
    );
    return { bench: 'reach', rows, notes, summary: packet ? `${summary}; ${packet.summary}` : summary };
  },
};

/**
 * What a long chain costs a packet that matches late (a host's, an allowFrom network's): pings
 * from one namespace to another through a third that forwards them, its CROSSDOCK-FORWARD
 * holding N rules ahead of the one that accepts them.
 */
async function perPacket(): Promise<{ rows: Row[]; summary: string } | null> {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((file) => existsSync(file));
  if (!busybox) return null;
  const [a, r, b] = ['a', 'r', 'b'].map((role) => `${NS_PREFIX}reach-${role}-${process.pid}`) as [string, string, string];
  const sh = (argv: string[], input?: string) => execFileSync(argv[0]!, argv.slice(1), { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  const rtt = new Map<number, number[]>(PACKET_RULES.map((n) => [n, []]));
  try {
    for (const ns of [a, r, b]) sh(['ip', 'netns', 'add', ns]);
    for (const ns of [a, r, b]) sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    sh(['ip', '-n', a, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', r]);
    sh(['ip', '-n', b, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1', 'netns', r]);
    const wire: Array<[string, string, string]> = [
      [a, 'eth0', '203.0.113.2/30'],
      [r, 'eth0', '203.0.113.1/30'],
      [r, 'eth1', '203.0.113.5/30'],
      [b, 'eth0', '203.0.113.6/30'],
    ];
    for (const [ns, dev, address] of wire) {
      sh(['ip', '-n', ns, 'address', 'add', address, 'dev', dev]);
      sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    }
    sh(['ip', '-n', a, 'route', 'add', 'default', 'via', '203.0.113.1']);
    sh(['ip', '-n', b, 'route', 'add', 'default', 'via', '203.0.113.5']);
    sh([...nsenter(r), busybox, 'sysctl', '-w', 'net.ipv4.ip_forward=1']);
    for (let run = 0; run < RUNS; run++) {
      for (const n of PACKET_RULES) {
        const ahead = Array.from({ length: n }, (_, i) => `-A CROSSDOCK-FORWARD -s 10.50.${(2 * i) >> 8}.${(2 * i) & 255}/32 -d 10.100.0.0/16 -j ACCEPT`);
        const rules = [
          '*filter',
          ':FORWARD DROP [0:0]',
          ':CROSSDOCK-FORWARD - [0:0]',
          '-A FORWARD -j CROSSDOCK-FORWARD',
          ...ahead,
          '-A CROSSDOCK-FORWARD -s 203.0.113.0/29 -d 203.0.113.0/29 -j ACCEPT',
          'COMMIT',
        ];
        sh([...nsenter(r), 'iptables-restore'], `${rules.join('\n')}\n`);
        const out = sh([...nsenter(a), busybox, 'ping', '-q', '-A', '-c', String(PINGS), '203.0.113.6']);
        const avg = /min\/avg\/max = [\d.]+\/([\d.]+)\//.exec(out)?.[1];
        if (!avg) throw new Error(`no round trip in: ${out}`);
        rtt.get(n)!.push(Number(avg) * 1000);
      }
    }
  } finally {
    for (const ns of [a, r, b]) deleteNamespace(ns);
  }
  const rows = PACKET_RULES.map((n): Row => ({ name: `ping round trip, ${n} rules ahead of the match`, stat: summarize(rtt.get(n)!), unit: 'us' }));
  const [none, many] = PACKET_RULES.map((n) => summarize(rtt.get(n)!).median) as [number, number];
  const last = PACKET_RULES[PACKET_RULES.length - 1]!;
  return {
    rows,
    summary: `a round trip matched after ${last} rules each way takes ${(many - none).toFixed(0)} us more (${(((many - none) / (2 * last)) * 1000).toFixed(1)} ns a rule)`,
  };
}

export default bench;
