// Throwaway network namespaces for the benchmarks that drive the real ip and iptables tools.
// Every namespace is named cdbench-*; nothing here touches the root namespace's routes or
// firewall. A namespace looks like a host running Docker: eth0 (one end of a veth pair whose
// other end is in the same namespace) on 198.51.100.0/24,
// Docker's usual filter and nat chains, and no crossdock state until a benchmark applies it.
import { execFileSync, spawn } from 'node:child_process';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { FIREWALL_TABLES, parseIPv4 } from '../shared/src/index.ts';
import { desiredState, firewallPolicy, type PlanHost } from '../controller/src/planner/desired.ts';
import type { FirewallChain, FirewallJump, RouteReplace } from '../shared/src/index.ts';

export const NS_PREFIX = 'cdbench-';
export const DEV = 'eth0';
export const HOST_ADDRESS = '198.51.100.1';
/** Two pools, two local subnets: 8 filter rules for them and 4 nat rules, as the planner builds them. */
export const POOLS = ['10.0.0.0/9', '10.128.0.0/9'];
const LOCAL_SUBNETS = ['10.200.0.0/24', '10.200.1.0/24'];
/** Peer hosts the destinations are spread over, at 198.51.100.2 to .251. */
const PEERS = 250;
export const NONEXISTENT_DOCKER = 'unix:///run/cdbench-no-docker.sock';

function sh(argv: readonly string[], input?: string): string {
  return execFileSync(argv[0]!, argv.slice(1), { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 256 * 2 ** 20 });
}

function works(argv: string[]): boolean {
  try {
    sh(argv);
    return true;
  } catch {
    return false;
  }
}

/** Why the namespace benchmarks cannot run here, or null. */
export function unavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, iptables)';
  if (!works(['ip', 'netns', 'list'])) return '`ip netns` (iproute2) is not usable';
  if (!works(['nsenter', '--version'])) return 'nsenter (util-linux) is not installed';
  if (!works(['iptables-save', '--version']) || !works(['iptables-restore', '--version'])) return 'iptables-save/iptables-restore are not installed';
  return null;
}

export function listNamespaces(): string[] {
  return sh(['ip', 'netns', 'list'])
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name !== '');
}

/** Deletes cdbench-* namespaces an interrupted run left behind. */
export function cleanLeftovers(): string[] {
  const left = listNamespaces().filter((n) => n.startsWith(NS_PREFIX));
  for (const name of left) sh(['ip', 'netns', 'delete', name]);
  return left;
}

export const nsenter = (ns: string) => ['nsenter', `--net=/run/netns/${ns}`];

export function inNs(ns: string, argv: readonly string[], input?: string): string {
  return sh([...nsenter(ns), ...argv], input);
}

/**
 * What dockerd leaves in the tables of a host with one bridge (abridged from a Debian 12
 * docker.io host): the chains crossdock's jumps go into, and the rules around them.
 */
const DOCKER_LIKE_RULES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
COMMIT
`;

/** A fresh namespace named cdbench-<purpose>-<pid>, set up like a Docker host. */
export function createNamespace(purpose: string): string {
  const name = `${NS_PREFIX}${purpose}-${process.pid}`;
  if (listNamespaces().includes(name)) sh(['ip', 'netns', 'delete', name]);
  sh(['ip', 'netns', 'add', name]);
  try {
    inNs(name, ['ip', 'link', 'set', 'lo', 'up']);
    // A veth pair with both ends inside (this kernel has no dummy driver); the peer end up gives eth0 a carrier.
    inNs(name, ['ip', 'link', 'add', DEV, 'type', 'veth', 'peer', 'name', `${DEV}-peer`]);
    inNs(name, ['ip', 'address', 'add', `${HOST_ADDRESS}/24`, 'dev', DEV]);
    inNs(name, ['ip', 'link', 'set', `${DEV}-peer`, 'up']);
    inNs(name, ['ip', 'link', 'set', DEV, 'up']);
    inNs(name, ['iptables-restore'], DOCKER_LIKE_RULES);
  } catch (error) {
    deleteNamespace(name);
    throw error;
  }
  return name;
}

export function deleteNamespace(name: string): void {
  if (name.startsWith(NS_PREFIX) && listNamespaces().includes(name)) sh(['ip', 'netns', 'delete', name]);
}

/** Removes what crossdock applies (routes of its protocol, CROSSDOCK-* chains and the jumps to them), nothing else. */
export function flushCrossdock(ns: string): void {
  inNs(ns, ['ip', 'route', 'flush', 'table', 'main', 'proto', '252']);
  const lines: string[] = [];
  let table = '';
  const ours: Record<string, string[]> = {};
  const jumps: Record<string, string[]> = {};
  for (const line of inNs(ns, ['iptables-save']).split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    else if (line.startsWith(':CROSSDOCK-')) (ours[table] ??= []).push(line.slice(1).split(' ')[0]!);
    else if (line.startsWith('-A ') && !line.startsWith('-A CROSSDOCK-') && / -[jg] CROSSDOCK-\S+$/.test(line))
      (jumps[table] ??= []).push(`-D${line.slice(2)}`);
  }
  for (const t of FIREWALL_TABLES) {
    if (!ours[t] && !jumps[t]) continue;
    lines.push(`*${t}`, ...(jumps[t] ?? []), ...(ours[t] ?? []).map((c) => `-F ${c}`), ...(ours[t] ?? []).map((c) => `-X ${c}`), 'COMMIT');
  }
  if (lines.length > 0) inNs(ns, ['iptables-restore', '--noflush'], `${lines.join('\n')}\n`);
}

/** Destination i: distinct /24s from 10.1.0.0 up (10,000 reach 10.40.15.0/24), clear of the local subnets. */
export function destination(i: number): string {
  return `10.${1 + Math.floor(i / 256)}.${i % 256}.0/24`;
}

export interface Desired {
  routes: RouteReplace[];
  chains: FirewallChain[];
  jumps: FirewallJump[];
}

/**
 * The planner's desired state for this host with `routeCount` peer routes: PEERS peer hosts
 * on 198.51.100.0/24, each holding an equal share of the destinations, and the chains and
 * jumps of a host where Docker's DOCKER-USER exists. No sysctl (it would write the bench
 * process's own namespace) and no Docker networks (no engine).
 */
export function desiredFor(routeCount: number): Desired {
  const host: PlanHost = {
    id: 0,
    name: 'bench',
    address: HOST_ADDRESS,
    interface: DEV,
    subnets: LOCAL_SUBNETS.map((cidr, i) => ({ id: i + 1, cidr, gateway: cidr.replace(/0\/24$/, '1'), network: `crossdock${i}`, mode: 'network' as const })),
  };
  const peers: PlanHost[] = Array.from({ length: Math.min(PEERS, routeCount) }, (_, p) => ({
    id: p + 1,
    name: `peer${p}`,
    address: `198.51.100.${p + 2}`,
    interface: DEV,
    subnets: [],
  }));
  for (let i = 0; i < routeCount; i++) {
    const peer = peers[i % peers.length]!;
    peer.subnets.push({ id: 1000 + i, cidr: destination(i), gateway: destination(i).replace(/0\/24$/, '1'), network: 'crossdock', mode: 'network' });
  }
  const hosts = [host, ...peers];
  const policy = firewallPolicy(
    POOLS.map((cidr) => ({ cidr, allowFrom: [] })),
    hosts.map((h) => parseIPv4(h.address)!),
  );
  const desired = desiredState(host, hosts, policy, { dockerAvailable: false, dockerUser: true, engineMajor: null });
  return { routes: desired.routes, chains: desired.chains, jumps: desired.jumps };
}

export interface Spawned {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts one process (argv, no shell), feeds it `input`, and times it to its exit. */
export function timedSpawn(argv: readonly string[], input = ''): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    // A process that reads no input may exit before taking it: not an error of the benchmark.
    child.stdin.on('error', () => {});
    child.on('close', (code) => resolve({ ms: performance.now() - started, code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** Like timedSpawn, but a failure is an error: a benchmark must not time a command that failed. */
export async function mustSpawn(argv: readonly string[], input = ''): Promise<number> {
  const r = await timedSpawn(argv, input);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.ms;
}

/** Counts what is applied in the namespace: our routes, rules in CROSSDOCK-* chains, jumps to them. */
export function countApplied(ns: string): { routes: number; rules: number; jumps: number } {
  const routes = inNs(ns, ['ip', '-4', 'route', 'show', 'table', 'main', 'proto', '252']).split('\n').filter(Boolean).length;
  const saved = inNs(ns, ['iptables-save']).split('\n');
  return {
    routes,
    rules: saved.filter((l) => l.startsWith('-A CROSSDOCK-')).length,
    jumps: saved.filter((l) => l.startsWith('-A ') && !l.startsWith('-A CROSSDOCK-') && / -j CROSSDOCK-\S+$/.test(l)).length,
  };
}

/** The machine's load, for the notes: these benchmarks time processes, and other work on the same cores inflates them. */
export function loadNote(when: string): string {
  const [one, five] = os.loadavg();
  return `load average ${when}: ${one!.toFixed(1)} (1 min), ${five!.toFixed(1)} (5 min) on ${os.cpus().length} cores`;
}
