// Digest arithmetic and the parsing of every message where it enters. That an executor's
// digest matches the controller's is test/digest-parity.test.ts (it needs the planner).
import { describe, expect, it } from 'vitest';
import { addHash, digestOf, formatDigest, itemHash, observedDigest, subtractHash } from './digest.ts';
import { parseControllerMessage, parseExecutorMessage, parseObservedState } from './messages.ts';
import { emptyObservedState, type ObservedState } from './state.ts';

/** A host's report with crossdock's routes, chains, jumps, network and ip_forward in place. */
const SYNCED: ObservedState = {
  routes: [
    { dst: '10.100.2.0/24', via: '198.51.100.12', dev: 'eth0' },
    { dst: '10.100.4.0/24', via: '198.51.100.12', dev: 'eth0' },
    { dst: '10.100.3.0/24', via: '198.51.100.13', dev: 'eth0' },
  ],
  firewall: {
    backend: 'nf_tables',
    chains: [
      {
        table: 'filter',
        name: 'CROSSDOCK-FORWARD',
        rules: ['-A CROSSDOCK-FORWARD -s 10.100.0.0/16 -d 10.100.1.0/24 -m comment --comment crossdock -j ACCEPT'],
      },
      {
        table: 'nat',
        name: 'CROSSDOCK-POSTROUTING',
        rules: ['-A CROSSDOCK-POSTROUTING -s 10.100.1.0/24 -d 10.100.0.0/16 -m comment --comment crossdock -j ACCEPT'],
      },
    ],
    jumps: [
      { table: 'filter', from: 'DOCKER-USER', to: 'CROSSDOCK-FORWARD', position: 1 },
      { table: 'nat', from: 'POSTROUTING', to: 'CROSSDOCK-POSTROUTING', position: 1 },
    ],
    builtinChains: ['filter/DOCKER-USER', 'filter/FORWARD', 'nat/POSTROUTING'],
    forwardPolicy: 'DROP',
  },
  docker: {
    available: true,
    version: '28.0.4',
    networks: [
      {
        id: '0'.repeat(64),
        name: 'crossdock',
        subnet: '10.100.1.0/24',
        gateway: '10.100.1.1',
        labels: { 'io.crossdock.managed': 'true', 'io.crossdock.subnet': '1' },
        containers: 0,
      },
    ],
    bip: '172.17.0.1/16',
  },
  interfaces: [
    { name: 'lo', mtu: 65536, addresses: ['127.0.0.1/8'] },
    { name: 'eth0', mtu: 1500, addresses: ['198.51.100.11/24'] },
  ],
  sysctl: { 'net.ipv4.ip_forward': '1' },
};

describe('digest arithmetic', () => {
  const observed = SYNCED;

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
    'state with snapshot': { type: 'state', digest, state: SYNCED },
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
    [
      'an extra field deep in the state',
      { ...valid.hello, state: { ...state, docker: { ...state.docker, swarm: true } } },
      '"hello": /state/docker/swarm Unexpected property',
    ],
    ['an upper-case digest', { type: 'state', digest: 'ABCDEF012345' }, '"state": /digest'],
    ['a short digest', { type: 'state', digest: '0'.repeat(11) }, '"state": /digest'],
    ['a long digest', { type: 'state', digest: '0'.repeat(13) }, '"state": /digest'],
    ['a malformed digest', { type: 'result', jobId: 1, generation: 0, accepted: true, results: [], digest: 'xyz' }, '"result": /digest'],
    ['a job id of 0', { ...valid.result, jobId: 0 }, '"result": /jobId'],
    [
      'a result with an unknown field',
      { ...valid.result, results: [{ ...valid.result.results[0], extra: true }] },
      '"result": /results/0/extra Unexpected property',
    ],
  ])('rejects %s, naming what is wrong', (_name, message, error) => {
    const parsed = parseExecutorMessage(message);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.error).toContain(error);
  });

  it('takes a result without a digest when it says why the host could not be observed', () => {
    const { digest: _digest, ...withoutDigest } = valid.result;
    expect(parseExecutorMessage({ ...withoutDigest, observeError: 'netlink socket closed' })).toMatchObject({ ok: true });
  });

  it('names the protocol version of a hello in another one, whatever else the hello holds', () => {
    for (const hello of [
      { ...valid.hello, protocol: 2 },
      { type: 'hello', protocol: 2, capabilities: ['vxlan'] },
    ]) {
      expect(parseExecutorMessage(hello)).toStrictEqual({
        ok: false,
        error: 'executor message in protocol version 2; this side speaks version 1',
        protocol: 2,
      });
    }
    // only the greeting carries the version: anything else is judged by its shape
    expect(parseExecutorMessage({ type: 'state', digest, protocol: 2 })).toMatchObject({ ok: false, error: expect.stringContaining('/protocol Unexpected') });
    expect(parseExecutorMessage({ ...valid.hello, protocol: 'two' })).toMatchObject({ ok: false, error: expect.stringContaining('/protocol') });
  });

  it('rejects text that is not JSON', () => {
    expect(parseExecutorMessage('{"type": "state",')).toStrictEqual({ ok: false, error: 'executor message is not JSON' });
    expect(parseExecutorMessage(Buffer.from('hello'))).toStrictEqual({ ok: false, error: 'executor message is not JSON' });
  });
});

describe('parseControllerMessage', () => {
  const valid = {
    welcome: {
      type: 'welcome',
      protocol: 1,
      host: { name: 'node-a', address: '198.51.100.11', interface: 'eth0' },
      reconcileIntervalMs: 30_000,
      heartbeatIntervalMs: 10_000,
    },
    // commands are left for the executor to validate, all or nothing
    job: {
      type: 'job',
      jobId: 1,
      generation: 2,
      commands: [{ kind: 'route.replace', dst: '10.100.2.0/24', via: '198.51.100.12', dev: 'eth0' }, { kind: 'nonsense' }],
    },
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

  it('names the protocol version of a welcome in another one', () => {
    expect(parseControllerMessage({ ...valid.welcome, protocol: 3, features: {} })).toStrictEqual({
      ok: false,
      error: 'controller message in protocol version 3; this side speaks version 1',
      protocol: 3,
    });
    // a hello is not the controller's greeting, whatever its version
    expect(parseControllerMessage({ type: 'hello', protocol: 3 })).toMatchObject({ ok: false, error: expect.stringContaining('unknown type "hello"') });
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
