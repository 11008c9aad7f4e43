// What a host gets (DESIGN.md), from the cluster model: pure functions, checked value by value.
import { describe, expect, it } from 'vitest';
import { digestItem, emptyObservedState, parseIPv4, renderRule, validateCommands, type ObservedState } from '@crossdock/shared';
import {
  MAX_REACH_RULES,
  UNKNOWN_ENVIRONMENT,
  bipOf,
  desiredState,
  dockerNetwork,
  environmentOf,
  firewallChains,
  firewallJumps,
  firewallPolicy,
  localItems,
  localState,
  peerRoute,
  routeItem,
  type HostEnvironment,
  type PlanHost,
  type PlanPool,
  type PlanSubnet,
} from './desired.ts';

const sub = (id: number, cidr: string, gateway: string, network = 'crossdock', mode: PlanSubnet['mode'] = 'network'): PlanSubnet => ({
  id,
  cidr,
  gateway,
  network,
  mode,
});
const A: PlanHost = { id: 1, name: 'node-a', address: '198.51.100.11', interface: 'ens3', subnets: [sub(1, '10.100.1.0/24', '10.100.1.1')] };
const B: PlanHost = {
  id: 2,
  name: 'node-b',
  address: '198.51.100.12',
  interface: 'eth0',
  subnets: [sub(2, '10.100.2.0/24', '10.100.2.1'), sub(5, '10.100.5.0/24', '10.100.5.1', 'crossdock-2')],
};
const C: PlanHost = { id: 3, name: 'node-c', address: '198.51.100.13', interface: 'eth1', subnets: [sub(3, '10.100.3.0/24', '10.100.3.1', 'x', 'bip')] };
const ip = (address: string) => parseIPv4(address)!;
/** The policy of one pool without allowFrom and the given hosts. */
const policyOf = (pools: readonly string[], hosts: readonly PlanHost[] = []) =>
  firewallPolicy(
    pools.map((cidr) => ({ cidr, allowFrom: [] })),
    hosts.map((h) => ip(h.address)),
  );
const DOCKER20: HostEnvironment = { dockerAvailable: true, dockerUser: true, engineMajor: 20 };
const DOCKER28: HostEnvironment = { dockerAvailable: true, dockerUser: true, engineMajor: 28 };
const NO_DOCKER: HostEnvironment = { dockerAvailable: false, dockerUser: false, engineMajor: null };

function report(docker: Partial<ObservedState['docker']>, builtinChains: string[]): ObservedState {
  const state = emptyObservedState();
  state.docker = { ...state.docker, ...docker };
  state.firewall.builtinChains = builtinChains;
  return state;
}

describe('environmentOf', () => {
  it.each([
    [
      'engine 20.10.24 with DOCKER-USER',
      report({ available: true, version: '20.10.24' }, ['filter/DOCKER-USER', 'filter/FORWARD', 'nat/POSTROUTING']),
      DOCKER20,
    ],
    ['engine 28.0.4', report({ available: true, version: '28.0.4' }, ['filter/DOCKER-USER', 'filter/FORWARD']), DOCKER28],
    [
      'an unparsable version',
      report({ available: true, version: 'dev' }, ['filter/DOCKER-USER']),
      { dockerAvailable: true, dockerUser: true, engineMajor: null },
    ],
    ['no docker, no DOCKER-USER', report({ available: false, version: null }, ['filter/FORWARD', 'nat/POSTROUTING']), NO_DOCKER],
    [
      'docker stopped, its DOCKER-USER chain still there',
      report({ available: false, version: null }, ['filter/DOCKER-USER', 'filter/FORWARD']),
      { ...NO_DOCKER, dockerUser: true },
    ],
    [
      'a DOCKER-USER in the nat table does not count',
      report({ available: true, version: '24.0.0' }, ['nat/DOCKER-USER']),
      { dockerAvailable: true, dockerUser: false, engineMajor: 24 },
    ],
  ])('%s', (_name, state, expected) => {
    expect(environmentOf(state)).toStrictEqual(expected);
  });

  it('knows nothing of a host that never reported', () => {
    expect(UNKNOWN_ENVIRONMENT).toStrictEqual(NO_DOCKER);
    expect(environmentOf(emptyObservedState())).toStrictEqual(UNKNOWN_ENVIRONMENT);
  });
});

describe('peerRoute', () => {
  it("goes to the peer subnet via the peer address, on this host's interface", () => {
    expect(peerRoute(A, B, B.subnets[1]!)).toStrictEqual({ kind: 'route.replace', dst: '10.100.5.0/24', via: '198.51.100.12', dev: 'ens3' });
  });
});

describe('firewallChains', () => {
  it('accepts both directions between each local subnet and each pool, and keeps it from being masqueraded', () => {
    const host = { ...A, subnets: [sub(1, '10.100.1.0/24', '10.100.1.1'), sub(4, '10.100.4.0/25', '10.100.4.1', 'crossdock-2')] };
    const accept = (source: string, destination: string) => ({ source, destination, target: 'ACCEPT', comment: 'crossdock' });
    expect(firewallChains(host, policyOf(['10.100.0.0/16', '172.30.0.0/16']))).toStrictEqual([
      {
        kind: 'firewall.chain',
        table: 'filter',
        chain: 'CROSSDOCK-FORWARD',
        rules: [
          accept('10.100.0.0/16', '10.100.1.0/24'),
          accept('10.100.1.0/24', '10.100.0.0/16'),
          accept('172.30.0.0/16', '10.100.1.0/24'),
          accept('10.100.1.0/24', '172.30.0.0/16'),
          accept('10.100.0.0/16', '10.100.4.0/25'),
          accept('10.100.4.0/25', '10.100.0.0/16'),
          accept('172.30.0.0/16', '10.100.4.0/25'),
          accept('10.100.4.0/25', '172.30.0.0/16'),
        ],
      },
      {
        kind: 'firewall.chain',
        table: 'nat',
        chain: 'CROSSDOCK-POSTROUTING',
        // ACCEPT ends the nat traversal, so Docker's MASQUERADE further down POSTROUTING is skipped.
        rules: [
          accept('10.100.1.0/24', '10.100.0.0/16'),
          accept('10.100.1.0/24', '172.30.0.0/16'),
          accept('10.100.4.0/25', '10.100.0.0/16'),
          accept('10.100.4.0/25', '172.30.0.0/16'),
        ],
      },
    ]);
  });

  it("ends the filter chain with the policy's reach rules; the nat chain has none (replies need no nat rule)", () => {
    const policy = policyOf(['10.100.0.0/16'], [A, B, C]);
    const [forward, nat] = firewallChains(A, policy);
    expect(forward!.rules.slice(2)).toStrictEqual(policy.reach);
    expect(nat!.rules).toStrictEqual(firewallChains(A, policyOf(['10.100.0.0/16']))[1]!.rules);
  });

  it('gives a host without subnets only the reach rules (it forwards to the pools for outside machines)', () => {
    const policy = policyOf(['10.100.0.0/16'], [A, B]);
    expect(firewallChains({ ...A, subnets: [] }, policy).map((c) => c.rules)).toStrictEqual([policy.reach, []]);
    expect(firewallChains({ ...A, subnets: [] }, policyOf(['10.100.0.0/16'])).map((c) => [c.chain, c.rules.length])).toStrictEqual([
      ['CROSSDOCK-FORWARD', 0],
      ['CROSSDOCK-POSTROUTING', 0],
    ]);
  });
});

describe('firewallPolicy', () => {
  const POOL = '10.100.0.0/16';
  const pool = (cidr: string, ...allowFrom: string[]): PlanPool => ({ cidr, allowFrom });
  /** The reach rules as iptables-save prints them, without the chain and comment noise. */
  const rules = (pools: PlanPool[], addresses: string[]) =>
    firewallPolicy(pools, addresses.map(ip)).reach.map((r) => `${r.source} > ${r.destination} (${r.comment})`);
  const hostsOf = (...addresses: string[]) => addresses;

  it.each([
    ['no hosts, no allowFrom: nothing', [pool(POOL)], hostsOf(), []],
    [
      'one host: its /32, both ways',
      [pool(POOL)],
      hostsOf('198.51.100.11'),
      ['198.51.100.11/32 > 10.100.0.0/16 (crossdock host)', '10.100.0.0/16 > 198.51.100.11/32 (crossdock host)'],
    ],
    [
      'hosts numbered in a run share blocks (.11, .12/31), and no address between or beside them is matched',
      [pool(POOL)],
      hostsOf('198.51.100.13', '198.51.100.11', '198.51.100.12'),
      [
        '198.51.100.11/32 > 10.100.0.0/16 (crossdock host)',
        '10.100.0.0/16 > 198.51.100.11/32 (crossdock host)',
        '198.51.100.12/31 > 10.100.0.0/16 (crossdock host)',
        '10.100.0.0/16 > 198.51.100.12/31 (crossdock host)',
      ],
    ],
    [
      'every pool gets the hosts, each pool its own allowFrom after them',
      [pool(POOL, '192.0.2.0/24'), pool('172.30.0.0/16')],
      hostsOf('198.51.100.11'),
      [
        '198.51.100.11/32 > 10.100.0.0/16 (crossdock host)',
        '10.100.0.0/16 > 198.51.100.11/32 (crossdock host)',
        '192.0.2.0/24 > 10.100.0.0/16 (crossdock allowFrom)',
        '10.100.0.0/16 > 192.0.2.0/24 (crossdock allowFrom)',
        '198.51.100.11/32 > 172.30.0.0/16 (crossdock host)',
        '172.30.0.0/16 > 198.51.100.11/32 (crossdock host)',
      ],
    ],
    [
      "a host block inside one of the pool's allowFrom networks is left out for that pool only",
      [pool(POOL, '198.51.100.0/24'), pool('172.30.0.0/16')],
      hostsOf('198.51.100.11', '203.0.113.5'),
      [
        '203.0.113.5/32 > 10.100.0.0/16 (crossdock host)',
        '10.100.0.0/16 > 203.0.113.5/32 (crossdock host)',
        '198.51.100.0/24 > 10.100.0.0/16 (crossdock allowFrom)',
        '10.100.0.0/16 > 198.51.100.0/24 (crossdock allowFrom)',
        '198.51.100.11/32 > 172.30.0.0/16 (crossdock host)',
        '172.30.0.0/16 > 198.51.100.11/32 (crossdock host)',
        '203.0.113.5/32 > 172.30.0.0/16 (crossdock host)',
        '172.30.0.0/16 > 203.0.113.5/32 (crossdock host)',
      ],
    ],
  ])('%s', (_why, pools, addresses, expected) => {
    expect(rules(pools, addresses)).toStrictEqual(expected);
    expect(firewallPolicy(pools, addresses.map(ip)).pools).toStrictEqual(pools.map((p) => p.cidr));
  });

  it('follows a host joining and leaving: the same rules as a policy built from scratch', () => {
    const before = rules([pool(POOL)], hostsOf('198.51.100.11', '198.51.100.12'));
    const joined = rules([pool(POOL)], hostsOf('198.51.100.11', '198.51.100.12', '198.51.100.13'));
    expect(joined).not.toStrictEqual(before);
    expect(joined.filter((r) => r.includes('198.51.100.12/31'))).toHaveLength(2);
    // and after it leaves, the chain is what it was
    expect(rules([pool(POOL)], hostsOf('198.51.100.12', '198.51.100.11'))).toStrictEqual(before);
  });

  it('renders rules the executor accepts, with a comment an operator can read in iptables-save', () => {
    const policy = firewallPolicy([pool(POOL, '192.0.2.0/24')], [ip('198.51.100.11')]);
    expect(policy.reach.map((r) => renderRule('CROSSDOCK-FORWARD', r))).toStrictEqual([
      '-A CROSSDOCK-FORWARD -s 198.51.100.11/32 -d 10.100.0.0/16 -m comment --comment "crossdock host" -j ACCEPT',
      '-A CROSSDOCK-FORWARD -s 10.100.0.0/16 -d 198.51.100.11/32 -m comment --comment "crossdock host" -j ACCEPT',
      '-A CROSSDOCK-FORWARD -s 192.0.2.0/24 -d 10.100.0.0/16 -m comment --comment "crossdock allowFrom" -j ACCEPT',
      '-A CROSSDOCK-FORWARD -s 10.100.0.0/16 -d 192.0.2.0/24 -m comment --comment "crossdock allowFrom" -j ACCEPT',
    ]);
    expect(validateCommands(firewallChains(A, policy))).toMatchObject({ ok: true });
  });

  it('leaves the host rules out rather than exceed what a chain may hold (every job would be refused), and keeps allowFrom', () => {
    const scattered = Array.from({ length: MAX_REACH_RULES / 2 + 1 }, (_, i) => ip('10.50.0.0') + 2 * i);
    const over = firewallPolicy([pool(POOL, '192.0.2.0/24')], scattered);
    expect(over.hostRulesLeftOut).toBe(MAX_REACH_RULES + 2);
    expect(over.reach.map((r) => r.comment)).toStrictEqual(['crossdock allowFrom', 'crossdock allowFrom']);
    const fits = firewallPolicy([pool(POOL)], scattered.slice(1));
    expect(fits.hostRulesLeftOut).toBe(0);
    expect(fits.reach).toHaveLength(MAX_REACH_RULES);
    expect(validateCommands(firewallChains(B, fits))).toMatchObject({ ok: true });
  });

  it('stays compact at 1,000 hosts numbered in runs: 4 runs of 250 in one /16 take 4 x 7 blocks, 56 rules', () => {
    const addresses = [0, 1, 2, 3].flatMap((run) => Array.from({ length: 250 }, (_, i) => ip(`10.50.${run * 2}.10`) + i));
    expect(firewallPolicy([pool(POOL)], addresses).reach).toHaveLength(56);
  });
});

describe('firewallJumps', () => {
  it.each([
    [true, 'DOCKER-USER'],
    [false, 'FORWARD'],
  ] as const)('dockerUser %s: filter jump from %s, nat jump from POSTROUTING, both first', (dockerUser, from) => {
    expect(firewallJumps({ ...DOCKER20, dockerUser })).toStrictEqual([
      { kind: 'firewall.jump', table: 'filter', from, to: 'CROSSDOCK-FORWARD', position: 1 },
      { kind: 'firewall.jump', table: 'nat', from: 'POSTROUTING', to: 'CROSSDOCK-POSTROUTING', position: 1 },
    ]);
  });
});

describe('dockerNetwork', () => {
  const subnet = sub(7, '10.100.7.0/24', '10.100.7.1', 'crossdock-7');
  it.each([
    [null, {}],
    [20, {}],
    [27, {}],
    [28, { 'com.docker.network.bridge.gateway_mode_ipv4': 'nat-unprotected' }],
    [29, { 'com.docker.network.bridge.gateway_mode_ipv4': 'nat-unprotected' }],
  ])('engine %s: options %j', (engineMajor, options) => {
    expect(dockerNetwork(subnet, { ...DOCKER20, engineMajor })).toStrictEqual({
      kind: 'docker.network.create',
      name: 'crossdock-7',
      subnet: '10.100.7.0/24',
      gateway: '10.100.7.1',
      options,
      labels: { 'io.crossdock.managed': 'true', 'io.crossdock.subnet': '7' },
    });
  });
});

describe('bipOf', () => {
  it.each([
    ['10.100.1.0/24', '10.100.1.1', '10.100.1.1/24'],
    ['10.100.8.0/22', '10.100.11.254', '10.100.11.254/22'],
    ['192.168.240.0/20', '192.168.240.1', '192.168.240.1/20'],
  ])('%s gateway %s: %s (the gateway, never the network address)', (cidr, gateway, bip) => {
    const command = bipOf(sub(1, cidr, gateway, 'x', 'bip'));
    expect(command).toStrictEqual({ kind: 'docker.daemon.bip', bip });
    expect(command.bip.startsWith(`${cidr.split('/')[0]!}/`)).toBe(false);
    expect(validateCommands([command])).toMatchObject({ ok: true });
  });
});

describe('localState', () => {
  const pools = policyOf(['10.100.0.0/16']);
  it('has networks for network-mode subnets and bip for the bip one, with docker', () => {
    const host = { ...A, subnets: [sub(1, '10.100.1.0/24', '10.100.1.1', 'br', 'bip'), sub(4, '10.100.4.0/24', '10.100.4.1', 'crossdock-2')] };
    const local = localState(host, pools, DOCKER20);
    expect(local.sysctl).toStrictEqual({ kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1' });
    expect(local.networks.map((n) => n.name)).toStrictEqual(['crossdock-2']);
    expect(local.bip).toStrictEqual({ kind: 'docker.daemon.bip', bip: '10.100.1.1/24' });
    expect(local.chains[0]!.rules).toHaveLength(4);
  });

  it('has no networks and no bip without docker, and still the sysctl, chains and jumps', () => {
    const local = localState({ ...A, subnets: [...A.subnets, sub(9, '10.100.9.0/24', '10.100.9.1', 'x', 'bip')] }, pools, NO_DOCKER);
    expect(local.networks).toStrictEqual([]);
    expect(local.bip).toBeNull();
    expect(local.chains).toHaveLength(2);
    expect(local.jumps.map((j) => j.from)).toStrictEqual(['FORWARD', 'POSTROUTING']);
  });
});

describe('desiredState', () => {
  const pools = policyOf(['10.100.0.0/16'], [A, B, C]);
  it('routes every subnet of every other host (bip ones too), never its own', () => {
    expect(desiredState(A, [A, B, C], pools, DOCKER20).routes).toStrictEqual([
      { kind: 'route.replace', dst: '10.100.2.0/24', via: '198.51.100.12', dev: 'ens3' },
      { kind: 'route.replace', dst: '10.100.5.0/24', via: '198.51.100.12', dev: 'ens3' },
      { kind: 'route.replace', dst: '10.100.3.0/24', via: '198.51.100.13', dev: 'ens3' },
    ]);
    expect(desiredState(C, [A, B, C], pools, DOCKER20).routes.map((r) => `${r.dst} ${r.via} ${r.dev}`)).toStrictEqual([
      '10.100.1.0/24 198.51.100.11 eth1',
      '10.100.2.0/24 198.51.100.12 eth1',
      '10.100.5.0/24 198.51.100.12 eth1',
    ]);
  });

  it('recognises itself by id, not by name or address', () => {
    const twin = { ...A, id: 99, subnets: [sub(99, '10.100.99.0/24', '10.100.99.1')] };
    expect(desiredState(A, [A, twin], pools, DOCKER20).routes.map((r) => r.dst)).toStrictEqual(['10.100.99.0/24']);
  });

  it('is made of commands the executor accepts', () => {
    for (const env of [DOCKER20, DOCKER28, NO_DOCKER]) {
      for (const host of [A, B, C]) {
        const d = desiredState(host, [A, B, C], pools, env);
        const commands = [d.sysctl, ...(d.bip ? [d.bip] : []), ...d.networks, ...d.chains, ...d.jumps, ...d.routes];
        expect(validateCommands(commands), `${host.name} ${JSON.stringify(env)}`).toMatchObject({ ok: true });
      }
    }
  });
});

describe('localItems / routeItem', () => {
  const pools = policyOf(['10.100.0.0/16']);
  it('covers sysctl, each chain, each jump, docker up and each network, in digest item form', () => {
    const items = localItems(localState(A, pools, DOCKER20), DOCKER20);
    expect(items).toStrictEqual([
      'sysctl net.ipv4.ip_forward=1',
      'chain filter CROSSDOCK-FORWARD\n' +
        '-A CROSSDOCK-FORWARD -s 10.100.0.0/16 -d 10.100.1.0/24 -m comment --comment crossdock -j ACCEPT\n' +
        '-A CROSSDOCK-FORWARD -s 10.100.1.0/24 -d 10.100.0.0/16 -m comment --comment crossdock -j ACCEPT',
      'chain nat CROSSDOCK-POSTROUTING\n-A CROSSDOCK-POSTROUTING -s 10.100.1.0/24 -d 10.100.0.0/16 -m comment --comment crossdock -j ACCEPT',
      'jump filter DOCKER-USER CROSSDOCK-FORWARD 1',
      'jump nat POSTROUTING CROSSDOCK-POSTROUTING 1',
      'docker up',
      'network crossdock 10.100.1.0/24 10.100.1.1',
    ]);
  });

  it('has no docker item without docker', () => {
    const items = localItems(localState(A, pools, NO_DOCKER), NO_DOCKER);
    expect(items).not.toContain(digestItem.dockerUp());
    expect(items.filter((i) => i.startsWith('network '))).toStrictEqual([]);
  });

  it('routeItem is the digest item of a route', () => {
    expect(routeItem(peerRoute(A, B, B.subnets[0]!))).toBe('route 10.100.2.0/24 via 198.51.100.12 dev ens3');
  });
});

describe('a network Docker owns (mode docker, --ipam-driver crossdock)', () => {
  const owner: PlanHost = { ...A, subnets: [sub(7, '10.100.7.0/24', '10.100.7.1', 'docker/10.100.7.0/24', 'docker')] };
  it('is routed on every other host and in its own chains, but no Docker network is created for it', () => {
    const policy = policyOf(['10.100.0.0/16'], [owner, B]);
    const own = desiredState(owner, [owner, B], policy, DOCKER20);
    expect(own.networks).toEqual([]);
    expect(own.bip).toBeNull();
    expect(own.chains[0]!.rules.some((r) => r.destination === '10.100.7.0/24')).toBe(true);
    expect(desiredState(B, [owner, B], policy, DOCKER20).routes).toContainEqual(peerRoute(B, owner, owner.subnets[0]!));
  });
});
