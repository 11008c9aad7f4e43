// The lab's fixed names and addresses, the paths of each host, and state.json.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const DEFAULT_LAB_DIR = '/run/crossdock-lab';
/** Every namespace, root-side link and cgroup the lab makes starts with this; cleanup sweeps it. */
export const LAB_PREFIX = 'cdlab-';
export const LAN_NETNS = 'cdlab-lan';
export const LAN_BRIDGE = 'br0';
export const LAN_CIDR = '198.51.100.0/24';
export const LAN_PREFIX_LENGTH = 24;
/** Root-namespace end of the veth to the LAN bridge: where hosts reach the controller. */
export const CONTROLLER_ADDRESS = '198.51.100.1';
export const CONTROLLER_PORT = 7800;
export const ROOT_VETH = 'cdlab-ctl';
/** The root veth's peer, a port of br0 inside the LAN namespace. */
export const LAN_CONTROLLER_PORT = 'ctl';
export const HOST_INTERFACE = 'eth0';
export const IMAGE = 'crossdock-lab/busybox:latest';
export const MAX_HOSTS = 50;
/** The router between segments (only when there are several): its namespace is netnsOf(ROUTER_NAME). */
export const ROUTER_NAME = 'router';
/** Segment 1's router address: the last one of the LAN, far from the hosts (.11 up) and the outside machines the tests add. */
export const LAN_ROUTER_ADDRESS = '198.51.100.254';
/**
 * Segments 2 and up: one /27 each of 203.0.113.0/24 (29 hosts and the router), from .64 up to .223.
 * The rest of that range is left to the namespace suites that put root-side veths on it
 * (.0/29, .16/29, .248/29), which may run beside the lab on a shared machine.
 */
const SEGMENT_BLOCKS = ['203.0.113.64', '203.0.113.96', '203.0.113.128', '203.0.113.160', '203.0.113.192'];
const SEGMENT_PREFIX_LENGTH = 27;
export const MAX_SEGMENTS = SEGMENT_BLOCKS.length + 1;
/** Hosts a segment past the first holds: its /27 less the network, broadcast and router addresses. */
export const MAX_HOSTS_PER_SEGMENT = 2 ** (32 - SEGMENT_PREFIX_LENGTH) - 3;
/** Set in the environment of every process the lab starts, so cleanup finds them without state.json. */
export const LAB_ENV_MARKER = 'CROSSDOCK_LAB';
/** unix socket paths are limited to 108 bytes; containerd's ttrpc socket is the longest the lab makes. */
const MAX_SOCKET_PATH_LENGTH = 100;

export function resolveLabDir(dir?: string): string {
  return path.resolve(dir ?? (process.env.CROSSDOCK_LAB_DIR || DEFAULT_LAB_DIR));
}

export function assertLabDirUsable(dir: string): void {
  if (dir === '/' || dir.split('/').filter(Boolean).length < 2) {
    throw new Error(`lab directory ${dir} is too close to /; use a dedicated directory such as ${DEFAULT_LAB_DIR}`);
  }
  const longest = `${hostPaths(dir, `h${MAX_HOSTS}`).containerdSocket}.ttrpc`;
  if (longest.length > MAX_SOCKET_PATH_LENGTH) {
    throw new Error(
      `lab directory ${dir} is too long for unix socket paths (${longest.length} > ${MAX_SOCKET_PATH_LENGTH} bytes); use a shorter one such as ${DEFAULT_LAB_DIR}`,
    );
  }
}

/** 'ubuntu': ip_forward is 0 when dockerd starts, so dockerd turns it on and sets FORWARD to DROP. 'centos': already 1, FORWARD stays ACCEPT. */
export type ForwardingCase = 'ubuntu' | 'centos';

export interface HostPaths {
  dir: string;
  dataRoot: string;
  execRoot: string;
  pidfile: string;
  socket: string;
  dockerHost: string;
  daemonJson: string;
  keyJson: string;
  dockerdLog: string;
  containerdConfig: string;
  containerdRoot: string;
  containerdState: string;
  containerdSocket: string;
  containerdOpt: string;
  containerdPidfile: string;
  containerdLog: string;
  executorLog: string;
  executorPidfile: string;
}

export function hostPaths(dir: string, name: string): HostPaths {
  const hostDir = path.join(dir, name);
  const socket = path.join(hostDir, 'docker.sock');
  return {
    dir: hostDir,
    dataRoot: path.join(hostDir, 'data'),
    execRoot: path.join(hostDir, 'exec'),
    pidfile: path.join(hostDir, 'dockerd.pid'),
    socket,
    dockerHost: `unix://${socket}`,
    daemonJson: path.join(hostDir, 'daemon.json'),
    keyJson: path.join(hostDir, 'key.json'),
    dockerdLog: path.join(hostDir, 'dockerd.log'),
    containerdConfig: path.join(hostDir, 'containerd.toml'),
    containerdRoot: path.join(hostDir, 'containerd', 'root'),
    containerdState: path.join(hostDir, 'containerd', 'state'),
    containerdSocket: path.join(hostDir, 'containerd', 'containerd.sock'),
    containerdOpt: path.join(hostDir, 'containerd', 'opt'),
    containerdPidfile: path.join(hostDir, 'containerd.pid'),
    containerdLog: path.join(hostDir, 'containerd.log'),
    executorLog: path.join(hostDir, 'executor.log'),
    executorPidfile: path.join(hostDir, 'executor.pid'),
  };
}

export function controllerPaths(dir: string) {
  const controllerDir = path.join(dir, 'controller');
  return {
    dir: controllerDir,
    db: `file:${path.join(controllerDir, 'crossdock.db')}`,
    log: path.join(controllerDir, 'controller.log'),
    pidfile: path.join(controllerDir, 'controller.pid'),
  };
}

export function hostName(index: number): string {
  return `h${index}`;
}

export function netnsOf(name: string): string {
  return `${LAB_PREFIX}${name}`;
}

export interface LabSegment {
  /** 1-based; segment 1 is the controller's LAN. */
  index: number;
  /** Namespace holding the segment's bridge: LAN_NETNS for segment 1, cdlab-lanK for segment K. */
  netns: string;
  bridge: string;
  cidr: string;
  prefixLength: number;
  /** The router's address on this segment; null in a one-segment lab, which has no router. */
  router: string | null;
}

/**
 * The segments of a lab of `count` segments: segment 1 is 198.51.100.0/24 (the controller's LAN),
 * segment K >= 2 is the (K-1)th /27 block of 203.0.113.0/24, its router on the block's last address.
 */
export function segmentLayout(count: number): LabSegment[] {
  return Array.from({ length: count }, (_, i): LabSegment => {
    if (i === 0)
      return { index: 1, netns: LAN_NETNS, bridge: LAN_BRIDGE, cidr: LAN_CIDR, prefixLength: LAN_PREFIX_LENGTH, router: count > 1 ? LAN_ROUTER_ADDRESS : null };
    const base = SEGMENT_BLOCKS[i - 1];
    if (!base) throw new Error(`the lab has room for ${MAX_SEGMENTS} segments, not ${count}`);
    return {
      index: i + 1,
      netns: `${LAN_NETNS}${i + 1}`,
      bridge: LAN_BRIDGE,
      cidr: `${base}/${SEGMENT_PREFIX_LENGTH}`,
      prefixLength: SEGMENT_PREFIX_LENGTH,
      router: offset(base, MAX_HOSTS_PER_SEGMENT + 1),
    };
  });
}

function offset(address: string, by: number): string {
  const parts = address.split('.').map(Number);
  parts[3] = (parts[3] ?? 0) + by;
  return parts.join('.');
}

/**
 * Which segment each host is in: hosts split in order, as evenly as possible, the first
 * segments taking one more where the count does not divide (5 hosts in 2 segments: 3 and 2).
 * Returns the 1-based segment of host 1..hosts.
 */
export function segmentsOfHosts(hosts: number, segments: number): number[] {
  const size = Math.floor(hosts / segments);
  const larger = hosts % segments;
  const result: number[] = [];
  for (let segment = 1; segment <= segments; segment++) {
    const count = size + (segment <= larger ? 1 : 0);
    for (let i = 0; i < count; i++) result.push(segment);
  }
  return result;
}

/**
 * A host's address: in segment 1, 198.51.100.(10 + host index) as in a one-segment lab; in a
 * later segment, its block's address numbered by the host's position in that segment (1 up).
 */
export function hostAddress(index: number, segment: LabSegment = segmentLayout(1)[0]!, position = index): string {
  return segment.index === 1 ? `198.51.100.${10 + index}` : offset(segment.cidr.split('/')[0]!, position);
}

/** Odd hosts are the Ubuntu case, even hosts the CentOS case: h1 DROP, h2 ACCEPT. */
export function forwardingCase(index: number): ForwardingCase {
  return index % 2 === 1 ? 'ubuntu' : 'centos';
}

export interface LabSubnet {
  id: string;
  cidr: string;
  gateway: string;
  network: string;
  mode: string;
}

export interface LabHost {
  name: string;
  netns: string;
  address: string;
  interface: string;
  dockerHost: string;
  forwarding: ForwardingCase;
  /** 1-based index into LabState.segments. */
  segment: number;
  dockerdPid: number | null;
  executorPid: number | null;
  token: string | null;
  subnets: LabSubnet[];
}

export interface LabController {
  /** https:// (the lab runs the controller with TLS, as a real install does) */
  url: string;
  address: string;
  port: number;
  adminToken: string;
  pid: number | null;
  /** the controller's CA (beside its database) and its fingerprint, which the executors pin */
  caFile: string;
  caFingerprint: string | null;
}

export interface LabState {
  version: 1;
  dir: string;
  /** 'building' until every host's engine answers; a crash leaves it there. */
  phase: 'building' | 'ready';
  createdAt: string;
  lan: { netns: string; bridge: string; cidr: string; rootVeth: string; controllerAddress: string };
  /** One per segment; a one-segment lab has just the LAN. */
  segments: LabSegment[];
  /** The router between segments; null in a one-segment lab. */
  router: { name: string; netns: string } | null;
  hosts: LabHost[];
  controller: LabController | null;
}

export function statePath(dir: string): string {
  return path.join(dir, 'state.json');
}

export function readState(dir: string = resolveLabDir()): LabState | null {
  const file = statePath(dir);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LabState;
  } catch {
    return null; // a run killed mid-write; cleanup works without it
  }
}

export async function writeState(state: LabState): Promise<void> {
  await mkdir(state.dir, { recursive: true });
  const file = statePath(state.dir);
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, file);
}
