// What one committed change means for each host: the few commands that take the host from its
// old desired state to its new one, and how its set of peer routes moved (the controller keeps
// each host's route digest as a running sum, so a change costs the routes it touched, never a
// pass over a host's whole table). Pure: the reconciler decides who is reachable and sends.
//
// The invariant (change.test.ts checks it on random fleets and changes): for every host that
// had applied its old desired state, applying the delta's commands gives exactly the new
// desired state, and old route sum + added - removed is the new route sum.
import type { Command, RouteDelete, RouteReplace } from '@crossdock/shared';
import {
  bipOf,
  dockerNetwork,
  firewallChains,
  localState,
  peerRoute,
  type FirewallPolicy,
  type HostEnvironment,
  type PlanHost,
  type PlanSubnet,
} from './desired.ts';

/** A committed change, with the hosts as they were before it and are after it. */
export type FleetChange =
  | { type: 'host.added'; host: PlanHost }
  | { type: 'host.removed'; host: PlanHost }
  | { type: 'subnet.added'; after: PlanHost; subnet: PlanSubnet }
  | { type: 'subnet.removed'; before: PlanHost; after: PlanHost; subnet: PlanSubnet }
  | { type: 'host.moved'; before: PlanHost; after: PlanHost }
  | { type: 'pools.changed' };

/** The fleet after the change, as the per-change planner reads it. */
export interface FleetAfter {
  hosts: ReadonlyMap<number, PlanHost>;
  policy: FirewallPolicy;
  /** what the policy was before the change (the same object when the change left it alone) */
  policyBefore: FirewallPolicy;
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
  /** peer routes that entered and left the host's desired state */
  addedRoutes: RouteReplace[];
  removedRoutes: RouteReplace[];
  /** its state changed in a way best replanned in full from a fresh snapshot */
  replan: boolean;
}

export function planChange(change: FleetChange, fleet: FleetAfter): HostDelta[] {
  const deltas = new Map<number, HostDelta>();
  const delta = (hostId: number): HostDelta => {
    let d = deltas.get(hostId);
    if (!d) {
      d = { hostId, commands: [], addedRoutes: [], removedRoutes: [], replan: false };
      deltas.set(hostId, d);
    }
    return d;
  };
  /** Every other host's routes to `owner`'s subnets: `before` leaves, `after` enters. */
  const peerRoutes = (ownerId: number, before: { owner: PlanHost; subnets: PlanSubnet[] } | null, after: { owner: PlanHost; subnets: PlanSubnet[] } | null) => {
    for (const peer of fleet.hosts.values()) {
      if (peer.id === ownerId) continue;
      const d = delta(peer.id);
      const leaving = before ? before.subnets.map((s) => peerRoute(peer, before.owner, s)) : [];
      const entering = after ? after.subnets.map((s) => peerRoute(peer, after.owner, s)) : [];
      const entered = new Set(entering.map((r) => r.dst));
      d.removedRoutes.push(...leaving);
      d.addedRoutes.push(...entering);
      d.commands.push(...entering, ...leaving.filter((r) => !entered.has(r.dst)).map((r): RouteDelete => ({ kind: 'route.delete', dst: r.dst })));
    }
  };

  switch (change.type) {
    case 'host.added':
      peerRoutes(change.host.id, null, { owner: change.host, subnets: change.host.subnets });
      break;
    case 'host.removed':
      peerRoutes(change.host.id, { owner: change.host, subnets: change.host.subnets }, null);
      break;
    case 'subnet.added': {
      const { after, subnet } = change;
      const own = delta(after.id);
      if (fleet.sendsTo(after.id)) {
        const env = fleet.envOf(after.id);
        const local = localState(after, fleet.policy, env);
        // A Docker-owned network (mode docker) already exists: Docker created it and asked for the subnet.
        if (env.dockerAvailable && subnet.mode !== 'docker') own.commands.push(subnet.mode === 'bip' ? bipOf(subnet) : dockerNetwork(subnet, env));
        own.commands.push(...local.chains, ...local.jumps);
      }
      peerRoutes(after.id, null, { owner: after, subnets: [subnet] });
      break;
    }
    case 'subnet.removed': {
      const { after, subnet } = change;
      const own = delta(after.id);
      if (fleet.sendsTo(after.id)) {
        const env = fleet.envOf(after.id);
        if (subnet.mode === 'network' && env.dockerAvailable) own.commands.push({ kind: 'docker.network.remove', name: subnet.network });
        own.commands.push(...localState(after, fleet.policy, env).chains);
      }
      peerRoutes(after.id, { owner: change.before, subnets: [subnet] }, null);
      break;
    }
    case 'host.moved': {
      const { before, after } = change;
      if (before.address !== after.address) peerRoutes(after.id, { owner: before, subnets: before.subnets }, { owner: after, subnets: after.subnets });
      // Every route of this host changes device: replanned in full from a fresh snapshot.
      if (before.interface !== after.interface) delta(after.id).replan = true;
      break;
    }
    case 'pools.changed':
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
    }
  }
  return [...deltas.values()];
}
