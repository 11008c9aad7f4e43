// The lab's wiring: a LAN namespace with a bridge, one namespace per host, one veth to the root
// namespace; with several segments, one more LAN namespace per segment and a router between them.
import { existsSync, writeFileSync } from 'node:fs';
import { findBusybox } from './image.ts';
import { ipIn, nsExec } from './run.ts';
import {
  CONTROLLER_ADDRESS,
  HOST_INTERFACE,
  LAN_BRIDGE,
  LAN_CONTROLLER_PORT,
  LAN_NETNS,
  LAN_PREFIX_LENGTH,
  ROOT_VETH,
  ROUTER_NAME,
  type ForwardingCase,
  type LabSegment,
} from './state.ts';

/**
 * Per-interface settings of the one link the lab adds to the root namespace. Whatever the root
 * namespace's global settings, nothing that arrives on it is forwarded, only replies to the
 * lab's own /24 pass the reverse-path check (so the root namespace never answers a lab source
 * through its uplink), ARP is answered only for the address on this link, and it has no IPv6.
 */
const ROOT_VETH_SYSCTLS: Array<[string, string]> = [
  [`/proc/sys/net/ipv6/conf/${ROOT_VETH}/disable_ipv6`, '1'],
  [`/proc/sys/net/ipv4/conf/${ROOT_VETH}/forwarding`, '0'],
  [`/proc/sys/net/ipv4/conf/${ROOT_VETH}/rp_filter`, '1'],
  [`/proc/sys/net/ipv4/conf/${ROOT_VETH}/arp_ignore`, '1'],
];

export async function createLan(): Promise<void> {
  await ipIn(null, ['netns', 'add', LAN_NETNS]);
  await ipIn(LAN_NETNS, ['link', 'set', 'lo', 'up']);
  // no STP: ports forward as soon as they are up
  await ipIn(LAN_NETNS, ['link', 'add', LAN_BRIDGE, 'type', 'bridge', 'stp_state', '0']);
  await ipIn(LAN_NETNS, ['link', 'set', LAN_BRIDGE, 'up']);

  await ipIn(null, ['link', 'add', ROOT_VETH, 'type', 'veth', 'peer', 'name', LAN_CONTROLLER_PORT, 'netns', LAN_NETNS]);
  // /proc/sys/net is the writer's namespace: this process runs in the root one (checked by up)
  for (const [file, value] of ROOT_VETH_SYSCTLS) writeFileSync(file, value);
  await ipIn(null, ['addr', 'add', `${CONTROLLER_ADDRESS}/${LAN_PREFIX_LENGTH}`, 'dev', ROOT_VETH]);
  await ipIn(null, ['link', 'set', ROOT_VETH, 'up']);
  await ipIn(LAN_NETNS, ['link', 'set', LAN_CONTROLLER_PORT, 'master', LAN_BRIDGE, 'up']);
}

/** The LAN of a segment past the first: a namespace with a bridge, like cdlab-lan without the controller's port. */
export async function createSegmentLan(segment: LabSegment): Promise<void> {
  await ipIn(null, ['netns', 'add', segment.netns]);
  await ipIn(segment.netns, ['link', 'set', 'lo', 'up']);
  await ipIn(segment.netns, ['link', 'add', segment.bridge, 'type', 'bridge', 'stp_state', '0']);
  await ipIn(segment.netns, ['link', 'set', segment.bridge, 'up']);
}

/** The router's port on segment K is `segK` in the router's namespace; its peer on the segment's bridge is `router`. */
export function routerPort(segment: LabSegment): string {
  return `seg${segment.index}`;
}

/**
 * The router between segments: a namespace with one leg on every segment's bridge, forwarding
 * between them without NAT. It has the segments' connected routes and nothing else: no default
 * route and no route to any container subnet, so a packet between containers in different
 * segments crosses it only inside a VXLAN packet between hosts. It sends no ICMP redirects.
 */
export async function createRouter(netns: string, segments: LabSegment[]): Promise<void> {
  await ipIn(null, ['netns', 'add', netns]);
  await ipIn(netns, ['link', 'set', 'lo', 'up']);
  for (const [key, value] of [
    ['net.ipv4.ip_forward', '1'],
    ['net.ipv4.conf.all.send_redirects', '0'],
    ['net.ipv4.conf.default.send_redirects', '0'],
    ['net.ipv6.conf.all.disable_ipv6', '1'],
    ['net.ipv6.conf.default.disable_ipv6', '1'],
  ])
    await nsExec(netns, [...sysctlCommand(), '-w', `${key}=${value}`]);
  for (const segment of segments) {
    const port = routerPort(segment);
    await ipIn(netns, ['link', 'add', port, 'type', 'veth', 'peer', 'name', ROUTER_NAME, 'netns', segment.netns]);
    await ipIn(netns, ['addr', 'add', `${segment.router}/${segment.prefixLength}`, 'dev', port]);
    await ipIn(netns, ['link', 'set', port, 'up']);
    await ipIn(segment.netns, ['link', 'set', ROUTER_NAME, 'master', segment.bridge, 'up']);
  }
}

/** Routes in the root namespace to the segments past the first, through the router's leg on the LAN: the controller reaches every host. */
export async function routeRootToSegments(segments: LabSegment[]): Promise<void> {
  const [lan, ...others] = segments;
  for (const segment of others) await ipIn(null, ['route', 'add', segment.cidr, 'via', lan!.router!, 'dev', ROOT_VETH]);
}

/**
 * A host namespace: lo, eth0 on its segment's LAN (its peer, named after the host, is a port of
 * that segment's br0), the connected route, a route to each other segment through the router,
 * and nothing else: no default route, so nothing leaves the lab.
 */
export async function createHost(
  name: string,
  netns: string,
  address: string,
  forwarding: ForwardingCase,
  segment: LabSegment,
  others: LabSegment[] = [],
): Promise<void> {
  await ipIn(null, ['netns', 'add', netns]);
  await ipIn(netns, ['link', 'set', 'lo', 'up']);
  await ipIn(netns, ['link', 'add', HOST_INTERFACE, 'type', 'veth', 'peer', 'name', name, 'netns', segment.netns]);
  await ipIn(netns, ['addr', 'add', `${address}/${segment.prefixLength}`, 'dev', HOST_INTERFACE]);
  await ipIn(netns, ['link', 'set', HOST_INTERFACE, 'up']);
  await ipIn(segment.netns, ['link', 'set', name, 'master', segment.bridge, 'up']);
  for (const other of others) {
    if (!segment.router) throw new Error(`segment ${segment.index} has no router to reach segment ${other.index} through`);
    await ipIn(netns, ['route', 'add', other.cidr, 'via', segment.router, 'dev', HOST_INTERFACE]);
  }
  // set before dockerd starts: at 0 dockerd enables forwarding itself and sets FORWARD to DROP
  await nsExec(netns, [...sysctlCommand(), '-w', `net.ipv4.ip_forward=${forwarding === 'ubuntu' ? 0 : 1}`]);
}

/**
 * A machine on the LAN that is not a crossdock host (a load balancer, a bastion): a namespace
 * like a host's, without dockerd and without forwarding. It ignores ICMP redirects, so that a
 * route through one host stays the path its packets take. Its name starts with the lab prefix
 * (netns is netnsOf(name)), so down removes it like everything else.
 */
export async function createLanMachine(name: string, netns: string, address: string): Promise<void> {
  await ipIn(null, ['netns', 'add', netns]);
  await ipIn(netns, ['link', 'set', 'lo', 'up']);
  await ipIn(netns, ['link', 'add', HOST_INTERFACE, 'type', 'veth', 'peer', 'name', name, 'netns', LAN_NETNS]);
  await ipIn(netns, ['addr', 'add', `${address}/${LAN_PREFIX_LENGTH}`, 'dev', HOST_INTERFACE]);
  for (const scope of ['all', HOST_INTERFACE]) await nsExec(netns, [...sysctlCommand(), '-w', `net.ipv4.conf.${scope}.accept_redirects=0`]);
  await ipIn(netns, ['link', 'set', HOST_INTERFACE, 'up']);
  await ipIn(LAN_NETNS, ['link', 'set', name, 'master', LAN_BRIDGE, 'up']);
}

/** procps sysctl where installed, else busybox's (a lab requirement anyway). */
function sysctlCommand(): string[] {
  const procps = ['/usr/sbin/sysctl', '/sbin/sysctl'].find((file) => existsSync(file));
  return procps ? [procps] : [findBusybox(), 'sysctl'];
}

export async function ipForwardOf(netns: string): Promise<number | null> {
  const result = await nsExec(netns, ['cat', '/proc/sys/net/ipv4/ip_forward'], { check: false });
  return result.code === 0 ? Number(result.stdout.trim()) : null;
}

/** The filter table's FORWARD policy inside a namespace; with no filter table at all the kernel accepts. */
export async function forwardPolicyOf(netns: string): Promise<string | null> {
  const result = await nsExec(netns, ['iptables-save', '-t', 'filter'], { check: false });
  if (result.code !== 0) return null;
  return /^:FORWARD (\S+)/m.exec(result.stdout)?.[1] ?? 'ACCEPT';
}
