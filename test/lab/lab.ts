// A sealed multi-host Docker lab on one machine: the library behind test/lab/cli.ts and the
// end-to-end tests. See test/lab/README.md for the layout.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { findLabProcesses, labNamespaces, leftovers, teardown, type Log } from './cleanup.ts';
import { assertCrossdockEntries, labApi, startCrossdock, stopCrossdock } from './crossdock.ts';
import { docker, dockerdPidOf, startEngine } from './engine.ts';
import { buildImageTar, importImage } from './image.ts';
import { createHost, createLan, createLanMachine, createRouter, createSegmentLan, forwardPolicyOf, ipForwardOf, routeRootToSegments } from './network.ts';
import { isAlive, netnsInodeOf, netnsInodeOfPath, readPidfile } from './processes.ts';
import { ipIn, nsExec, run, type RunOptions, type RunResult } from './run.ts';
import {
  assertLabDirUsable,
  CONTROLLER_ADDRESS,
  forwardingCase,
  HOST_INTERFACE,
  hostAddress,
  hostName,
  hostPaths,
  IMAGE,
  LAN_BRIDGE,
  LAN_CIDR,
  LAN_NETNS,
  MAX_HOSTS,
  MAX_HOSTS_PER_SEGMENT,
  MAX_SEGMENTS,
  netnsOf,
  readState,
  resolveLabDir,
  ROOT_VETH,
  ROUTER_NAME,
  segmentLayout,
  segmentsOfHosts,
  writeState,
  type ForwardingCase,
  type LabHost,
  type LabSegment,
  type LabState,
  type LabSubnet,
} from './state.ts';

export { findLabProcesses, leftovers } from './cleanup.ts';
export { engineRestartArgv, executorArgv, startCrossdock, stopCrossdock, type CrossdockOptions } from './crossdock.ts';
export { containerdCommand, dockerdArgs, dockerdCommand, dockerdPidOf, restartEngine } from './engine.ts';
export { CommandError, nsExec, run, type RunOptions, type RunResult } from './run.ts';
export {
  CONTROLLER_ADDRESS,
  CONTROLLER_PORT,
  DEFAULT_LAB_DIR,
  hostPaths,
  IMAGE,
  LAN_CIDR,
  LAN_NETNS,
  MAX_SEGMENTS,
  readState,
  resolveLabDir,
  type ForwardingCase,
  type LabHost,
  type LabSegment,
  type LabState,
  type LabSubnet,
} from './state.ts';

export const DEFAULT_HOSTS = 3;
export const DEFAULT_SEGMENTS = 1;

export interface UpOptions {
  hosts?: number;
  /** Split the hosts in order into this many segments joined by a router (default 1: one LAN, no router). */
  segments?: number;
  /** Start the controller and the executors after the infrastructure (default true). */
  crossdock?: boolean;
  dir?: string;
  log?: Log;
}

export interface DownOptions {
  dir?: string;
  log?: Log;
}

const quiet: Log = () => {};

// ---------------------------------------------------------------------------------------------
// up / down

function preflight(dir: string): void {
  if (process.getuid?.() !== 0) throw new Error('the lab needs root (network namespaces, dockerd)');
  // the root-side veth's sysctls are written through this process's /proc/sys/net
  const own = netnsInodeOf(process.pid);
  const init = netnsInodeOf(1); // null where pid 1 is not ours to inspect
  const inLab = labNamespaces().some((name) => netnsInodeOfPath(`/run/netns/${name}`) === own);
  if (inLab || (init !== null && init !== own)) throw new Error('run the lab from the root network namespace');
  assertLabDirUsable(dir);
}

/** One lab command at a time: a directory beside the lab's, holding the owner's pid. */
async function withLock<T>(dir: string, action: () => Promise<T>): Promise<T> {
  const lock = `${dir}.lock`;
  const owner = path.join(lock, 'pid');
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(owner, `${process.pid}\n`);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = readPidfile(owner);
      if (pid !== null && pid !== process.pid && isAlive(pid)) throw new Error(`another lab command (pid ${pid}) holds ${lock}`);
      rmSync(lock, { recursive: true, force: true }); // left by a killed command
    }
  }
  try {
    return await action();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

async function checkLanIsFree(segments: LabSegment[]): Promise<void> {
  const routes = await run('ip', ['-4', 'route', 'show', 'match', CONTROLLER_ADDRESS]);
  const clash = routes.stdout.split('\n').find((line) => line && !line.startsWith('default'));
  if (clash) throw new Error(`the root namespace already routes ${LAN_CIDR} (${clash.trim()}); the lab needs that range to itself`);
  // a wider route (another suite's 203.0.113.0/24 veth) is harmless: the lab's /27 is more specific
  for (const segment of segments.slice(1)) {
    const inside = (await run('ip', ['-4', 'route', 'show', 'root', segment.cidr])).stdout.trim();
    if (inside)
      throw new Error(
        `the root namespace already routes inside ${segment.cidr} (${inside.split('\n')[0]}); the lab's segment ${segment.index} needs that range to itself`,
      );
  }
}

function validateCounts(hosts: number, segments: number): void {
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > MAX_HOSTS) throw new Error(`--hosts must be an integer from 1 to ${MAX_HOSTS}, not ${hosts}`);
  if (!Number.isInteger(segments) || segments < 1 || segments > MAX_SEGMENTS)
    throw new Error(`--segments must be an integer from 1 to ${MAX_SEGMENTS}, not ${segments}`);
  if (segments > hosts) throw new Error(`--segments ${segments} needs at least ${segments} hosts (one per segment), not ${hosts}`);
  const largest = segmentsOfHosts(hosts, segments).filter((segment) => segment === 2).length;
  if (largest > MAX_HOSTS_PER_SEGMENT)
    throw new Error(`${hosts} hosts in ${segments} segments puts ${largest} in segment 2, which holds ${MAX_HOSTS_PER_SEGMENT}; use more segments`);
}

async function startHost(state: LabState, host: LabHost, tar: string, log: Log): Promise<void> {
  const segment = state.segments[host.segment - 1]!;
  const others = state.segments.filter((other) => other.index !== segment.index);
  await createHost(host.name, host.netns, host.address, host.forwarding, segment, others);
  const { pid, version } = await startEngine(state.dir, host.name);
  host.dockerdPid = pid;
  await importImage(host.dockerHost, tar);
  log(`${host.name}: dockerd ${version} (pid ${pid}) ready, ${host.forwarding} case, ${IMAGE} imported`);
}

/** dockerd sets FORWARD to DROP only when it had to enable forwarding itself; check that each host is the case it claims. */
async function verifyForwarding(host: LabHost): Promise<void> {
  const expected = host.forwarding === 'ubuntu' ? 'DROP' : 'ACCEPT';
  const [policy, forward] = await Promise.all([forwardPolicyOf(host.netns), ipForwardOf(host.netns)]);
  if (policy !== expected || forward !== 1) {
    throw new Error(`${host.name} (${host.forwarding} case) has FORWARD policy ${policy} and ip_forward ${forward}; expected ${expected} and 1`);
  }
}

/** The LAN, and with several segments their LANs, the router between them and the controller's routes to them. */
async function createNetwork(state: LabState, log: Log): Promise<void> {
  await createLan();
  if (!state.router) return;
  for (const segment of state.segments.slice(1)) await createSegmentLan(segment);
  await createRouter(state.router.netns, state.segments);
  await routeRootToSegments(state.segments);
  log(`segments ${state.segments.map((s) => `${s.index}: ${s.cidr} on ${s.netns}/${s.bridge} (router ${s.router})`).join(', ')}; router ${state.router.netns}`);
}

/**
 * Builds the lab from scratch: removes whatever an earlier lab left (recorded or not), then the
 * LAN, the hosts and their engines, and (unless crossdock is false) the controller and executors.
 */
export async function up(options: UpOptions = {}): Promise<LabState> {
  const dir = resolveLabDir(options.dir);
  const count = options.hosts ?? DEFAULT_HOSTS;
  const segmentCount = options.segments ?? DEFAULT_SEGMENTS;
  const log = options.log ?? quiet;
  validateCounts(count, segmentCount);
  const segments = segmentLayout(segmentCount);
  const segmentOf = segmentsOfHosts(count, segmentCount);
  const crossdock = options.crossdock ?? true;
  preflight(dir);
  if (crossdock) assertCrossdockEntries();
  return withLock(dir, async () => {
    log(`removing any earlier lab in ${dir}`);
    await teardown(dir, log);
    await checkLanIsFree(segments);
    await mkdir(dir, { recursive: true, mode: 0o700 });

    const state: LabState = {
      version: 1,
      dir,
      phase: 'building',
      createdAt: new Date().toISOString(),
      lan: { netns: LAN_NETNS, bridge: LAN_BRIDGE, cidr: LAN_CIDR, rootVeth: ROOT_VETH, controllerAddress: CONTROLLER_ADDRESS },
      segments,
      router: segmentCount > 1 ? { name: ROUTER_NAME, netns: netnsOf(ROUTER_NAME) } : null,
      hosts: Array.from({ length: count }, (_, i): LabHost => {
        const name = hostName(i + 1);
        const segment = segmentOf[i]!;
        const position = segmentOf.slice(0, i + 1).filter((s) => s === segment).length;
        return {
          name,
          netns: netnsOf(name),
          address: hostAddress(i + 1, segments[segment - 1], position),
          interface: HOST_INTERFACE,
          dockerHost: hostPaths(dir, name).dockerHost,
          forwarding: forwardingCase(i + 1),
          segment,
          dockerdPid: null,
          executorPid: null,
          token: null,
          subnets: [],
        };
      }),
      controller: null,
    };
    await writeState(state);

    log(`LAN ${LAN_CIDR} on ${LAN_NETNS}/${LAN_BRIDGE}, controller address ${CONTROLLER_ADDRESS} on ${ROOT_VETH}`);
    const [tar] = await Promise.all([buildImageTar(dir), createNetwork(state, log)]);
    await Promise.all(state.hosts.map((host) => startHost(state, host, tar, log)));
    await Promise.all(state.hosts.map(verifyForwarding));
    state.phase = 'ready';
    await writeState(state);

    if (crossdock) {
      try {
        await startCrossdock(state, { log });
      } catch (error) {
        // leave the hosts up (and the logs in place) but no half-started controller or executors
        await stopCrossdock(state, log).catch(() => {});
        throw error;
      }
    }
    return state;
  });
}

/** Stops and removes everything the lab made; idempotent, and works without state.json. */
export async function down(options: DownOptions = {}): Promise<void> {
  const dir = resolveLabDir(options.dir);
  preflight(dir);
  await withLock(dir, () => teardown(dir, options.log ?? quiet));
}

// ---------------------------------------------------------------------------------------------
// status

export interface HostStatus {
  name: string;
  netns: string;
  address: string;
  interface: string;
  dockerHost: string;
  subnets: LabSubnet[];
  forwarding: ForwardingCase;
  /** 1-based index into LabStatus.segments. */
  segment: number;
  dockerd: { pid: number | null; running: boolean; version: string | null };
  ipForward: number | null;
  forwardPolicy: string | null;
  executor: { pid: number; running: boolean } | null;
}

export interface LabStatus {
  up: boolean;
  healthy: boolean;
  dir: string;
  phase: LabState['phase'] | null;
  controller: { url: string; adminToken: string; pid: number | null; running: boolean } | null;
  segments: LabSegment[];
  /** The router between segments; null with one segment. */
  router: { netns: string; forwarding: number | null } | null;
  hosts: HostStatus[];
  problems: string[];
}

async function hostStatus(state: LabState, host: LabHost, controllerSubnets: Map<string, LabSubnet[]> | null): Promise<HostStatus> {
  const running = dockerdPidOf(state.dir, host.name);
  const pid = running ?? host.dockerdPid;
  const version = running ? await docker(host.dockerHost, ['version', '--format', '{{.Server.Version}}'], { check: false, timeoutMs: 5_000 }) : null;
  const [ipForward, forwardPolicy] = existsSync(`/run/netns/${host.netns}`)
    ? await Promise.all([ipForwardOf(host.netns), forwardPolicyOf(host.netns)])
    : [null, null];
  return {
    name: host.name,
    netns: host.netns,
    address: host.address,
    interface: host.interface,
    dockerHost: host.dockerHost,
    subnets: controllerSubnets?.get(host.name) ?? host.subnets,
    forwarding: host.forwarding,
    segment: host.segment ?? 1,
    dockerd: { pid, running: running !== null, version: version?.code === 0 ? version.stdout.trim() : null },
    ipForward,
    forwardPolicy,
    executor: host.executorPid === null ? null : { pid: host.executorPid, running: isAlive(host.executorPid) },
  };
}

async function subnetsFromController(controller: NonNullable<LabState['controller']>): Promise<Map<string, LabSubnet[]> | null> {
  try {
    const response = await labApi<{ items: Array<{ name: string; subnets?: LabSubnet[] }> }>(controller, 'GET', '/v1/hosts');
    if (response.status !== 200) return null;
    const body = response.body;
    return new Map(
      body.items.map((item) => [item.name, (item.subnets ?? []).map(({ id, cidr, gateway, network, mode }) => ({ id, cidr, gateway, network, mode }))]),
    );
  } catch {
    return null;
  }
}

/** What the lab is, as state.json records it, checked against what is running. */
export async function status(options: { dir?: string } = {}): Promise<LabStatus> {
  const dir = resolveLabDir(options.dir);
  const state = readState(dir);
  if (!state) {
    const strays = findLabProcesses(dir).length;
    const problems = existsSync(dir) || strays > 0 ? [`leftovers of an earlier lab (run down): ${(await leftovers(dir)).join('; ')}`] : [];
    return { up: false, healthy: false, dir, phase: null, controller: null, segments: [], router: null, hosts: [], problems };
  }
  const controllerRunning = state.controller?.pid != null && isAlive(state.controller.pid);
  const subnets = state.controller && controllerRunning ? await subnetsFromController(state.controller) : null;
  const hosts = await Promise.all(state.hosts.map((host) => hostStatus(state, host, subnets)));
  const problems: string[] = [];
  if (state.phase !== 'ready') problems.push(`the lab was not finished (phase ${state.phase}); run up again`);
  for (const host of hosts) {
    if (!host.dockerd.running) problems.push(`${host.name}: dockerd is not running`);
    else if (!host.dockerd.version) problems.push(`${host.name}: dockerd does not answer on ${host.dockerHost}`);
    const expected = host.forwarding === 'ubuntu' ? 'DROP' : 'ACCEPT';
    if (host.forwardPolicy !== expected) problems.push(`${host.name}: FORWARD policy is ${host.forwardPolicy}, expected ${expected} (${host.forwarding} case)`);
    if (host.executor && !host.executor.running) problems.push(`${host.name}: executor (pid ${host.executor.pid}) is not running`);
  }
  if (state.controller && !controllerRunning) problems.push(`the controller (pid ${state.controller.pid}) is not running`);
  const segments = state.segments ?? [];
  for (const segment of segments)
    if (!existsSync(`/run/netns/${segment.netns}`)) problems.push(`segment ${segment.index}: namespace ${segment.netns} is missing`);
  let router: LabStatus['router'] = null;
  if (state.router) {
    const present = existsSync(`/run/netns/${state.router.netns}`);
    router = { netns: state.router.netns, forwarding: present ? await ipForwardOf(state.router.netns) : null };
    if (!present) problems.push(`the router's namespace ${state.router.netns} is missing`);
    else if (router.forwarding !== 1) problems.push(`the router ${state.router.netns} does not forward (ip_forward ${router.forwarding})`);
  }
  return {
    up: true,
    healthy: problems.length === 0,
    dir,
    phase: state.phase,
    controller: state.controller && {
      url: state.controller.url,
      adminToken: state.controller.adminToken,
      pid: state.controller.pid,
      running: controllerRunning,
    },
    segments,
    router,
    hosts,
    problems,
  };
}

// ---------------------------------------------------------------------------------------------
// helpers for end-to-end tests

/** A host by name ('h1', resolved in the default lab directory) or any object with its name, netns and dockerHost. */
export type HostRef = string | Pick<LabHost, 'name' | 'netns' | 'dockerHost'>;

function resolveHost(host: HostRef): Pick<LabHost, 'name' | 'netns' | 'dockerHost'> {
  if (typeof host !== 'string') return host;
  return { name: host, netns: netnsOf(host), dockerHost: hostPaths(resolveLabDir(), host).dockerHost };
}

/** The docker CLI against a host's engine (`docker -H unix://<lab>/<host>/docker.sock ...`). */
export function dockerIn(host: HostRef, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return docker(resolveHost(host).dockerHost, args, options);
}

/** argv inside a host's network namespace (ip, iptables-save, ping from the host itself). */
export function hostExec(host: HostRef, argv: string[], options: RunOptions = {}): Promise<RunResult> {
  return nsExec(resolveHost(host).netns, argv, options);
}

export interface ContainerSpec {
  name: string;
  /** A Docker network on that host (crossdock's is named after the subnet's `network`); default: the engine's default bridge. */
  network?: string;
  ip?: string;
  /** Default: sleep for a day. busybox-static's wget and httpd crash on user-defined networks; use ping and nc. */
  cmd?: string[];
  image?: string;
  labels?: Record<string, string>;
  /** Default 1. */
  stopTimeoutSeconds?: number;
}

/** `docker run -d`; returns the container id. */
export async function runContainer(host: HostRef, spec: ContainerSpec): Promise<string> {
  const args = ['run', '-d', '--name', spec.name];
  if (spec.network) args.push('--network', spec.network);
  if (spec.ip) args.push('--ip', spec.ip);
  for (const [key, value] of Object.entries(spec.labels ?? {})) args.push('--label', `${key}=${value}`);
  // busybox `sleep` as PID 1 ignores SIGTERM: without this every stop (and engine restart) waits 10 s
  args.push('--stop-timeout', String(spec.stopTimeoutSeconds ?? 1));
  args.push(spec.image ?? IMAGE, ...(spec.cmd ?? ['sleep', '86400']));
  return (await dockerIn(host, args)).stdout.trim();
}

/** `docker exec`; check defaults to false here, since tests usually look at the exit code (ping). */
export function execInContainer(host: HostRef, container: string, argv: string[], options: RunOptions = {}): Promise<RunResult> {
  return dockerIn(host, ['exec', container, ...argv], { check: false, ...options });
}

export async function removeContainer(host: HostRef, container: string): Promise<void> {
  await dockerIn(host, ['rm', '-f', '-v', container], { check: false });
}

/** A container's address on a network (its only one when network is omitted). */
export async function containerAddress(host: HostRef, container: string, network?: string): Promise<string> {
  const inspected = await dockerIn(host, ['inspect', '--format', '{{json .NetworkSettings.Networks}}', container]);
  const networks = JSON.parse(inspected.stdout) as Record<string, { IPAddress: string }>;
  const entry = network ? networks[network] : Object.values(networks)[0];
  if (!entry?.IPAddress) throw new Error(`container ${container} has no address${network ? ` on ${network}` : ''}`);
  return entry.IPAddress;
}

export interface LanMachine {
  name: string;
  netns: string;
  address: string;
}

/**
 * Adds a machine to the running lab's LAN that is not a registered host (an outside machine:
 * a load balancer, a bastion), with only the LAN's /24: give it routes with lanMachineExec.
 * An earlier one of the same name is replaced; down removes it.
 */
export async function addLanMachine(name: string, address: string): Promise<LanMachine> {
  // its LAN port is named after it, as a host's is
  if (requireState().hosts.some((host) => host.name === name)) throw new Error(`${name} is a lab host; give the outside machine another name`);
  if (name === ROUTER_NAME || netnsOf(name).startsWith(LAN_NETNS))
    throw new Error(`${name} is the name of the lab's router or of a segment's LAN; give the outside machine another name`);
  const machine = { name, netns: netnsOf(name), address };
  await removeLanMachine(machine);
  await createLanMachine(name, machine.netns, address);
  return machine;
}

export async function removeLanMachine(machine: LanMachine): Promise<void> {
  if (existsSync(`/run/netns/${machine.netns}`)) await ipIn(null, ['netns', 'delete', machine.netns]);
}

/** argv inside an outside machine's namespace (ip route, busybox ping and nc). */
export function lanMachineExec(machine: LanMachine, argv: string[], options: RunOptions = {}): Promise<RunResult> {
  return nsExec(machine.netns, argv, options);
}

export function forwardPolicy(host: HostRef): Promise<string | null> {
  return forwardPolicyOf(resolveHost(host).netns);
}

export function ipForward(host: HostRef): Promise<number | null> {
  return ipForwardOf(resolveHost(host).netns);
}

/** The state of a running lab; throws when there is none. */
export function requireState(dir?: string): LabState {
  const state = readState(resolveLabDir(dir));
  if (!state) throw new Error(`no lab in ${resolveLabDir(dir)}; run \`npm run lab -- up\``);
  return state;
}

export function logOf(host: string, which: 'dockerd' | 'executor' = 'dockerd', dir?: string): string {
  const paths = hostPaths(resolveLabDir(dir), host);
  try {
    return readFileSync(which === 'dockerd' ? paths.dockerdLog : paths.executorLog, 'utf8');
  } catch {
    return '';
  }
}
