// plan(desired, observed) -> Command[]: the commands that close the gap. Pure. Only what
// crossdock owns is ever changed or removed: routes of its protocol (the executor reports no
// others), its CROSSDOCK-* chains and jumps, networks carrying its label.
import {
  CROSSDOCK_ROUTE_PROTOCOL,
  MANAGED_LABEL,
  echo,
  forwardJumpSource,
  isManagedJump,
  renderRule,
  validateCommand,
  type Command,
  type ObservedState,
} from '@crossdock/shared';
import type { DesiredState } from './desired.ts';

/** Route identity: the kernel keys our routes by destination (one table, one protocol). */
export const routeKey = (route: { dst: string }) => route.dst;
const routeEqual = (a: { via: string; dev: string }, b: { via: string; dev: string }) => a.via === b.via && a.dev === b.dev;
const chainKey = (table: string, chain: string) => `${table}/${chain}`;

export interface PlanLimits {
  /**
   * Route deletions one plan carries. Stale routes beyond it are left for the next plan (the
   * host's next report), so one job stays the size of what the host should have, however many
   * routes of ours it reports.
   */
  maxRouteDeletes: number;
}

const NO_LIMITS: PlanLimits = { maxRouteDeletes: Number.POSITIVE_INFINITY };
/** Notes beyond this many are counted, not listed: a report may hold thousands of bad items. */
const SKIPPED_NOTES_MAX = 20;

/**
 * The commands that take a host from `observed` to `desired`. A command built from an observed
 * value (a stale network's name, a stale route's destination) must pass the executor's own
 * validator, or the executor would refuse the whole job: the thing is left alone, and a note
 * saying why is appended to `skipped`.
 */
export function plan(desired: DesiredState, observed: ObservedState, limits: PlanLimits = NO_LIMITS, skipped: string[] = []): Command[] {
  const commands: Command[] = [];
  let unlisted = 0;
  /** Adds the command if the executor would accept it; true if it did. */
  const fromObservation = (command: Command, what: string): boolean => {
    const checked = validateCommand(command);
    if (checked.ok) commands.push(command);
    else if (skipped.length < SKIPPED_NOTES_MAX) skipped.push(`left alone: ${what}: ${checked.error}; fix it by hand`);
    else unlisted++;
    return checked.ok;
  };

  if (observed.sysctl[desired.sysctl.key] !== desired.sysctl.value) commands.push(desired.sysctl);

  if (desired.bip && observed.docker.bip !== desired.bip.bip) commands.push(desired.bip);

  // Docker networks: replace ones whose subnet or gateway differ (remove first: same name).
  if (observed.docker.available) {
    const observedNetworks = new Map(observed.docker.networks.filter((n) => n.labels[MANAGED_LABEL] === 'true').map((n) => [n.name, n]));
    const wanted = new Set(desired.networks.map((n) => n.name));
    for (const n of desired.networks) {
      const have = observedNetworks.get(n.name);
      if (have && (have.subnet !== n.subnet || have.gateway !== n.gateway)) commands.push({ kind: 'docker.network.remove', name: n.name });
      if (!have || have.subnet !== n.subnet || have.gateway !== n.gateway) commands.push(n);
    }
    for (const name of observedNetworks.keys()) {
      if (!wanted.has(name)) fromObservation({ kind: 'docker.network.remove', name }, `Docker network ${echo(name)} (labelled ${MANAGED_LABEL}=true)`);
    }
  }

  const observedChains = new Map(observed.firewall.chains.map((c) => [chainKey(c.table, c.name), c.rules]));
  for (const chain of desired.chains) {
    const have = observedChains.get(chainKey(chain.table, chain.chain));
    const want = chain.rules.map((r) => renderRule(chain.chain, r));
    if (!have || have.length !== want.length || have.some((line, i) => line !== want[i])) commands.push(chain);
  }

  // A jump is right when exactly one exists, at its position; the executor makes it so.
  const filterFrom = forwardJumpSource(observed.firewall.builtinChains);
  const managedJumps = observed.firewall.jumps.filter((j) => isManagedJump(j, filterFrom));
  for (const jump of desired.jumps) {
    const found = managedJumps.filter((j) => j.table === jump.table && j.from === jump.from && j.to === jump.to);
    if (found.length !== 1 || found[0]!.position !== jump.position) commands.push(jump);
  }

  const observedRoutes = new Map(observed.routes.map((r) => [routeKey(r), r]));
  const wantedRoutes = new Set<string>();
  for (const route of desired.routes) {
    wantedRoutes.add(routeKey(route));
    const have = observedRoutes.get(routeKey(route));
    if (!have || !routeEqual(have, route)) commands.push(route);
  }
  let deletes = 0;
  for (const route of observed.routes) {
    if (deletes >= limits.maxRouteDeletes) break;
    if (wantedRoutes.has(routeKey(route))) continue;
    if (fromObservation({ kind: 'route.delete', dst: route.dst }, `route ${echo(route.dst)} (protocol ${CROSSDOCK_ROUTE_PROTOCOL})`)) deletes++;
  }
  if (unlisted > 0) skipped.push(`left alone: ${unlisted} more like these`);
  return commands;
}
