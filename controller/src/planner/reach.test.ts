// Per-peer reach: direct where the peer is on-link for the host's interface (as the host
// reported it), VXLAN where the pool allows it, unreachable under "never"; tables of cases.
import { describe, expect, it } from 'vitest';
import { VXLAN_DEVICE, emptyObservedState, mustParseCidr, parseIPv4, validateCommands, type ObservedState } from '@crossdock/shared';
import {
  DEFAULT_VXLAN,
  desiredState,
  environmentOf,
  firewallPolicy,
  networkMtu,
  peerEntries,
  subnetReach,
  vtepAddress,
  vtepMac,
  type Encapsulation,
  type HostEnvironment,
  type PlanHost,
  type PlanSubnet,
  type ReachPolicy,
} from './desired.ts';
import { plan } from './plan.ts';

const sub = (id: number, third: number): PlanSubnet => ({
  id,
  cidr: `10.100.${third}.0/24`,
  gateway: `10.100.${third}.1`,
  network: 'crossdock',
  mode: 'network',
});
/** Segment 1: 203.0.113.0/28; segment 2: 203.0.113.16/28. */
const H1: PlanHost = { id: 1, name: 'h1', address: '203.0.113.2', interface: 'eth0', subnets: [sub(1, 1)] };
const H2: PlanHost = { id: 2, name: 'h2', address: '203.0.113.3', interface: 'eth0', subnets: [sub(2, 2)] };
const H3: PlanHost = { id: 3, name: 'h3', address: '203.0.113.18', interface: 'eth0', subnets: [sub(3, 3)] };
const HOSTS = [H1, H2, H3];

/** The environment of a host whose eth0 has `address` (with its prefix) and `mtu`. */
function envWith(address: string, mtu = 1500, inputPolicy = 'ACCEPT'): HostEnvironment {
  const state: ObservedState = emptyObservedState();
  state.docker = { ...state.docker, available: true, version: '20.10.24' };
  state.firewall.builtinChains = ['filter/DOCKER-USER', 'filter/FORWARD', 'nat/POSTROUTING'];
  state.firewall.inputPolicy = inputPolicy;
  state.interfaces = [
    { name: 'lo', mtu: 65536, addresses: ['127.0.0.1/8'] },
    { name: 'eth0', mtu, addresses: [address] },
  ];
  return environmentOf(state);
}

const reachOf = (mode: Encapsulation, mtu: number | null = null): ReachPolicy => ({
  vxlan: DEFAULT_VXLAN,
  encapsulationOf: () => mode,
  mtuOf: () => mtu,
  possible: mode !== 'never',
});
const policy = firewallPolicy(
  [{ cidr: '10.100.0.0/16', allowFrom: [] }],
  HOSTS.map((h) => parseIPv4(h.address)!),
);
const ENV1 = envWith('203.0.113.2/28');

describe('subnetReach: on-link and the three modes', () => {
  it.each<[boolean | null, Encapsulation, string]>([
    [true, 'never', 'direct'],
    [true, 'crossSubnet', 'direct'],
    [true, 'always', 'vxlan'],
    [false, 'never', 'unreachable'],
    [false, 'crossSubnet', 'vxlan'],
    [false, 'always', 'vxlan'],
    // not reported yet: as before VXLAN, unless the pool always encapsulates
    [null, 'never', 'direct'],
    [null, 'crossSubnet', 'direct'],
    [null, 'always', 'vxlan'],
  ])('on-link %s under %s: %s', (link, mode, expected) => {
    expect(subnetReach(link, mode)).toBe(expected);
  });
});

describe('peerEntries, as h1 (203.0.113.2/28) sees them', () => {
  it.each<[string, PlanHost, Encapsulation, string[], boolean]>([
    ['on-link peer, crossSubnet', H2, 'crossSubnet', ['10.100.2.0/24 via 203.0.113.3 dev eth0'], false],
    ['off-link peer, crossSubnet', H3, 'crossSubnet', ['10.100.3.0/24 via 169.254.64.3 dev crossdock.vx'], true],
    ['on-link peer, always', H2, 'always', ['10.100.2.0/24 via 169.254.64.2 dev crossdock.vx'], true],
    ['off-link peer, never', H3, 'never', [], false],
  ])('%s', (_name, peer, mode, routes, vxlan) => {
    const entries = peerEntries(H1, ENV1, peer, peer.subnets, reachOf(mode));
    expect(entries.routes.map((r) => `${r.dst} via ${r.via} dev ${r.dev}`)).toStrictEqual(routes);
    if (vxlan) {
      expect(entries.neigh).toStrictEqual({ kind: 'neigh.replace', dev: VXLAN_DEVICE, address: vtepAddress(peer.id, DEFAULT_VXLAN), mac: vtepMac(peer.id) });
      expect(entries.fdb).toStrictEqual({ kind: 'fdb.replace', dev: VXLAN_DEVICE, mac: vtepMac(peer.id), dst: peer.address });
    } else {
      expect([entries.neigh, entries.fdb]).toStrictEqual([null, null]);
    }
  });

  it('under "never" an off-link peer is unreachable with a reason that names the fix', () => {
    const entries = peerEntries(H1, ENV1, H3, H3.subnets, reachOf('never'));
    expect(entries.reaches).toStrictEqual(['unreachable']);
    expect(entries.unreachable[0]!.reason).toMatch(/203\.0\.113\.18 is not on-link for eth0 of h1.*"crossSubnet"/);
  });

  it('one neighbour and one fdb entry for a peer, whatever its number of subnets', () => {
    const peer = { ...H3, subnets: [sub(3, 3), sub(4, 4)] };
    const entries = peerEntries(H1, ENV1, peer, peer.subnets, reachOf('crossSubnet'));
    expect(entries.routes).toHaveLength(2);
    expect(entries.neigh).not.toBeNull();
  });

  it('VTEP addresses and MACs come from the host id: link-local, locally administered', () => {
    expect([vtepAddress(1, DEFAULT_VXLAN), vtepMac(1)]).toStrictEqual(['169.254.64.1', '02:cd:00:00:00:01']);
    expect([vtepAddress(300, DEFAULT_VXLAN), vtepMac(300)]).toStrictEqual(['169.254.65.44', '02:cd:00:00:01:2c']);
    // the /18's broadcast address is nobody's
    expect(vtepAddress(2 ** 14 - 1, DEFAULT_VXLAN)).toBeNull();
    expect(vtepAddress(1, { ...DEFAULT_VXLAN, vtepRange: mustParseCidr('169.254.200.0/24') })).toBe('169.254.200.1');
  });
});

describe('desiredState with VXLAN', () => {
  it('gives the host its device (VTEP from its id, MTU = underlay - 50) and is made of commands the executor accepts', () => {
    const env = envWith('203.0.113.2/28', 9000);
    const d = desiredState(H1, HOSTS, policy, env, reachOf('crossSubnet'));
    expect(d.device).toStrictEqual({
      kind: 'vxlan.device',
      name: VXLAN_DEVICE,
      vni: DEFAULT_VXLAN.vni,
      port: DEFAULT_VXLAN.port,
      local: '203.0.113.2',
      mac: '02:cd:00:00:00:01',
      address: '169.254.64.1/18',
      mtu: 8950,
    });
    const commands = [d.sysctl, ...d.networks, ...d.chains, ...d.jumps, d.device!, ...d.neighbours, ...d.fdb, ...d.routes];
    expect(validateCommands(commands)).toMatchObject({ ok: true });
  });

  it('no device where no pool may encapsulate', () => {
    expect(desiredState(H1, HOSTS, policy, ENV1, reachOf('never')).device).toBeNull();
  });

  it.each<[string, Encapsulation, number | null, number, number | null]>([
    ['crossSubnet: underlay less 50', 'crossSubnet', null, 1500, 1450],
    ['crossSubnet on a jumbo underlay', 'crossSubnet', null, 9000, 8950],
    ['always', 'always', null, 1500, 1450],
    ['never: Docker default', 'never', null, 1500, null],
    ['an explicit pool MTU wins', 'crossSubnet', 1400, 1500, 1400],
    ['an explicit pool MTU under never too', 'never', 1400, 1500, 1400],
  ])('the MTU rule, %s', (_name, mode, explicit, underlay, expected) => {
    const env = envWith('203.0.113.2/28', underlay);
    expect(networkMtu(H1, H1.subnets[0]!, env, reachOf(mode, explicit))).toBe(expected);
    const network = desiredState(H1, HOSTS, policy, env, reachOf(mode, explicit)).networks[0]!;
    expect(network.options['com.docker.network.driver.mtu']).toBe(expected === null ? undefined : String(expected));
  });

  it('where INPUT drops, a CROSSDOCK-VXLAN chain accepts the VXLAN port from the fleet hosts only, jumped from INPUT', () => {
    const env = envWith('203.0.113.2/28', 1500, 'DROP');
    const d = desiredState(H1, HOSTS, policy, env, reachOf('crossSubnet'));
    const chain = d.chains.find((c) => c.chain === 'CROSSDOCK-VXLAN')!;
    expect(chain.rules).toStrictEqual([
      { source: '203.0.113.2/31', protocol: 'udp', dport: 4789, target: 'ACCEPT', comment: 'crossdock vxlan' },
      { source: '203.0.113.18/32', protocol: 'udp', dport: 4789, target: 'ACCEPT', comment: 'crossdock vxlan' },
    ]);
    expect(d.jumps).toContainEqual({ kind: 'firewall.jump', table: 'filter', from: 'INPUT', to: 'CROSSDOCK-VXLAN', position: 1 });
    expect(desiredState(H1, HOSTS, policy, ENV1, reachOf('crossSubnet')).chains.map((c) => c.chain)).not.toContain('CROSSDOCK-VXLAN');
  });
});

/** What the host has once it applied `d` (the parts the reach decision shapes). */
function applied(d: ReturnType<typeof desiredState>, env: HostEnvironment): ObservedState {
  const state = emptyObservedState();
  state.interfaces = (env.interfaces ?? []).map((i) => ({ name: i.name, mtu: i.mtu, addresses: [...i.addresses] }));
  state.routes = d.routes.map((r) => ({ dst: r.dst, via: r.via, dev: r.dev }));
  state.vxlan = {
    device: d.device && {
      name: d.device.name,
      alias: 'crossdock',
      vni: d.device.vni,
      port: d.device.port,
      local: d.device.local,
      learning: false,
      mac: d.device.mac,
      mtu: d.device.mtu,
      up: true,
      addresses: [d.device.address],
    },
    neighbours: d.neighbours.map((n) => ({ address: n.address, mac: n.mac })),
    fdb: d.fdb.map((f) => ({ mac: f.mac, dst: f.dst })),
  };
  return state;
}

const reachCommands = (commands: ReturnType<typeof plan>) =>
  commands.filter((c) =>
    ['route.replace', 'route.delete', 'neigh.replace', 'neigh.delete', 'fdb.replace', 'fdb.delete', 'vxlan.device', 'vxlan.device.delete'].includes(c.kind),
  );

describe('plan: changes converge', () => {
  it('a host in sync needs nothing', () => {
    const d = desiredState(H1, HOSTS, policy, ENV1, reachOf('crossSubnet'));
    expect(reachCommands(plan(d, applied(d, ENV1)))).toStrictEqual([]);
  });

  it('a peer moving into another segment switches from direct to VXLAN, and back', () => {
    const reach = reachOf('crossSubnet');
    const before = desiredState(H1, HOSTS, policy, ENV1, reach);
    const moved = { ...H2, address: '203.0.113.19' };
    const after = desiredState(H1, [H1, moved, H3], policy, ENV1, reach);
    expect(reachCommands(plan(after, applied(before, ENV1)))).toStrictEqual([
      { kind: 'neigh.replace', dev: VXLAN_DEVICE, address: '169.254.64.2', mac: '02:cd:00:00:00:02' },
      { kind: 'fdb.replace', dev: VXLAN_DEVICE, mac: '02:cd:00:00:00:02', dst: '203.0.113.19' },
      { kind: 'route.replace', dst: '10.100.2.0/24', via: '169.254.64.2', dev: VXLAN_DEVICE },
    ]);
    expect(reachCommands(plan(before, applied(after, ENV1)))).toStrictEqual([
      { kind: 'neigh.delete', dev: VXLAN_DEVICE, address: '169.254.64.2' },
      { kind: 'fdb.delete', dev: VXLAN_DEVICE, mac: '02:cd:00:00:00:02' },
      { kind: 'route.replace', dst: '10.100.2.0/24', via: '203.0.113.3', dev: 'eth0' },
    ]);
  });

  it('the host itself re-addressed into the other segment: its device is made again with its new local address, and every entry with it', () => {
    const reach = reachOf('crossSubnet');
    const before = desiredState(H1, HOSTS, policy, ENV1, reach);
    const env = envWith('203.0.113.20/28');
    const self = { ...H1, address: '203.0.113.20' };
    const after = desiredState(self, [self, H2, H3], policy, env, reach);
    const commands = reachCommands(plan(after, applied(before, ENV1)));
    expect(commands[0]).toMatchObject({ kind: 'vxlan.device', local: '203.0.113.20' });
    // h2 is off-link now, h3 on-link: both entries change, and h3's old ones went with the old device
    expect(commands.slice(1).map((c) => `${c.kind} ${'dst' in c ? c.dst : ''}`)).toStrictEqual([
      'neigh.replace ',
      'fdb.replace 203.0.113.3',
      'route.replace 10.100.2.0/24',
      'route.replace 10.100.3.0/24',
    ]);
    expect(after.routes.map((r) => `${r.dst} ${r.dev}`)).toStrictEqual(['10.100.2.0/24 crossdock.vx', '10.100.3.0/24 eth0']);
  });

  it.each<[Encapsulation, Encapsulation]>([
    ['crossSubnet', 'never'],
    ['never', 'crossSubnet'],
    ['crossSubnet', 'always'],
    ['always', 'crossSubnet'],
    ['always', 'never'],
  ])('a pool switched from %s to %s converges in one plan, and then nothing more is needed', (from, to) => {
    const before = desiredState(H1, HOSTS, policy, ENV1, reachOf(from));
    const after = desiredState(H1, HOSTS, policy, ENV1, reachOf(to));
    const first = plan(after, applied(before, ENV1));
    expect(validateCommands(first)).toMatchObject({ ok: true });
    // what the first plan leaves is what the new mode wants
    expect(reachCommands(plan(after, applied(after, ENV1)))).toStrictEqual([]);
    if (to === 'never') {
      // the routes through the device go with it: no route to the off-link peer is left
      expect(first).toContainEqual({ kind: 'vxlan.device.delete', name: VXLAN_DEVICE });
      expect(first.filter((c) => c.kind.startsWith('route.') && 'dst' in c && c.dst === '10.100.3.0/24')).toStrictEqual([]);
      expect(after.routes.map((r) => r.dst)).toStrictEqual(['10.100.2.0/24']);
    }
  });

  it('a device of that name crossdock did not make is never removed', () => {
    const d = desiredState(H1, HOSTS, policy, ENV1, reachOf('never'));
    const observed = applied(d, ENV1);
    observed.vxlan = {
      device: { ...applied(desiredState(H1, HOSTS, policy, ENV1, reachOf('always')), ENV1).vxlan!.device!, alias: null },
      neighbours: [],
      fdb: [],
    };
    expect(plan(d, observed).map((c) => c.kind)).not.toContain('vxlan.device.delete');
  });
});
