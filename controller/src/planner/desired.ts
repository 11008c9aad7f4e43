// What a host should have, from the cluster model: pure functions, no I/O (DESIGN.md,
// "What a host gets").
import {
  MANAGED_CHAINS,
  MANAGED_LABEL,
  VXLAN_CHAIN,
  VXLAN_DEFAULT_PORT,
  VXLAN_DEFAULT_VNI,
  VXLAN_DEVICE,
  VXLAN_DEVICE_ALIAS,
  VXLAN_OVERHEAD_BYTES,
  addHash,
  containsAddress,
  formatIPv4,
  inputDrops,
  parseCidr,
  parseIPv4,
  type Cidr,
  type FdbReplace,
  type NeighReplace,
  type VxlanDevice,
  containsCidr,
  coverAddresses,
  digestItem,
  formatCidr,
  formatDigest,
  forwardJumpSource,
  itemHash,
  mustParseCidr,
  renderRule,
  type DockerDaemonBip,
  type DockerNetworkCreate,
  type FirewallChain,
  type FirewallJump,
  type FirewallRule,
  type ObservedState,
  type RouteReplace,
  type SysctlSet,
} from '@crossdock/shared';

export const FORWARD_CHAIN = MANAGED_CHAINS.filter;
export const POSTROUTING_CHAIN = MANAGED_CHAINS.nat;
export const SUBNET_LABEL = 'io.crossdock.subnet';
/** Engines from 28 drop direct-routed traffic to unpublished ports unless told otherwise. */
export const GATEWAY_MODE_OPTION = 'com.docker.network.bridge.gateway_mode_ipv4';
const GATEWAY_MODE_MIN_ENGINE_MAJOR = 28;
const RULE_COMMENT = 'crossdock';
const HOST_RULE_COMMENT = 'crossdock host';
const ALLOW_FROM_RULE_COMMENT = 'crossdock allowFrom';
const VXLAN_RULE_COMMENT = 'crossdock vxlan';

export interface PlanSubnet {
  id: number;
  cidr: string;
  gateway: string;
  network: string;
  /** docker: a network Docker owns (--ipam-driver crossdock): routed and in the chains, never created or removed here */
  mode: 'network' | 'bip' | 'docker';
}

export interface PlanHost {
  id: number;
  name: string;
  address: string;
  interface: string;
  subnets: PlanSubnet[];
}

/** What the planner needs to know of a host beyond the database: from its last snapshot. */
export interface HostEnvironment {
  dockerAvailable: boolean;
  /** Docker's DOCKER-USER chain exists */
  dockerUser: boolean;
  engineMajor: number | null;
  /**
   * The host's interfaces with IPv4 addresses, as it reported them: what decides which peers are
   * on-link. Absent (not reported yet): every peer counts as on-link, as before VXLAN.
   */
  interfaces?: readonly EnvironmentInterface[];
  /** INPUT's policy: where it drops, crossdock opens the VXLAN port to the fleet's hosts */
  inputPolicy?: string | null;
}

export interface EnvironmentInterface {
  name: string;
  mtu: number;
  /** address/prefix, as reported */
  addresses: readonly string[];
  /** the networks of those addresses, parsed once */
  networks: readonly Cidr[];
}

export const UNKNOWN_ENVIRONMENT: HostEnvironment = { dockerAvailable: false, dockerUser: false, engineMajor: null };

export function environmentOf(state: ObservedState): HostEnvironment {
  const major = state.docker.version ? Number.parseInt(state.docker.version, 10) : NaN;
  const interfaces: EnvironmentInterface[] = [];
  for (const i of state.interfaces) {
    if (i.addresses.length === 0 || i.name === VXLAN_DEVICE) continue;
    const networks: Cidr[] = [];
    for (const a of i.addresses) {
      const [address = '', length = ''] = a.split('/');
      const parsed = parseCidr(`${address}/${length}`);
      const value = parseIPv4(address);
      // a host address: its network is the address with the host bits cleared
      if (!parsed.ok && parsed.reason !== 'host-bits') continue;
      if (value === null) continue;
      const prefixLength = Number(length);
      networks.push({ network: prefixLength === 0 ? 0 : (value & (0xffffffff << (32 - prefixLength))) >>> 0, prefixLength });
    }
    interfaces.push({ name: i.name, mtu: i.mtu, addresses: i.addresses, networks });
  }
  return {
    dockerAvailable: state.docker.available,
    dockerUser: forwardJumpSource(state.firewall.builtinChains) === 'DOCKER-USER',
    engineMajor: Number.isFinite(major) ? major : null,
    // left out when not reported, so an environment says only what the host said
    ...(interfaces.length > 0 ? { interfaces } : {}),
    ...(state.firewall.inputPolicy ? { inputPolicy: state.firewall.inputPolicy } : {}),
  };
}

// ---- how a host reaches a peer: directly or through VXLAN ----

export const ENCAPSULATIONS = ['never', 'crossSubnet', 'always'] as const;
export type Encapsulation = (typeof ENCAPSULATIONS)[number];
export const DEFAULT_ENCAPSULATION: Encapsulation = 'crossSubnet';
/** The Docker network option that sets its containers' MTU. */
export const MTU_OPTION = 'com.docker.network.driver.mtu';
/** What an interface of unknown MTU is taken to have. */
const ETHERNET_MTU = 1500;
/**
 * VTEP addresses are link-local (never routed off a host): host id n gets range + n. This /18
 * avoids 169.254.0.0/24 and 169.254.255.0/24 (reserved), 169.254.1.1 (Calico's gateway) and
 * 169.254.169.254 (cloud metadata).
 */
export const DEFAULT_VTEP_RANGE = '169.254.64.0/18';

export interface VxlanSettings {
  vni: number;
  port: number;
  /** where VTEP addresses come from: host id n gets the range's address n */
  vtepRange: Cidr;
}

export const DEFAULT_VXLAN: VxlanSettings = {
  vni: VXLAN_DEFAULT_VNI,
  port: VXLAN_DEFAULT_PORT,
  vtepRange: { network: 0xa9fe4000, prefixLength: 18 },
};

/** The fleet-wide facts that decide how hosts reach each other, besides the hosts themselves. */
export interface ReachPolicy {
  vxlan: VxlanSettings;
  /** the encapsulation of the pool a subnet came from */
  encapsulationOf(subnet: PlanSubnet): Encapsulation;
  /** the explicit MTU of the pool a subnet came from, or null */
  mtuOf(subnet: PlanSubnet): number | null;
  /** some pool allows encapsulation: every host keeps its VXLAN device, ready to receive */
  possible: boolean;
}

/** No pool encapsulates: plain routes only (what the pure planner assumes unless told). */
export const NO_ENCAPSULATION: ReachPolicy = { vxlan: DEFAULT_VXLAN, encapsulationOf: () => 'never', mtuOf: () => null, possible: false };

/** A host's VTEP address (range + host id), or null when the id does not fit the range. */
export function vtepAddress(hostId: number, settings: VxlanSettings): string | null {
  const size = 2 ** (32 - settings.vtepRange.prefixLength);
  // the range's network and broadcast addresses are nobody's
  if (hostId < 1 || hostId >= size - 1) return null;
  return formatIPv4(settings.vtepRange.network + hostId);
}

/** A host's VTEP MAC: locally administered, unicast, the host id in its last four bytes. */
export function vtepMac(hostId: number): string {
  const bytes = [0x02, 0xcd, (hostId >>> 24) & 255, (hostId >>> 16) & 255, (hostId >>> 8) & 255, hostId & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The host's underlay interface as it reported it, if it did. */
export function underlayOf(host: Pick<PlanHost, 'interface'>, env: HostEnvironment): EnvironmentInterface | undefined {
  return env.interfaces?.find((i) => i.name === host.interface);
}

/**
 * Whether the peer's address lies in a subnet of the host's interface, as the host reported it:
 * null while the host has not reported its interface (or it has no IPv4 address).
 */
export function onLink(host: Pick<PlanHost, 'interface'>, env: HostEnvironment, peer: Pick<PlanHost, 'address'>): boolean | null {
  const underlay = underlayOf(host, env);
  if (!underlay || underlay.networks.length === 0) return null;
  const address = parseIPv4(peer.address);
  return address !== null && underlay.networks.some((n) => containsAddress(n, address));
}

export type Reach = 'direct' | 'vxlan' | 'unreachable';

/** How one subnet of a peer is reached under its pool's encapsulation, and why when it is not. */
export function subnetReach(link: boolean | null, encapsulation: Encapsulation): Reach {
  if (encapsulation === 'always') return 'vxlan';
  if (link === false) return encapsulation === 'never' ? 'unreachable' : 'vxlan';
  return 'direct';
}

/** What a host holds for one peer: a route per subnet, and the VXLAN entries when one goes through the device. */
export interface PeerEntries {
  routes: RouteReplace[];
  neigh: NeighReplace | null;
  fdb: FdbReplace | null;
  /** subnets with no route, and why */
  unreachable: Array<{ subnet: PlanSubnet; reason: string }>;
  /** how each subnet is reached, in the peer's subnet order */
  reaches: Reach[];
  onLink: boolean | null;
}

export function peerEntries(host: PlanHost, env: HostEnvironment, peer: PlanHost, subnets: readonly PlanSubnet[], reach: ReachPolicy): PeerEntries {
  const link = onLink(host, env, peer);
  const entries: PeerEntries = { routes: [], neigh: null, fdb: null, unreachable: [], reaches: [], onLink: link };
  if (subnets.length === 0) return entries;
  const vtep = vtepAddress(peer.id, reach.vxlan);
  for (const subnet of subnets) {
    let how = subnetReach(link, reach.encapsulationOf(subnet));
    if (how === 'vxlan' && (vtep === null || vtepAddress(host.id, reach.vxlan) === null)) {
      entries.unreachable.push({ subnet, reason: `host ids beyond the VTEP range ${formatCidr(reach.vxlan.vtepRange)}; widen CROSSDOCK_VXLAN_VTEP_RANGE` });
      how = 'unreachable';
    } else if (how === 'unreachable') {
      entries.unreachable.push({
        subnet,
        reason: `${peer.address} is not on-link for ${host.interface} of ${host.name}, and pool encapsulation "never" allows no VXLAN; set it to "crossSubnet"`,
      });
    }
    entries.reaches.push(how);
    if (how === 'direct') entries.routes.push(peerRoute(host, peer, subnet));
    else if (how === 'vxlan') entries.routes.push({ kind: 'route.replace', dst: subnet.cidr, via: vtep!, dev: VXLAN_DEVICE });
  }
  if (vtep !== null && entries.reaches.includes('vxlan')) {
    const mac = vtepMac(peer.id);
    entries.neigh = { kind: 'neigh.replace', dev: VXLAN_DEVICE, address: vtep, mac };
    entries.fdb = { kind: 'fdb.replace', dev: VXLAN_DEVICE, mac, dst: peer.address };
  }
  return entries;
}

/** The digest items of a host's entries for one peer: what the running peer sum adds up. */
export function peerEntryItems(entries: Pick<PeerEntries, 'routes' | 'neigh' | 'fdb'>): string[] {
  const items = entries.routes.map(routeItem);
  if (entries.neigh) items.push(digestItem.neigh(entries.neigh.address, entries.neigh.mac));
  if (entries.fdb) items.push(digestItem.fdb(entries.fdb.mac, entries.fdb.dst));
  return items;
}

/** The digest items of every peer entry of a desired state (what routeDigestSum adds up). */
export function desiredPeerItems(desired: Pick<DesiredState, 'routes' | 'neighbours' | 'fdb'>): string[] {
  return [
    ...desired.routes.map(routeItem),
    ...desired.neighbours.map((n) => digestItem.neigh(n.address, n.mac)),
    ...desired.fdb.map((f) => digestItem.fdb(f.mac, f.dst)),
  ];
}

/** The host's VXLAN device, where some pool allows encapsulation and its id fits the VTEP range. */
export function vxlanDevice(host: PlanHost, env: HostEnvironment, reach: ReachPolicy): VxlanDevice | null {
  if (!reach.possible) return null;
  const address = vtepAddress(host.id, reach.vxlan);
  if (address === null) return null;
  return {
    kind: 'vxlan.device',
    name: VXLAN_DEVICE,
    vni: reach.vxlan.vni,
    port: reach.vxlan.port,
    local: host.address,
    mac: vtepMac(host.id),
    address: `${address}/${reach.vxlan.vtepRange.prefixLength}`,
    mtu: (underlayOf(host, env)?.mtu ?? ETHERNET_MTU) - VXLAN_OVERHEAD_BYTES,
  };
}

/**
 * The MTU a subnet's Docker network is created with: its pool's explicit one, else, where its
 * traffic may be encapsulated, the underlay's less VXLAN's overhead; null: Docker's default.
 */
export function networkMtu(host: PlanHost, subnet: PlanSubnet, env: HostEnvironment, reach: ReachPolicy): number | null {
  const explicit = reach.mtuOf(subnet);
  if (explicit !== null) return explicit;
  if (!reach.possible || reach.encapsulationOf(subnet) === 'never') return null;
  return (underlayOf(host, env)?.mtu ?? ETHERNET_MTU) - VXLAN_OVERHEAD_BYTES;
}

/** Where INPUT drops, a chain accepting the VXLAN port from the fleet's hosts only (the policy's host blocks). */
export function vxlanChain(policy: FirewallPolicy, reach: ReachPolicy): FirewallChain {
  return {
    kind: 'firewall.chain',
    table: 'filter',
    chain: VXLAN_CHAIN,
    rules: policy.hostBlocks.map((source) => ({
      source,
      protocol: 'udp' as const,
      dport: reach.vxlan.port,
      target: 'ACCEPT' as const,
      comment: VXLAN_RULE_COMMENT,
    })),
  };
}

export const VXLAN_JUMP: FirewallJump = { kind: 'firewall.jump', table: 'filter', from: 'INPUT', to: VXLAN_CHAIN, position: 1 };

/** The VXLAN chain and its jump belong to a host with a device whose INPUT policy drops. */
export function wantsVxlanChain(device: VxlanDevice | null, env: HostEnvironment): boolean {
  return device !== null && inputDrops(env.inputPolicy);
}

export interface LocalState {
  sysctl: SysctlSet;
  chains: FirewallChain[];
  jumps: FirewallJump[];
  networks: DockerNetworkCreate[];
  bip: DockerDaemonBip | null;
  /** crossdock's VXLAN device, or null: none (one of crossdock's is removed) */
  device: VxlanDevice | null;
}

export interface DesiredState extends LocalState {
  routes: RouteReplace[];
  neighbours: NeighReplace[];
  fdb: FdbReplace[];
}

export function peerRoute(host: Pick<PlanHost, 'interface'>, peer: Pick<PlanHost, 'address'>, subnet: Pick<PlanSubnet, 'cidr'>): RouteReplace {
  return { kind: 'route.replace', dst: subnet.cidr, via: peer.address, dev: host.interface };
}

/** A pool as the firewall sees it. */
export interface PlanPool {
  cidr: string;
  /** networks outside the fleet whose traffic may reach the pool's subnets */
  allowFrom: readonly string[];
}

/**
 * What every host's chains hold besides the rules for its own subnets. It is the same on every
 * host, so the controller builds it once per change (the fleet model keeps it), not once per host.
 */
export interface FirewallPolicy {
  /** every pool's CIDR */
  pools: readonly string[];
  /** accept rules between the pools and the fleet's hosts and allowFrom networks */
  reach: readonly FirewallRule[];
  /** host rules left out because there were more than MAX_REACH_RULES (0 normally) */
  hostRulesLeftOut: number;
  /** the fleet's host addresses as the fewest blocks holding exactly them (the VXLAN chain's sources) */
  hostBlocks: readonly string[];
}

/**
 * Executors take at most 10,000 rules a chain (a longer chain is refused, and with it the whole
 * job, routes included); the rest is room for the rules of the host's own subnets.
 */
export const MAX_REACH_RULES = 8_000;

/**
 * Fleet hosts (their addresses, as parseIPv4 gives them) and each pool's allowFrom networks
 * reach the pool, whatever the receiving host's FORWARD policy, and the pool answers them (both
 * directions: a host whose FORWARD chain has no Docker rules would drop the replies). On every
 * host, also those without subnets of the pool, so that an outside machine may route a pool
 * through any host.
 *
 * Hosts are matched exactly, as the fewest CIDR blocks holding their addresses: matching the
 * hosts' whole underlay subnets would also let in every other machine on those subnets, which is
 * what allowFrom is for. An allowFrom network holding some hosts' blocks makes them redundant,
 * so they are left out.
 *
 * Measured at 1,000 hosts (npm run bench -- reach): numbered in one run, 26 rules; in 4 runs on 4
 * segments, 88; either applied in about 65 ms, mostly the processes' own start. Scattered among
 * other machines on their segments, about a rule per host (1,748; 2,000 when no two hosts are
 * adjacent), applied in 130 to 150 ms, and a packet matched last pays about 7 ns a rule; listing
 * those segments in allowFrom brings it back to 8 rules, opening them as a choice.
 */
export function firewallPolicy(pools: readonly PlanPool[], hostAddresses: Iterable<number>): FirewallPolicy {
  const blocks = coverAddresses(hostAddresses);
  const hostBlocks = pools.map((pool) => {
    const allowed = pool.allowFrom.map(mustParseCidr);
    return blocks.filter((block) => !allowed.some((network) => containsCidr(network, block))).map(formatCidr);
  });
  const hostRules = 2 * hostBlocks.reduce((n, b) => n + b.length, 0);
  const allowRules = 2 * pools.reduce((n, p) => n + p.allowFrom.length, 0);
  // Too many to hold: hosts reach containers as they did before (where FORWARD accepts), rather
  // than every job being refused or the blocks widened past the hosts. The reconciler says so.
  const withHosts = hostRules + allowRules <= MAX_REACH_RULES;
  const reach: FirewallRule[] = [];
  const both = (peer: string, pool: string, comment: string) => {
    reach.push({ source: peer, destination: pool, target: 'ACCEPT', comment });
    reach.push({ source: pool, destination: peer, target: 'ACCEPT', comment });
  };
  pools.forEach((pool, i) => {
    if (withHosts) for (const block of hostBlocks[i]!) both(block, pool.cidr, HOST_RULE_COMMENT);
    for (const network of pool.allowFrom) both(network, pool.cidr, ALLOW_FROM_RULE_COMMENT);
  });
  return { pools: pools.map((p) => p.cidr), reach, hostRulesLeftOut: withHosts ? 0 : hostRules, hostBlocks: blocks.map(formatCidr) };
}

/**
 * Accept forwarded traffic between this host's subnets and every pool (both directions), and
 * keep Docker from masquerading it; then the policy's reach rules. Traffic a fleet host or an
 * allowFrom network starts needs no nat rule: its replies follow the connection, which Docker's
 * MASQUERADE (matching only new connections from a local subnet) never touched.
 */
export function firewallChains(host: PlanHost, policy: FirewallPolicy): FirewallChain[] {
  const forward: FirewallRule[] = [];
  const postrouting: FirewallRule[] = [];
  for (const local of host.subnets) {
    for (const pool of policy.pools) {
      forward.push({ source: pool, destination: local.cidr, target: 'ACCEPT', comment: RULE_COMMENT });
      forward.push({ source: local.cidr, destination: pool, target: 'ACCEPT', comment: RULE_COMMENT });
      // ACCEPT, not RETURN: RETURN from this chain would resume POSTROUTING after the jump,
      // where Docker's MASQUERADE rule still matches. ACCEPT ends the nat chain traversal.
      postrouting.push({ source: local.cidr, destination: pool, target: 'ACCEPT', comment: RULE_COMMENT });
    }
  }
  forward.push(...policy.reach);
  return [
    { kind: 'firewall.chain', table: 'filter', chain: FORWARD_CHAIN, rules: forward },
    { kind: 'firewall.chain', table: 'nat', chain: POSTROUTING_CHAIN, rules: postrouting },
  ];
}

export function firewallJumps(env: HostEnvironment): FirewallJump[] {
  return [
    { kind: 'firewall.jump', table: 'filter', from: env.dockerUser ? 'DOCKER-USER' : 'FORWARD', to: FORWARD_CHAIN, position: 1 },
    { kind: 'firewall.jump', table: 'nat', from: 'POSTROUTING', to: POSTROUTING_CHAIN, position: 1 },
  ];
}

export function dockerNetwork(subnet: PlanSubnet, env: HostEnvironment, mtu: number | null = null): DockerNetworkCreate {
  const options: Record<string, string> =
    env.engineMajor !== null && env.engineMajor >= GATEWAY_MODE_MIN_ENGINE_MAJOR ? { [GATEWAY_MODE_OPTION]: 'nat-unprotected' } : {};
  if (mtu !== null) options[MTU_OPTION] = String(mtu);
  return {
    kind: 'docker.network.create',
    name: subnet.network,
    subnet: subnet.cidr,
    gateway: subnet.gateway,
    options,
    labels: { [MANAGED_LABEL]: 'true', [SUBNET_LABEL]: String(subnet.id) },
  };
}

export function bipOf(subnet: PlanSubnet): DockerDaemonBip {
  return { kind: 'docker.daemon.bip', bip: `${subnet.gateway}/${subnet.cidr.split('/')[1]}` };
}

export function localState(host: PlanHost, policy: FirewallPolicy, env: HostEnvironment, reach: ReachPolicy = NO_ENCAPSULATION): LocalState {
  const bipSubnet = host.subnets.find((s) => s.mode === 'bip');
  const device = vxlanDevice(host, env, reach);
  const vxlanFirewall = wantsVxlanChain(device, env);
  return {
    sysctl: { kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1' },
    chains: [...firewallChains(host, policy), ...(vxlanFirewall ? [vxlanChain(policy, reach)] : [])],
    jumps: [...firewallJumps(env), ...(vxlanFirewall ? [VXLAN_JUMP] : [])],
    networks: env.dockerAvailable ? host.subnets.filter((s) => s.mode === 'network').map((s) => dockerNetwork(s, env, networkMtu(host, s, env, reach))) : [],
    bip: env.dockerAvailable && bipSubnet ? bipOf(bipSubnet) : null,
    device,
  };
}

export function desiredState(
  host: PlanHost,
  hosts: Iterable<PlanHost>,
  policy: FirewallPolicy,
  env: HostEnvironment,
  reach: ReachPolicy = NO_ENCAPSULATION,
): DesiredState {
  const routes: RouteReplace[] = [];
  const neighbours: NeighReplace[] = [];
  const fdb: FdbReplace[] = [];
  for (const peer of hosts) {
    // A peer without subnets gives nothing to reach (and a fleet of 10,000 is mostly skipped).
    if (peer.id === host.id || peer.subnets.length === 0) continue;
    const entries = peerEntries(host, env, peer, peer.subnets, reach);
    routes.push(...entries.routes);
    if (entries.neigh) neighbours.push(entries.neigh);
    if (entries.fdb) fdb.push(entries.fdb);
  }
  return { ...localState(host, policy, env, reach), routes, neighbours, fdb };
}

/** Digest items of the local part (everything but routes): see shared/protocol/digest.ts. */
export function localItems(local: LocalState, env: HostEnvironment): string[] {
  const items = [digestItem.sysctl(local.sysctl.key, local.sysctl.value)];
  for (const c of local.chains)
    items.push(
      digestItem.chain(
        c.table,
        c.chain,
        c.rules.map((r) => renderRule(c.chain, r)),
      ),
    );
  for (const j of local.jumps) items.push(digestItem.jump(j.table, j.from, j.to, j.position));
  if (env.dockerAvailable) items.push(digestItem.dockerUp());
  for (const n of local.networks) items.push(digestItem.network(n.name, n.subnet, n.gateway));
  for (const i of env.interfaces ?? []) items.push(digestItem.iface(i.name, i.addresses));
  const d = local.device;
  if (d) {
    items.push(
      digestItem.vxlanDevice({
        name: d.name,
        alias: VXLAN_DEVICE_ALIAS,
        vni: d.vni,
        port: d.port,
        local: d.local,
        learning: false,
        mac: d.mac,
        mtu: d.mtu,
        up: true,
        addresses: [d.address],
      }),
    );
  }
  return items;
}

export function routeItem(route: RouteReplace): string {
  return digestItem.route(route.dst, route.via, route.dev);
}

/**
 * Sum of the digest items of a host's entries for its peers (routes, and the VXLAN neighbour and
 * fdb entries): the part a change updates incrementally.
 */
export function routeDigestSum(
  host: PlanHost,
  hosts: Iterable<PlanHost>,
  env: HostEnvironment = UNKNOWN_ENVIRONMENT,
  reach: ReachPolicy = NO_ENCAPSULATION,
): number {
  let sum = 0;
  for (const peer of hosts) {
    if (peer.id === host.id || peer.subnets.length === 0) continue;
    for (const item of peerEntryItems(peerEntries(host, env, peer, peer.subnets, reach))) sum = addHash(sum, itemHash(item));
  }
  return sum;
}

/**
 * The digest the host's executor reports once it has applied its desired state. `routeSum` is
 * routeDigestSum(host, hosts), which the reconciler keeps current change by change.
 */
export function desiredDigest(host: PlanHost, policy: FirewallPolicy, env: HostEnvironment, routeSum: number, reach: ReachPolicy = NO_ENCAPSULATION): string {
  let sum = routeSum;
  for (const item of localItems(localState(host, policy, env, reach), env)) sum = addHash(sum, itemHash(item));
  return formatDigest(sum);
}
