// The digest contract across the two packages: an executor's digest of what it observes
// equals the controller's digest of what it wants (desiredDigest, the reconciler's own code)
// once the host is in sync, and differs on every drift the planner would repair.
import { describe, expect, it } from 'vitest';
import {
  addHash,
  formatDigest,
  itemHash,
  observedDigest,
  parseIPv4,
  parseObservedState,
  renderRule,
  subtractHash,
  type ObservedState,
} from '@crossdock/shared';
import {
  desiredDigest,
  desiredState,
  environmentOf,
  firewallPolicy,
  routeDigestSum,
  routeItem,
  type DesiredState,
  type PlanHost,
} from '../controller/src/planner/desired.ts';

const A: PlanHost = {
  id: 1,
  name: 'node-a',
  address: '198.51.100.11',
  interface: 'eth0',
  subnets: [{ id: 1, cidr: '10.100.1.0/24', gateway: '10.100.1.1', network: 'crossdock', mode: 'network' }],
};
const B: PlanHost = {
  id: 2,
  name: 'node-b',
  address: '198.51.100.12',
  interface: 'eth0',
  subnets: [
    { id: 2, cidr: '10.100.2.0/24', gateway: '10.100.2.1', network: 'crossdock', mode: 'network' },
    { id: 4, cidr: '10.100.4.0/24', gateway: '10.100.4.1', network: 'crossdock-2', mode: 'network' },
  ],
};
const C: PlanHost = {
  id: 3,
  name: 'node-c',
  address: '198.51.100.13',
  interface: 'eth0',
  subnets: [{ id: 3, cidr: '10.100.3.0/24', gateway: '10.100.3.1', network: 'crossdock', mode: 'bip' }],
};
const HOSTS = [A, B, C];
// the fleet's hosts and an allowFrom network: rule comments with spaces, quoted by iptables-save
const POLICY = firewallPolicy(
  [{ cidr: '10.100.0.0/16', allowFrom: ['192.0.2.0/24'] }],
  HOSTS.map((h) => parseIPv4(h.address)!),
);

interface Facts {
  dockerAvailable: boolean;
  dockerUser: boolean;
  version: string;
}
const DEFAULT_FACTS: Facts = { dockerAvailable: true, dockerUser: true, version: '28.0.4' };

/** A host's report before crossdock changed anything, with things the digest must ignore. */
function hostFacts({ dockerAvailable, dockerUser, version }: Facts = DEFAULT_FACTS): ObservedState {
  return {
    routes: [],
    firewall: {
      backend: 'nf_tables',
      chains: [],
      jumps: [],
      builtinChains: [...(dockerUser ? ['filter/DOCKER-USER'] : []), 'filter/FORWARD', 'nat/POSTROUTING'],
      forwardPolicy: 'DROP',
    },
    docker: dockerAvailable ? { available: true, version, networks: [], bip: '172.17.0.1/16' } : { available: false, version: null, networks: [], bip: null },
    interfaces: [
      { name: 'lo', mtu: 65536, addresses: ['127.0.0.1/8'] },
      { name: 'eth0', mtu: 1500, addresses: ['198.51.100.11/24'] },
    ],
    sysctl: { 'net.ipv4.ip_forward': '0' },
  };
}

/** The report an executor sends once it has applied `desired`. */
function applied(desired: DesiredState, facts: ObservedState): ObservedState {
  const state = structuredClone(facts);
  state.routes = desired.routes.map((r) => ({ dst: r.dst, via: r.via, dev: r.dev }));
  state.firewall.chains = desired.chains.map((c) => ({ table: c.table, name: c.chain, rules: c.rules.map((r) => renderRule(c.chain, r)) }));
  state.firewall.jumps = desired.jumps.map((j) => ({ table: j.table, from: j.from, to: j.to, position: 1 }));
  if (state.docker.available) {
    state.docker.networks = desired.networks.map((n, i) => ({
      id: `${i}`.padStart(64, '0'),
      name: n.name,
      subnet: n.subnet,
      gateway: n.gateway,
      labels: { ...n.labels },
      containers: i,
    }));
    if (desired.bip) state.docker.bip = desired.bip.bip;
  }
  state.sysctl = { 'net.ipv4.ip_forward': '1' };
  return state;
}

/** The digest the controller expects: the reconciler's expectedDigest from a full recompute. */
function controllerDigest(host: PlanHost, facts: ObservedState): string {
  return desiredDigest(host, POLICY, environmentOf(facts), routeDigestSum(host, HOSTS));
}

function inSync(host: PlanHost, facts: ObservedState): ObservedState {
  return applied(desiredState(host, HOSTS, POLICY, environmentOf(facts)), facts);
}

describe('digest parity: executor and controller agree on a host in sync', () => {
  it.each([
    ['a host with peers, engine 28, DOCKER-USER', A, DEFAULT_FACTS],
    ['a host with two subnets', B, DEFAULT_FACTS],
    ['a bip-mode host', C, DEFAULT_FACTS],
    ['engine 20', A, { ...DEFAULT_FACTS, version: '20.10.24' }],
    ['no DOCKER-USER: jump from FORWARD', A, { ...DEFAULT_FACTS, dockerUser: false }],
    ['docker unavailable', B, { dockerAvailable: false, dockerUser: false, version: '' }],
  ] as const)('%s', (_name, host, f) => {
    const facts = hostFacts(f);
    const observed = inSync(host, facts);
    // what goes over the wire is what the schema accepts
    expect(parseObservedState(observed)).toMatchObject({ ok: true });
    expect(observedDigest(observed)).toBe(controllerDigest(host, facts));
    // and a host that has nothing yet is not in sync
    expect(observedDigest(facts)).not.toBe(controllerDigest(host, facts));
  });

  it('ignores what the planner ignores: a FORWARD jump under DOCKER-USER, networks without our label', () => {
    const facts = hostFacts();
    const observed = inSync(A, facts);
    observed.firewall.jumps.push({ table: 'filter', from: 'FORWARD', to: 'CROSSDOCK-FORWARD', position: 3 });
    observed.docker.networks.push({ id: 'f'.repeat(64), name: 'theirs', subnet: '172.18.0.0/16', gateway: '172.18.0.1', labels: {}, containers: 2 });
    observed.docker.networks.push({
      id: 'e'.repeat(64),
      name: 'other',
      subnet: null,
      gateway: null,
      labels: { 'io.crossdock.managed': 'false' },
      containers: 0,
    });
    observed.interfaces.push({ name: 'eth9', mtu: 9000, addresses: [] });
    observed.firewall.forwardPolicy = 'ACCEPT';
    expect(observedDigest(observed)).toBe(controllerDigest(A, facts));
  });

  it('sees what the planner would fix: a duplicate or moved jump, a stale managed network, ip_forward 0, a chain rule, a route', () => {
    const facts = hostFacts();
    const expected = controllerDigest(A, facts);
    const drifts: Array<(o: ObservedState) => void> = [
      (o) => o.firewall.jumps.push({ table: 'filter', from: 'DOCKER-USER', to: 'CROSSDOCK-FORWARD', position: 2 }),
      (o) => (o.firewall.jumps.find((j) => j.table === 'nat')!.position = 2),
      (o) =>
        o.docker.networks.push({
          id: '9',
          name: 'old',
          subnet: '10.100.9.0/24',
          gateway: '10.100.9.1',
          labels: { 'io.crossdock.managed': 'true' },
          containers: 0,
        }),
      (o) => (o.sysctl['net.ipv4.ip_forward'] = '0'),
      (o) => o.firewall.chains[1]!.rules.pop(),
      (o) => o.routes.pop(),
    ];
    for (const drift of drifts) {
      const observed = inSync(A, facts);
      drift(observed);
      expect(observedDigest(observed), drift.toString()).not.toBe(expected);
    }
  });

  it("follows an incremental change: the controller's updated sum equals the digest after the job", () => {
    const facts = hostFacts();
    const before = controllerDigest(A, facts);
    const observed = inSync(A, facts);
    expect(observedDigest(observed)).toBe(before);
    // node-b moves to a new address: subtract the old route items, add the new ones
    let sum = Number.parseInt(before, 16);
    for (const s of B.subnets) {
      sum = subtractHash(sum, itemHash(routeItem({ kind: 'route.replace', dst: s.cidr, via: B.address, dev: A.interface })));
      sum = addHash(sum, itemHash(routeItem({ kind: 'route.replace', dst: s.cidr, via: '198.51.100.22', dev: A.interface })));
    }
    for (const r of observed.routes) if (r.via === B.address) r.via = '198.51.100.22';
    expect(observedDigest(observed)).toBe(formatDigest(sum));
  });
});
