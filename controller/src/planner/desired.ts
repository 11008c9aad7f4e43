// What a host should have, from the cluster model: pure functions, no I/O (DESIGN.md,
// "What a host gets").
import {
  MANAGED_CHAINS,
  MANAGED_LABEL,
  addHash,
  digestItem,
  formatDigest,
  forwardJumpSource,
  itemHash,
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

export interface PlanSubnet {
  id: number;
  cidr: string;
  gateway: string;
  network: string;
  mode: 'network' | 'bip';
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

/**
 * Accept forwarded traffic between this host's subnets and every pool (both directions), and
 * keep Docker from masquerading it. Rules are per local subnet and pool, so a host's chains
 * do not change when peers come and go.
 */
export function firewallChains(host: PlanHost, pools: readonly string[]): FirewallChain[] {
  const forward: FirewallRule[] = [];
  const postrouting: FirewallRule[] = [];
  for (const local of host.subnets) {
    for (const pool of pools) {
      forward.push({ source: pool, destination: local.cidr, target: 'ACCEPT', comment: RULE_COMMENT });
      forward.push({ source: local.cidr, destination: pool, target: 'ACCEPT', comment: RULE_COMMENT });
      // ACCEPT, not RETURN: RETURN from this chain would resume POSTROUTING after the jump,
      // where Docker's MASQUERADE rule still matches. ACCEPT ends the nat chain traversal.
      postrouting.push({ source: local.cidr, destination: pool, target: 'ACCEPT', comment: RULE_COMMENT });
    }
  }
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

export function localState(host: PlanHost, pools: readonly string[], env: HostEnvironment): LocalState {
  const bipSubnet = host.subnets.find((s) => s.mode === 'bip');
  return {
    sysctl: { kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1' },
    chains: firewallChains(host, pools),
    jumps: firewallJumps(env),
    networks: env.dockerAvailable ? host.subnets.filter((s) => s.mode === 'network').map((s) => dockerNetwork(s, env)) : [],
    bip: env.dockerAvailable && bipSubnet ? bipOf(bipSubnet) : null,
  };
}

export function desiredState(host: PlanHost, hosts: Iterable<PlanHost>, pools: readonly string[], env: HostEnvironment): DesiredState {
  const routes: RouteReplace[] = [];
  for (const peer of hosts) {
    if (peer.id === host.id) continue;
    for (const subnet of peer.subnets) routes.push(peerRoute(host, peer, subnet));
  }
  return { ...localState(host, pools, env), routes };
}

/** Digest items of the local part (everything but routes): see shared/protocol/digest.ts. */
export function localItems(local: LocalState, env: HostEnvironment): string[] {
  const items = [digestItem.sysctl(local.sysctl.key, local.sysctl.value)];
  for (const c of local.chains) items.push(digestItem.chain(c.table, c.chain, c.rules.map((r) => renderRule(c.chain, r))));
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
export function desiredDigest(host: PlanHost, pools: readonly string[], env: HostEnvironment, routeSum: number): string {
  let sum = routeSum;
  for (const item of localItems(localState(host, pools, env), env)) sum = addHash(sum, itemHash(item));
  return formatDigest(sum);
}
