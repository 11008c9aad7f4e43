// The digest contract (an executor's digest of what it observes equals the controller's digest
// of what it wants, once the host is in sync) and the parsing of every message where it enters.
import { describe, expect, it } from 'vitest';
import {
  desiredState,
  environmentOf,
  firewallPolicy,
  localItems,
  localState,
  routeItem,
  type DesiredState,
  type PlanHost,
} from '../../../controller/src/planner/desired.ts';
import { renderRule } from '../commands/render.ts';
import { parseIPv4 } from '../ip/ipv4.ts';
import { addHash, digestOf, formatDigest, itemHash, observedDigest, subtractHash } from './digest.ts';
import { parseControllerMessage, parseExecutorMessage, parseObservedState } from './messages.ts';
import { emptyObservedState, type ObservedState } from './state.ts';

const A: PlanHost = { id: 1, name: 'node-a', address: '198.51.100.11', interface: 'eth0', subnets: [{ id: 1, cidr: '10.100.1.0/24', gateway: '10.100.1.1', network: 'crossdock', mode: 'network' }] };
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
const C: PlanHost = { id: 3, name: 'node-c', address: '198.51.100.13', interface: 'eth0', subnets: [{ id: 3, cidr: '10.100.3.0/24', gateway: '10.100.3.1', network: 'crossdock', mode: 'bip' }] };
const HOSTS = [A, B, C];
// the fleet's hosts and an allowFrom network: comments with spaces, quoted by iptables-save
const POLICY = firewallPolicy([{ cidr: '10.100.0.0/16', allowFrom: ['192.0.2.0/24'] }], HOSTS.map((h) => parseIPv4(h.address)!));

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
    state.docker.networks = desired.networks.map((n, i) => ({ id: `${i}`.padStart(64, '0'), name: n.name, subnet: n.subnet, gateway: n.gateway, labels: { ...n.labels }, containers: i }));
    if (desired.bip) state.docker.bip = desired.bip.bip;
  }
  state.sysctl = { 'net.ipv4.ip_forward': '1' };
  return state;
}

/** The digest the controller expects, computed as the reconciler does (expectedDigest). */
function controllerDigest(host: PlanHost, facts: ObservedState): string {
  const env = environmentOf(facts);
  let sum = 0;
  for (const route of desiredState(host, HOSTS, POLICY, env).routes) sum = addHash(sum, itemHash(routeItem(route)));
  for (const item of localItems(localState(host, POLICY, env), env)) sum = addHash(sum, itemHash(item));
  return formatDigest(sum);
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
    observed.docker.networks.push({ id: 'e'.repeat(64), name: 'other', subnet: null, gateway: null, labels: { 'io.crossdock.managed': 'false' }, containers: 0 });
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
      (o) => o.docker.networks.push({ id: '9', name: 'old', subnet: '10.100.9.0/24', gateway: '10.100.9.1', labels: { 'io.crossdock.managed': 'true' }, containers: 0 }),
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

  it('follows an incremental change: the controller\'s updated sum equals the digest after the job', () => {
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

describe('digest arithmetic', () => {
  const observed = inSync(A, hostFacts());

  it('does not depend on order', () => {
    const shuffled = structuredClone(observed);
    shuffled.routes.reverse();
    shuffled.firewall.chains.reverse();
    shuffled.firewall.jumps.reverse();
    shuffled.docker.networks.reverse();
    expect(shuffled.routes[0]).not.toEqual(observed.routes[0]);
    expect(observedDigest(shuffled)).toBe(observedDigest(observed));
  });

  it('changes when one route changes (via or dev)', () => {
    for (const change of [{ via: '198.51.100.99' }, { dev: 'eth1' }, { dst: '10.100.99.0/24' }]) {
      const changed = structuredClone(observed);
      Object.assign(changed.routes[1]!, change);
      expect(observedDigest(changed)).not.toBe(observedDigest(observed));
    }
  });

  it('counts a repeated item twice (a duplicate is not the same state)', () => {
    expect(digestOf(['a', 'a'])).not.toBe(digestOf(['a']));
  });

  it('add and subtract are inverse, in range, for sums near both ends', () => {
    const max = 2 ** 48 - 1;
    const sums = [0, 1, max, max - 1, 2 ** 47, itemHash('x')];
    const hashes = [0, 1, max, itemHash('route 10.100.2.0/24 via 198.51.100.12 dev eth0'), itemHash('')];
    for (const s of sums) {
      for (const h of hashes) {
        const added = addHash(s, h);
        expect(Number.isSafeInteger(added) && added >= 0 && added <= max).toBe(true);
        expect(subtractHash(added, h)).toBe(s);
        expect(addHash(subtractHash(s, h), h)).toBe(s);
      }
    }
  });

  it('hashes items to 48-bit integers, differently for different items', () => {
    const items = ['', 'a', 'b', 'route 10.100.2.0/24 via 198.51.100.12 dev eth0', 'route 10.100.2.0/24 via 198.51.100.12 dev eth1'];
    const hashes = items.map(itemHash);
    for (const h of hashes) expect(Number.isSafeInteger(h) && h >= 0 && h < 2 ** 48).toBe(true);
    expect(new Set(hashes).size).toBe(items.length);
  });

  it('formats as 12 lower-case hex digits', () => {
    expect(digestOf([])).toBe('000000000000');
    expect(formatDigest(2 ** 48 - 1)).toBe('ffffffffffff');
    expect(formatDigest(0xabc)).toBe('000000000abc');
    expect(observedDigest(observed)).toMatch(/^[0-9a-f]{12}$/);
  });
});

describe('parseExecutorMessage', () => {
  const state = emptyObservedState();
  const digest = observedDigest(state);
  const valid = {
    hello: { type: 'hello', protocol: 1, executorVersion: '0.1.0', hostname: 'node-a', state, digest },
    state: { type: 'state', digest },
    'state with snapshot': { type: 'state', digest, state: inSync(A, hostFacts()) },
    result: {
      type: 'result',
      jobId: 7,
      generation: 3,
      accepted: true,
      results: [{ index: 0, text: 'sysctl -w net.ipv4.ip_forward=1', ok: true, exitCode: null, stdout: '', stderr: '', durationMs: 1 }],
      digest,
    },
    'refused job': { type: 'result', jobId: 8, generation: 3, accepted: false, error: 'command 0: ...', results: [], digest },
  };

  it.each(Object.entries(valid))('accepts %s, as an object, JSON text or a Buffer', (_name, message) => {
    for (const raw of [message, JSON.stringify(message), Buffer.from(JSON.stringify(message))]) {
      expect(parseExecutorMessage(raw)).toStrictEqual({ ok: true, message });
    }
  });

  it.each([
    ['an unknown type', { type: 'bogus', digest }, 'invalid executor message: unknown type "bogus"; expected one of hello, state, result'],
    ['a controller message', { type: 'welcome' }, 'unknown type "welcome"'],
    ['no type', { digest }, 'invalid executor message: no "type" field; expected one of hello, state, result'],
    ['an array', [], 'no "type" field'],
    ['null', null, 'no "type" field'],
    ['an extra field', { type: 'state', digest, extra: 1 }, 'invalid executor message "state": /extra Unexpected property'],
    ['an extra field deep in the state', { ...valid.hello, state: { ...state, docker: { ...state.docker, swarm: true } } }, '"hello": /state/docker/swarm Unexpected property'],
    ['an upper-case digest', { type: 'state', digest: 'ABCDEF012345' }, '"state": /digest'],
    ['a short digest', { type: 'state', digest: '0'.repeat(11) }, '"state": /digest'],
    ['a long digest', { type: 'state', digest: '0'.repeat(13) }, '"state": /digest'],
    ['a missing digest', { type: 'result', jobId: 1, generation: 0, accepted: true, results: [] }, '"result": /digest'],
    ['a job id of 0', { ...valid.result, jobId: 0 }, '"result": /jobId'],
    ['a result with an unknown field', { ...valid.result, results: [{ ...valid.result.results[0], extra: true }] }, '"result": /results/0/extra Unexpected property'],
  ])('rejects %s, naming what is wrong', (_name, message, error) => {
    const parsed = parseExecutorMessage(message);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.error).toContain(error);
  });

  it('rejects text that is not JSON', () => {
    expect(parseExecutorMessage('{"type": "state",')).toStrictEqual({ ok: false, error: 'executor message is not JSON' });
    expect(parseExecutorMessage(Buffer.from('hello'))).toStrictEqual({ ok: false, error: 'executor message is not JSON' });
  });
});

describe('parseControllerMessage', () => {
  const valid = {
    welcome: { type: 'welcome', protocol: 1, host: { name: 'node-a', address: '198.51.100.11', interface: 'eth0' }, reconcileIntervalMs: 30_000, heartbeatIntervalMs: 10_000 },
    // commands are left for the executor to validate, all or nothing
    job: { type: 'job', jobId: 1, generation: 2, commands: [{ kind: 'route.replace', dst: '10.100.2.0/24', via: '198.51.100.12', dev: 'eth0' }, { kind: 'nonsense' }] },
    'state.request': { type: 'state.request' },
    revoked: { type: 'revoked', reason: 'host node-a was deleted from the controller' },
  };

  it.each(Object.entries(valid))('accepts %s', (_name, message) => {
    expect(parseControllerMessage(message)).toStrictEqual({ ok: true, message });
    expect(parseControllerMessage(JSON.stringify(message))).toStrictEqual({ ok: true, message });
  });

  it.each([
    ['an unknown type', { type: 'reboot' }, 'invalid controller message: unknown type "reboot"; expected one of welcome, job, state.request, revoked'],
    ['an executor message', { type: 'hello' }, 'unknown type "hello"'],
    ['an extra field', { type: 'state.request', now: true }, 'invalid controller message "state.request": /now Unexpected property'],
    ['an extra field in the host', { ...valid.welcome, host: { ...valid.welcome.host, token: 'x' } }, '"welcome": /host/token Unexpected property'],
    ['an interval under 100 ms', { ...valid.welcome, reconcileIntervalMs: 10 }, '"welcome": /reconcileIntervalMs'],
    ['a job without commands', { type: 'job', jobId: 1, generation: 0 }, '"job": /commands'],
    ['commands that are not a list', { type: 'job', jobId: 1, generation: 0, commands: {} }, '"job": /commands'],
  ])('rejects %s, naming what is wrong', (_name, message, error) => {
    const parsed = parseControllerMessage(message);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.error).toContain(error);
  });

  it('rejects text that is not JSON', () => {
    expect(parseControllerMessage('<html>502 Bad Gateway</html>')).toStrictEqual({ ok: false, error: 'controller message is not JSON' });
  });
});

describe('parseObservedState', () => {
  it('accepts a state and names the field of a bad one', () => {
    expect(parseObservedState(emptyObservedState())).toMatchObject({ ok: true });
    const bad = { ...emptyObservedState(), routes: [{ dst: '10.100.2.0/24', via: '198.51.100.12' }] };
    expect(parseObservedState(bad)).toMatchObject({ ok: false, error: expect.stringContaining('/routes/0/dev') });
  });
});
