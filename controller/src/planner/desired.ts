// What a host should have, from the cluster model: pure functions, no I/O (DESIGN.md,
// "What a host gets").
import {
  MANAGED_CHAINS,
  MANAGED_LABEL,
  addHash,
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
}

export const UNKNOWN_ENVIRONMENT: HostEnvironment = { dockerAvailable: false, dockerUser: false, engineMajor: null };

export function environmentOf(state: ObservedState): HostEnvironment {
  const major = state.docker.version ? Number.parseInt(state.docker.version, 10) : NaN;
  return {
    dockerAvailable: state.docker.available,
    dockerUser: forwardJumpSource(state.firewall.builtinChains) === 'DOCKER-USER',
    engineMajor: Number.isFinite(major) ? major : null,
  };
}

export interface LocalState {
  sysctl: SysctlSet;
  chains: FirewallChain[];
  jumps: FirewallJump[];
  networks: DockerNetworkCreate[];
  bip: DockerDaemonBip | null;
}

export interface DesiredState extends LocalState {
  routes: RouteReplace[];
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
  return { pools: pools.map((p) => p.cidr), reach, hostRulesLeftOut: withHosts ? 0 : hostRules };
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

export function dockerNetwork(subnet: PlanSubnet, env: HostEnvironment): DockerNetworkCreate {
  const options: Record<string, string> =
    env.engineMajor !== null && env.engineMajor >= GATEWAY_MODE_MIN_ENGINE_MAJOR ? { [GATEWAY_MODE_OPTION]: 'nat-unprotected' } : {};
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

export function localState(host: PlanHost, policy: FirewallPolicy, env: HostEnvironment): LocalState {
  const bipSubnet = host.subnets.find((s) => s.mode === 'bip');
  return {
    sysctl: { kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1' },
    chains: firewallChains(host, policy),
    jumps: firewallJumps(env),
    networks: env.dockerAvailable ? host.subnets.filter((s) => s.mode === 'network').map((s) => dockerNetwork(s, env)) : [],
    bip: env.dockerAvailable && bipSubnet ? bipOf(bipSubnet) : null,
  };
}

export function desiredState(host: PlanHost, hosts: Iterable<PlanHost>, policy: FirewallPolicy, env: HostEnvironment): DesiredState {
  const routes: RouteReplace[] = [];
  for (const peer of hosts) {
    if (peer.id === host.id) continue;
    for (const subnet of peer.subnets) routes.push(peerRoute(host, peer, subnet));
  }
  return { ...localState(host, policy, env), routes };
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
  return items;
}

export function routeItem(route: RouteReplace): string {
  return digestItem.route(route.dst, route.via, route.dev);
}

/** Sum of the digest items of a host's routes to its peers: the part a change updates incrementally. */
export function routeDigestSum(host: PlanHost, hosts: Iterable<PlanHost>): number {
  let sum = 0;
  for (const peer of hosts) {
    if (peer.id === host.id) continue;
    for (const subnet of peer.subnets) sum = addHash(sum, itemHash(routeItem(peerRoute(host, peer, subnet))));
  }
  return sum;
}

/**
 * The digest the host's executor reports once it has applied its desired state. `routeSum` is
 * routeDigestSum(host, hosts), which the reconciler keeps current change by change.
 */
export function desiredDigest(host: PlanHost, policy: FirewallPolicy, env: HostEnvironment, routeSum: number): string {
  let sum = routeSum;
  for (const item of localItems(localState(host, policy, env), env)) sum = addHash(sum, itemHash(item));
  return formatDigest(sum);
}
