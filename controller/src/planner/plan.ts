// plan(desired, observed) -> Command[]: the commands that close the gap. Pure. Only what
// crossdock owns is ever changed or removed: routes of its protocol (the executor reports no
// others), its CROSSDOCK-* chains and jumps, networks carrying its label.
import {
  CROSSDOCK_ROUTE_PROTOCOL,
  MANAGED_LABEL,
  VXLAN_DEVICE,
  VXLAN_DEVICE_ALIAS,
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

  // A jump is right when exactly one exists, at its position; the executor makes it so. Docker
  // inserts a network's MASQUERADE rule at the top of nat POSTROUTING when it sets the network up
  // (created, or the default bridge after an engine restart for bip): a job that does either
  // puts the nat jump back first itself (the executor runs jumps after Docker's commands and
  // leaves a jump already in place alone), or the job's own change would need a second job.
  const dockerRewritesNat = commands.some((c) => c.kind === 'docker.network.create' || c.kind === 'docker.daemon.bip');
  const filterFrom = forwardJumpSource(observed.firewall.builtinChains);
  const managedJumps = observed.firewall.jumps.filter((j) => isManagedJump(j, filterFrom));
  for (const jump of desired.jumps) {
    const found = managedJumps.filter((j) => j.table === jump.table && j.from === jump.from && j.to === jump.to);
    if (found.length !== 1 || found[0]!.position !== jump.position || (dockerRewritesNat && jump.table === 'nat')) commands.push(jump);
  }

  // The VXLAN device: made again when a parameter only creation sets differs, and with it its
  // entries and routes (they go with the old device).
  const device = observed.vxlan?.device ?? null;
  const ownDevice = device !== null && device.alias === VXLAN_DEVICE_ALIAS;
  const want = desired.device;
  const remade = want !== null && ownDevice && (device.vni !== want.vni || device.port !== want.port || device.local !== want.local || device.learning);
  if (want) {
    const same =
      device !== null &&
      !remade &&
      ownDevice &&
      device.mac === want.mac &&
      device.mtu === want.mtu &&
      device.up &&
      device.addresses.length === 1 &&
      device.addresses[0] === want.address;
    if (!same) commands.push(want);
  } else if (ownDevice) {
    commands.push({ kind: 'vxlan.device.delete', name: VXLAN_DEVICE });
  }
  const entriesKept = ownDevice && !remade && want !== null;
  const observedNeighbours = new Map(entriesKept ? (observed.vxlan?.neighbours ?? []).map((n) => [n.address, n.mac]) : []);
  const wantedNeighbours = new Set<string>();
  for (const n of desired.neighbours) {
    wantedNeighbours.add(n.address);
    if (observedNeighbours.get(n.address) !== n.mac) commands.push(n);
  }
  const observedFdb = new Map(entriesKept ? (observed.vxlan?.fdb ?? []).map((f) => [f.mac, f.dst]) : []);
  const wantedFdb = new Set<string>();
  for (const f of desired.fdb) {
    wantedFdb.add(f.mac);
    if (observedFdb.get(f.mac) !== f.dst) commands.push(f);
  }
  if (entriesKept) {
    for (const address of observedNeighbours.keys()) {
      if (!wantedNeighbours.has(address))
        fromObservation({ kind: 'neigh.delete', dev: VXLAN_DEVICE, address }, `neighbour ${echo(address)} of ${VXLAN_DEVICE}`);
    }
    for (const mac of observedFdb.keys()) {
      if (!wantedFdb.has(mac)) fromObservation({ kind: 'fdb.delete', dev: VXLAN_DEVICE, mac }, `fdb entry ${echo(mac)} of ${VXLAN_DEVICE}`);
    }
  }

  // Routes through a device made again (or removed) are gone with it.
  const routesGone = remade || (!want && ownDevice);
  const observedRoutes = new Map(observed.routes.filter((r) => !(routesGone && r.dev === VXLAN_DEVICE)).map((r) => [routeKey(r), r]));
  const wantedRoutes = new Set<string>();
  for (const route of desired.routes) {
    wantedRoutes.add(routeKey(route));
    const have = observedRoutes.get(routeKey(route));
    if (!have || !routeEqual(have, route)) commands.push(route);
  }
  let deletes = 0;
  for (const route of observedRoutes.values()) {
    if (deletes >= limits.maxRouteDeletes) break;
    if (wantedRoutes.has(routeKey(route))) continue;
    if (fromObservation({ kind: 'route.delete', dst: route.dst }, `route ${echo(route.dst)} (protocol ${CROSSDOCK_ROUTE_PROTOCOL})`)) deletes++;
  }
  if (unlisted > 0) skipped.push(`left alone: ${unlisted} more like these`);
  return commands;
}
