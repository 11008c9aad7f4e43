// What one committed change means for each host: the few commands that take the host from its
// old desired state to its new one, and how its set of peer routes moved (the controller keeps
// each host's route digest as a running sum, so a change costs the routes it touched, never a
// pass over a host's whole table). Pure: the reconciler decides who is reachable and sends.
//
// The invariant (change.test.ts checks it on random fleets and changes): for every host that
// had applied its old desired state, applying the delta's commands gives exactly the new
// desired state, and old route sum + added - removed is the new route sum.
import { VXLAN_DEVICE, type Command } from '@crossdock/shared';
import {
  bipOf,
  dockerNetwork,
  firewallChains,
  localState,
  networkMtu,
  peerEntries,
  peerEntryItems,
  vxlanChain,
  vxlanDevice,
  wantsVxlanChain,
  type FirewallPolicy,
  type HostEnvironment,
  type PeerEntries,
  type PlanHost,
  type PlanSubnet,
  type ReachPolicy,
} from './desired.ts';

/** A committed change, with the hosts as they were before it and are after it. */
export type FleetChange =
  | { type: 'host.added'; host: PlanHost }
  | { type: 'host.removed'; host: PlanHost }
  | { type: 'subnet.added'; after: PlanHost; subnet: PlanSubnet }
  | { type: 'subnet.removed'; before: PlanHost; after: PlanHost; subnet: PlanSubnet }
  | { type: 'host.moved'; before: PlanHost; after: PlanHost }
  /** reach: a pool's encapsulation or MTU changed (or a pool that may encapsulate came or went) */
  | { type: 'pools.changed'; reach?: boolean };

/** The fleet after the change, as the per-change planner reads it. */
export interface FleetAfter {
  hosts: ReadonlyMap<number, PlanHost>;
  policy: FirewallPolicy;
  /** what the policy was before the change (the same object when the change left it alone) */
  policyBefore: FirewallPolicy;
  reach: ReachPolicy;
  envOf(hostId: number): HostEnvironment;
  /**
   * Whether the host's commands will be sent (an executor is attached). The others only move
   * their generation and are planned in full when they report: building their commands would
   * cost a pass over their subnets on every change (59,000 of them in the allocation benchmark).
   */
  sendsTo(hostId: number): boolean;
}

/** One host's part of a change. */
export interface HostDelta {
  hostId: number;
  /** what to run on the host, if it has applied its previous desired state */
  commands: Command[];
  /** digest items of peer entries (routes, VXLAN neighbour and fdb entries) that entered and left the host's desired state */
  addedItems: string[];
  removedItems: string[];
  /** its state changed in a way best replanned in full from a fresh snapshot */
  replan: boolean;
}

export function planChange(change: FleetChange, fleet: FleetAfter): HostDelta[] {
  const deltas = new Map<number, HostDelta>();
  const delta = (hostId: number): HostDelta => {
    let d = deltas.get(hostId);
    if (!d) {
      d = { hostId, commands: [], addedItems: [], removedItems: [], replan: false };
      deltas.set(hostId, d);
    }
    return d;
  };
  /**
   * Every other host's entries for `owner` (its routes to the owner's subnets, and the VXLAN
   * neighbour and fdb entries when one goes through the device): `before` leaves, `after`
   * enters. Whole owners, not the changed subnet alone: a peer's VXLAN entries stand for all of
   * its subnets, so a second subnet adds a route and no second neighbour.
   */
  const peerRoutes = (ownerId: number, before: PlanHost | null, after: PlanHost | null) => {
    for (const peer of fleet.hosts.values()) {
      if (peer.id === ownerId) continue;
      const env = fleet.envOf(peer.id);
      const leaving = before ? peerEntries(peer, env, before, before.subnets, fleet.reach) : null;
      const entering = after ? peerEntries(peer, env, after, after.subnets, fleet.reach) : null;
      entriesDiff(delta(peer.id), leaving, entering);
    }
  };

  switch (change.type) {
    case 'host.added':
      peerRoutes(change.host.id, null, change.host);
      break;
    case 'host.removed':
      peerRoutes(change.host.id, change.host, null);
      break;
    case 'subnet.added': {
      const { after, subnet } = change;
      const own = delta(after.id);
      if (fleet.sendsTo(after.id)) {
        const env = fleet.envOf(after.id);
        const local = localState(after, fleet.policy, env, fleet.reach);
        // A Docker-owned network (mode docker) already exists: Docker created it and asked for the subnet.
        if (env.dockerAvailable && subnet.mode !== 'docker')
          own.commands.push(subnet.mode === 'bip' ? bipOf(subnet) : dockerNetwork(subnet, env, networkMtu(after, subnet, env, fleet.reach)));
        own.commands.push(...local.chains, ...local.jumps);
      }
      peerRoutes(after.id, { ...after, subnets: after.subnets.filter((s) => s.id !== subnet.id) }, after);
      break;
    }
    case 'subnet.removed': {
      const { after, subnet } = change;
      const own = delta(after.id);
      if (fleet.sendsTo(after.id)) {
        const env = fleet.envOf(after.id);
        if (subnet.mode === 'network' && env.dockerAvailable) own.commands.push({ kind: 'docker.network.remove', name: subnet.network });
        own.commands.push(...localState(after, fleet.policy, env, fleet.reach).chains);
      }
      peerRoutes(after.id, change.before, after);
      break;
    }
    case 'host.moved': {
      const { before, after } = change;
      if (before.address !== after.address) peerRoutes(after.id, before, after);
      // Every route of this host changes device, or its own VXLAN device its local address (and
      // its peers on-link may differ now): replanned in full from a fresh snapshot.
      if (before.interface !== after.interface || (before.address !== after.address && fleet.reach.possible)) delta(after.id).replan = true;
      break;
    }
    case 'pools.changed':
      // Encapsulation decides every host's entries for every peer: each host is replanned in full.
      if (change.reach) for (const host of fleet.hosts.values()) delta(host.id).replan = true;
      break;
  }

  // A change of the firewall policy (hosts joining, leaving or moving; pools) rewrites every
  // host's chains; the nat chain depends on the pools alone.
  const { policy, policyBefore } = fleet;
  if (policy !== policyBefore) {
    const poolsChanged = policy.pools.length !== policyBefore.pools.length || policy.pools.some((p, i) => p !== policyBefore.pools[i]);
    for (const host of fleet.hosts.values()) {
      const d = delta(host.id);
      // A host's own subnet change already carries both of its chains.
      if (!fleet.sendsTo(host.id) || d.commands.some((c) => c.kind === 'firewall.chain')) continue;
      d.commands.push(...firewallChains(host, policy).filter((c) => poolsChanged || c.table === 'filter'));
      // The VXLAN chain's sources are the fleet's hosts.
      const env = fleet.envOf(host.id);
      if (wantsVxlanChain(vxlanDevice(host, env, fleet.reach), env)) d.commands.push(vxlanChain(policy, fleet.reach));
    }
  }
  return [...deltas.values()];
}

/** Commands and digest items that take a host's entries for one peer from `leaving` to `entering`. */
function entriesDiff(d: HostDelta, leaving: PeerEntries | null, entering: PeerEntries | null): void {
  const before = new Set(leaving ? peerEntryItems(leaving) : []);
  const after = new Set(entering ? peerEntryItems(entering) : []);
  for (const item of after) if (!before.has(item)) d.addedItems.push(item);
  for (const item of before) if (!after.has(item)) d.removedItems.push(item);
  const enteringRoutes = new Map((entering?.routes ?? []).map((r) => [r.dst, r]));
  const leavingRoutes = new Map((leaving?.routes ?? []).map((r) => [r.dst, r]));
  // The device's entries before the routes through them (the executor orders them too).
  if (entering?.neigh && (leaving?.neigh?.address !== entering.neigh.address || leaving.neigh.mac !== entering.neigh.mac)) d.commands.push(entering.neigh);
  if (entering?.fdb && (leaving?.fdb?.mac !== entering.fdb.mac || leaving.fdb.dst !== entering.fdb.dst)) d.commands.push(entering.fdb);
  for (const [dst, route] of enteringRoutes) {
    const was = leavingRoutes.get(dst);
    if (!was || was.via !== route.via || was.dev !== route.dev) d.commands.push(route);
  }
  for (const dst of leavingRoutes.keys()) if (!enteringRoutes.has(dst)) d.commands.push({ kind: 'route.delete', dst });
  if (leaving?.neigh && entering?.neigh?.address !== leaving.neigh.address)
    d.commands.push({ kind: 'neigh.delete', dev: VXLAN_DEVICE, address: leaving.neigh.address });
  if (leaving?.fdb && entering?.fdb?.mac !== leaving.fdb.mac) d.commands.push({ kind: 'fdb.delete', dev: VXLAN_DEVICE, mac: leaving.fdb.mac });
}
