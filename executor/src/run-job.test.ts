// runJob with the in-memory drivers: all or nothing on validation, phases, one batch per kind,
// results in the order the commands came in.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { renderCommand, type Command, type CommandResult } from '@crossdock/shared';
import { FakeDockerDriver, FakeIpDriver, FakeIptablesDriver, FakeSysctlDriver } from './drivers/fake.ts';
import type { Drivers } from './observe.ts';
import { runJob, type JobOptions } from './run-job.ts';

const NO_RESTART: JobOptions = { daemonJsonPath: '/etc/docker/daemon.json', engineRestartCommand: null };
const RESTART: JobOptions = { daemonJsonPath: '/etc/docker/daemon.json', engineRestartCommand: ['systemctl', 'restart', 'docker'] };

let ip: FakeIpDriver;
let iptables: FakeIptablesDriver;
let docker: FakeDockerDriver;
let sysctl: FakeSysctlDriver;
let drivers: Drivers;

beforeEach(() => {
  ip = new FakeIpDriver();
  iptables = new FakeIptablesDriver();
  docker = new FakeDockerDriver();
  sysctl = new FakeSysctlDriver();
  drivers = { ip, iptables, docker, sysctl };
});

/** Everything the fakes hold, to show that a refused job touched nothing. */
function snapshot() {
  return structuredClone({
    routes: ip.routes,
    batches: ip.batches,
    tables: iptables.tables,
    networks: docker.networks,
    bip: docker.bip,
    daemonJson: docker.daemonJson,
    restarts: docker.restarts,
    sysctl: sysctl.values,
  });
}

const replace = (dst: string, via = '198.51.100.12'): Command => ({ kind: 'route.replace', dst, via, dev: 'eth0' });
const forwardChain: Command = {
  kind: 'firewall.chain',
  table: 'filter',
  chain: 'CROSSDOCK-FORWARD',
  rules: [{ source: '10.100.0.0/16', destination: '10.100.1.0/24', target: 'ACCEPT', comment: 'crossdock' }],
};
const natChain: Command = {
  kind: 'firewall.chain',
  table: 'nat',
  chain: 'CROSSDOCK-POSTROUTING',
  rules: [{ source: '10.100.1.0/24', destination: '10.100.0.0/16', target: 'ACCEPT', comment: 'crossdock' }],
};
const filterJump: Command = { kind: 'firewall.jump', table: 'filter', from: 'DOCKER-USER', to: 'CROSSDOCK-FORWARD', position: 1 };
const natJump: Command = { kind: 'firewall.jump', table: 'nat', from: 'POSTROUTING', to: 'CROSSDOCK-POSTROUTING', position: 1 };
const network: Command = {
  kind: 'docker.network.create',
  name: 'crossdock',
  subnet: '10.100.1.0/24',
  gateway: '10.100.1.1',
  options: {},
  labels: { 'io.crossdock.managed': 'true', 'io.crossdock.subnet': '1' },
};
const forwarding: Command = { kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1' };

describe('runJob: a job with an invalid command runs nothing', () => {
  const valid = [forwarding, network, forwardChain, filterJump, replace('10.100.2.0/24')];
  it.each([
    ['a bad CIDR', { kind: 'route.replace', dst: '10.100.3.0/33', via: '198.51.100.13', dev: 'eth0' }, /^command 5: route\.replace dst: .*10\.100\.3\.0\/33/],
    ['host bits set', { kind: 'route.delete', dst: '10.100.3.5/24' }, /^command 5: route\.delete dst: /],
    ['an unknown kind', { kind: 'shell.exec', argv: ['rm', '-rf', '/'] }, /^command 5: kind: "shell\.exec" is not a command; use one of route\.replace, /],
    // biome-ignore lint/suspicious/noThenProperty: a command is data, never awaited; an unknown `then` is refused like any other field
    ['an extra field', { ...forwarding, then: 'reboot' }, /^command 5: sysctl\.set then: unknown field; remove it/],
    ['a sysctl key off the allow-list', { kind: 'sysctl.set', key: 'kernel.panic', value: '1' }, /^command 5: sysctl\.set key: /],
    ['a foreign chain', { ...forwardChain, chain: 'DOCKER-USER' }, /^command 5: firewall\.chain chain: /],
    ['not an object', 'ip route flush all', /^command 5: a command must be an object/],
  ])('%s', async (_name, bad, error) => {
    const before = snapshot();
    const outcome = await runJob([...valid, bad], drivers, NO_RESTART);
    expect(outcome.accepted).toBe(false);
    expect(outcome.results).toStrictEqual([]);
    const message = outcome.accepted ? '' : outcome.error;
    expect(message).toMatch(error);
    expect(message).toMatch(/; nothing in this job was run$/);
    expect(message).not.toMatch(/command 5: command 5/);
    expect(snapshot()).toStrictEqual(before);
  });

  it('names the first invalid command when the first one is bad', async () => {
    const outcome = await runJob([{ kind: 'route.replace' }, ...valid], drivers, NO_RESTART);
    expect(outcome).toMatchObject({ accepted: false, error: expect.stringMatching(/^command 0: route\.replace dst: missing/) });
    expect(ip.batches).toStrictEqual([]);
  });
});

describe('runJob: a valid job', () => {
  // Deliberately out of phase order, with routes spread through it.
  const job: Command[] = [
    replace('10.100.2.0/24'),
    natJump,
    natChain,
    { kind: 'route.delete', dst: '10.100.9.0/24' },
    filterJump,
    network,
    replace('10.100.3.0/24', '198.51.100.13'),
    forwardChain,
    forwarding,
  ];

  it('runs every route in one batch and every chain in one call, results in the original order with their text', async () => {
    ip.routes.set('10.100.9.0/24', { dst: '10.100.9.0/24', via: '198.51.100.19', dev: 'eth0' });
    const applyFirewall = vi.spyOn(iptables, 'applyFirewall');
    const outcome = await runJob(job, drivers, NO_RESTART);
    expect(outcome.accepted).toBe(true);
    expect(ip.batches).toStrictEqual([[job[0], job[3], job[6]]]);
    expect(applyFirewall).toHaveBeenCalledTimes(1);
    expect(applyFirewall).toHaveBeenCalledWith([natChain, forwardChain], [natJump, filterJump]);
    expect(outcome.results.map((r) => [r.index, r.ok, r.text])).toStrictEqual(job.map((c, i) => [i, true, renderCommand(c)]));
    expect(outcome.results[0]!.text).toBe('ip route replace 10.100.2.0/24 via 198.51.100.12 dev eth0 proto 252');
    // the job did what it says
    expect([...ip.routes.keys()].sort()).toStrictEqual(['10.100.2.0/24', '10.100.3.0/24']);
    expect(iptables.rulesOf('filter', 'DOCKER-USER')[0]).toBe('-A DOCKER-USER -j CROSSDOCK-FORWARD');
    expect(iptables.rulesOf('nat', 'POSTROUTING')).toStrictEqual(['-A POSTROUTING -j CROSSDOCK-POSTROUTING']);
    expect(docker.networks.get('crossdock')).toMatchObject({ subnet: '10.100.1.0/24', gateway: '10.100.1.1' });
    expect(sysctl.values['net.ipv4.ip_forward']).toBe('1');
  });

  it('marks only the failing route line as failed, with its own error', async () => {
    ip.failures.set('10.100.3.0/24', 'Error: Nexthop has invalid gateway.');
    const outcome = await runJob(job, drivers, NO_RESTART);
    expect(outcome.accepted).toBe(true);
    expect(outcome.results.filter((r) => !r.ok).map((r) => r.index)).toStrictEqual([6]);
    expect(outcome.results[6]!.stderr).toBe('route replace 10.100.3.0/24 via 198.51.100.13 dev eth0 proto 252: Error: Nexthop has invalid gateway.\n');
    expect(outcome.results[0]).toMatchObject({ ok: true, stderr: '' });
    expect(outcome.results[3]).toMatchObject({ ok: true, stderr: '' });
    expect(ip.routes.has('10.100.2.0/24')).toBe(true);
    expect(ip.routes.has('10.100.3.0/24')).toBe(false);
  });

  it('marks a route refused for a foreign destination as failed, and only that one', async () => {
    ip.foreignRoutes.set('10.100.2.0/24', { dst: '10.100.2.0/24', via: '192.0.2.1', dev: 'eth0' });
    const outcome = await runJob([replace('10.100.2.0/24'), replace('10.100.3.0/24')], drivers, NO_RESTART);
    expect(outcome.results.map((r) => r.ok)).toStrictEqual([false, true]);
    expect(outcome.results[0]!.stderr).toContain('crossdock did not make');
  });

  it('marks every route failed, with the whole stderr, when the batch fails without naming a line', async () => {
    const failure: CommandResult = { ok: false, exitCode: 1, stdout: '', stderr: 'ip: RTNETLINK answers: Operation not permitted\n', durationMs: 3 };
    vi.spyOn(ip, 'applyRoutes').mockResolvedValue(failure);
    const outcome = await runJob([replace('10.100.2.0/24'), forwarding, { kind: 'route.delete', dst: '10.100.9.0/24' }], drivers, NO_RESTART);
    expect(outcome.results.map((r) => [r.index, r.ok, r.stderr])).toStrictEqual([
      [0, false, failure.stderr],
      [1, true, ''],
      [2, false, failure.stderr],
    ]);
  });

  it('puts the batch summary on the first route only; every route shares the exit code and duration', async () => {
    vi.spyOn(ip, 'applyRoutes').mockResolvedValue({ ok: true, exitCode: 0, stdout: '2 route commands applied\n', stderr: '', durationMs: 12 });
    const outcome = await runJob([forwarding, replace('10.100.2.0/24'), replace('10.100.3.0/24')], drivers, NO_RESTART);
    expect(outcome.results.slice(1).map((r) => [r.stdout, r.exitCode, r.durationMs])).toStrictEqual([
      ['2 route commands applied\n', 0, 12],
      ['', 0, 12],
    ]);
  });

  it('accepts an empty job and touches nothing', async () => {
    const before = snapshot();
    expect(await runJob([], drivers, NO_RESTART)).toStrictEqual({ accepted: true, results: [] });
    expect(snapshot()).toStrictEqual(before);
  });
});

describe('runJob: phases', () => {
  it('removes a network before creating one with the same name, whatever the order in the job', async () => {
    await docker.createNetwork({ ...network, subnet: '10.99.0.0/24', gateway: '10.99.0.1' } as Command & { kind: 'docker.network.create' });
    const outcome = await runJob([network, { kind: 'docker.network.remove', name: 'crossdock' }], drivers, NO_RESTART);
    expect(outcome.results.map((r) => [r.index, r.ok])).toStrictEqual([
      [0, true],
      [1, true],
    ]);
    expect(docker.networks.get('crossdock')).toMatchObject({ subnet: '10.100.1.0/24', gateway: '10.100.1.1' });
  });

  it('runs sysctl, bip, network remove, network create, chains with their jumps, routes in that order', async () => {
    const calls: string[] = [];
    const trace = <T extends object>(target: T, name: string, methods: Array<keyof T & string>) => {
      for (const method of methods) {
        const original = (target[method] as (...args: unknown[]) => Promise<unknown>).bind(target);
        (target as Record<string, unknown>)[method] = async (...args: unknown[]) => {
          calls.push(`${name}.${method}`);
          return original(...args);
        };
      }
    };
    trace(sysctl, 'sysctl', ['write']);
    trace(docker, 'docker', ['setBip', 'removeNetwork', 'createNetwork']);
    trace(iptables, 'iptables', ['applyFirewall']);
    trace(ip, 'ip', ['applyRoutes']);
    const job: Command[] = [
      replace('10.100.2.0/24'),
      filterJump,
      forwardChain,
      network,
      { kind: 'docker.network.remove', name: 'old' },
      { kind: 'docker.daemon.bip', bip: '10.100.5.1/24' },
      forwarding,
    ];
    const outcome = await runJob(job, drivers, RESTART);
    expect(calls).toStrictEqual(['sysctl.write', 'docker.setBip', 'docker.removeNetwork', 'docker.createNetwork', 'iptables.applyFirewall', 'ip.applyRoutes']);
    // the jump needs its chain: it worked because the chain came first
    expect(outcome.results.every((r) => r.ok)).toBe(true);
  });

  it('keeps going after a failed command and reports each', async () => {
    const outcome = await runJob([{ ...filterJump, from: 'FORWARD', to: 'CROSSDOCK-MISSING' }, replace('10.100.2.0/24')], drivers, NO_RESTART);
    expect(outcome.results.map((r) => r.ok)).toStrictEqual([false, true]);
    expect(outcome.results[0]!.stderr).toContain('CROSSDOCK-MISSING does not exist');
  });
});

describe('runJob: bip', () => {
  const bip: Command = { kind: 'docker.daemon.bip', bip: '10.100.5.1/24' };

  it('fails without restart permission, saying how to allow it, and changes nothing', async () => {
    const outcome = await runJob([bip, forwarding], drivers, NO_RESTART);
    expect(outcome.accepted).toBe(true);
    expect(outcome.results[0]).toMatchObject({ ok: false, text: 'daemon.json: "bip": "10.100.5.1/24" + restart dockerd' });
    expect(outcome.results[0]!.stderr).toContain('--allow-engine-restart');
    expect(outcome.results[1]!.ok).toBe(true);
    expect(docker).toMatchObject({ restarts: 0, daemonJson: {}, bip: '172.17.0.1/16' });
  });

  it('rewrites daemon.json and restarts the engine once when allowed', async () => {
    const outcome = await runJob([bip], drivers, RESTART);
    expect(outcome.results[0]!.ok).toBe(true);
    expect(docker).toMatchObject({ restarts: 1, daemonJson: { bip: '10.100.5.1/24' }, bip: '10.100.5.1/24' });
  });

  it('refuses the network address as bip before running anything', async () => {
    const outcome = await runJob([forwarding, { kind: 'docker.daemon.bip', bip: '10.100.5.0/24' }], drivers, RESTART);
    expect(outcome).toMatchObject({
      accepted: false,
      error: expect.stringMatching(/^command 1: docker\.daemon\.bip bip: 10\.100\.5\.0 is the network address .*use a host address such as 10\.100\.5\.1\/24/),
    });
    expect(sysctl.values['net.ipv4.ip_forward']).toBe('0');
    expect(docker.restarts).toBe(0);
  });
});
