// A digest of the part of a host's state that crossdock owns, computed the same way by the
// executor (from what it observes) and the controller (from what it wants). It is a sum of
// per-item hashes, so it does not depend on order and the controller can keep it up to date
// incrementally: one route added to a host adds one item's hash, with no pass over the rest.
import { MANAGED_LABEL, VXLAN_DEVICE } from '../commands/schema.ts';
import type { ObservedState } from './state.ts';

/**
 * The chains crossdock keeps on every host, by table. Only these count in the digest: a chain
 * of another name (left by an older version, say) is never planned for, so counting it would
 * make the digests differ forever.
 */
export const MANAGED_CHAINS = { filter: 'CROSSDOCK-FORWARD', nat: 'CROSSDOCK-POSTROUTING' } as const;
/** Accepts VXLAN from the fleet's hosts; kept only where INPUT's policy drops (inputDrops). */
export const VXLAN_CHAIN = 'CROSSDOCK-VXLAN';

const isManagedChain = (table: string, name: string) => MANAGED_CHAINS[table as keyof typeof MANAGED_CHAINS] === name;

/** A policy that drops what no rule accepts: then crossdock opens the VXLAN port itself. */
export const inputDrops = (inputPolicy: string | null | undefined) => inputPolicy === 'DROP';

/** Items are hashed to 48 bits and summed modulo 2^48: exact in a double. */
const MODULUS = 2 ** 48;

/**
 * A fast 48-bit string hash (cyrb53's mixing, cut to 48 bits). Not cryptographic: the digest
 * only detects drift; the snapshot it triggers is what the planner trusts.
 */
export function itemHash(item: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < item.length; i++) {
    const ch = item.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (0xffff & h2) + (h1 >>> 0);
}

export function addHash(sum: number, hash: number): number {
  return (sum + hash) % MODULUS;
}

export function subtractHash(sum: number, hash: number): number {
  return (sum - hash + MODULUS) % MODULUS;
}

export function formatDigest(sum: number): string {
  return sum.toString(16).padStart(12, '0');
}

export const digestItem = {
  route: (dst: string, via: string, dev: string) => `route ${dst} via ${via} dev ${dev}`,
  chain: (table: string, name: string, rules: readonly string[]) => `chain ${table} ${name}\n${rules.join('\n')}`,
  jump: (table: string, from: string, to: string, position: number) => `jump ${table} ${from} ${to} ${position}`,
  network: (name: string, subnet: string | null, gateway: string | null) => `network ${name} ${subnet ?? '-'} ${gateway ?? '-'}`,
  sysctl: (key: string, value: string) => `sysctl ${key}=${value}`,
  dockerUp: () => 'docker up',
  /** an interface with IPv4 addresses: what the planner's on-link decisions rest on */
  iface: (name: string, addresses: readonly string[]) => `iface ${name} ${[...addresses].sort().join(',')}`,
  vxlanDevice: (d: {
    name: string;
    alias: string | null;
    vni: number | null;
    port: number | null;
    local: string | null;
    learning: boolean;
    mac: string;
    mtu: number;
    up: boolean;
    addresses: readonly string[];
  }) =>
    `vxlan ${d.name} alias ${d.alias ?? '-'} id ${d.vni ?? '-'} port ${d.port ?? '-'} local ${d.local ?? '-'} ${d.learning ? 'learning' : 'nolearning'} mac ${d.mac} mtu ${d.mtu} ${d.up ? 'up' : 'down'} ${[...d.addresses].sort().join(',')}`,
  neigh: (address: string, mac: string) => `neigh ${address} lladdr ${mac}`,
  fdb: (mac: string, dst: string) => `fdb ${mac} dst ${dst}`,
};

/**
 * The chain crossdock's forward chain is jumped from: Docker's DOCKER-USER where it exists,
 * FORWARD otherwise. Jumps from anywhere else are not crossdock's concern (a stale FORWARD
 * jump from before Docker started is harmless and left alone).
 */
export function forwardJumpSource(builtinChains: readonly string[]): 'DOCKER-USER' | 'FORWARD' {
  return builtinChains.includes('filter/DOCKER-USER') ? 'DOCKER-USER' : 'FORWARD';
}

export function isManagedJump(j: { table: string; from: string }, filterFrom: string): boolean {
  return (j.table === 'filter' && j.from === filterFrom) || (j.table === 'nat' && j.from === 'POSTROUTING');
}

/** The items of an observed state that the digest covers. */
export function observedItems(state: ObservedState): string[] {
  const items: string[] = [];
  for (const r of state.routes) items.push(digestItem.route(r.dst, r.via, r.dev));
  for (const c of state.firewall.chains) {
    if (isManagedChain(c.table, c.name)) items.push(digestItem.chain(c.table, c.name, c.rules));
  }
  const filterFrom = forwardJumpSource(state.firewall.builtinChains);
  for (const j of state.firewall.jumps) {
    if (isManagedJump(j, filterFrom) && isManagedChain(j.table, j.to)) items.push(digestItem.jump(j.table, j.from, j.to, j.position));
  }
  if (state.docker.available) items.push(digestItem.dockerUp());
  // Only networks carrying crossdock's label, as the planner sees them.
  for (const n of state.docker.networks) {
    if (n.labels[MANAGED_LABEL] === 'true') items.push(digestItem.network(n.name, n.subnet, n.gateway));
  }
  const forward = state.sysctl['net.ipv4.ip_forward'];
  if (forward !== undefined) items.push(digestItem.sysctl('net.ipv4.ip_forward', forward));
  for (const i of state.interfaces) {
    if (i.addresses.length > 0 && i.name !== VXLAN_DEVICE) items.push(digestItem.iface(i.name, i.addresses));
  }
  if (inputDrops(state.firewall.inputPolicy)) {
    for (const c of state.firewall.chains) if (c.table === 'filter' && c.name === VXLAN_CHAIN) items.push(digestItem.chain(c.table, c.name, c.rules));
    for (const j of state.firewall.jumps)
      if (j.table === 'filter' && j.from === 'INPUT' && j.to === VXLAN_CHAIN) items.push(digestItem.jump(j.table, j.from, j.to, j.position));
  }
  const vxlan = state.vxlan;
  if (vxlan?.device) items.push(digestItem.vxlanDevice(vxlan.device));
  for (const n of vxlan?.neighbours ?? []) items.push(digestItem.neigh(n.address, n.mac));
  for (const f of vxlan?.fdb ?? []) items.push(digestItem.fdb(f.mac, f.dst));
  return items;
}

export function digestOf(items: Iterable<string>): string {
  let sum = 0;
  for (const item of items) sum = addHash(sum, itemHash(item));
  return formatDigest(sum);
}

export function observedDigest(state: ObservedState): string {
  return digestOf(observedItems(state));
}
