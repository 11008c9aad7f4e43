// The fakes must behave like the real drivers where other suites rely on it.
import { describe, expect, it } from 'vitest';
import { renderRule, type FirewallChain, type FirewallJump } from '@crossdock/shared';
import { FakeDockerDriver, FakeIptablesDriver, FakeSysctlDriver } from './fake.ts';

const chain: FirewallChain = {
  kind: 'firewall.chain',
  table: 'filter',
  chain: 'CROSSDOCK-FORWARD',
  rules: [{ source: '10.1.0.0/24', destination: '10.100.0.0/16', comment: 'crossdock peer', target: 'ACCEPT' }],
};
const jump: FirewallJump = { kind: 'firewall.jump', table: 'filter', from: 'DOCKER-USER', to: 'CROSSDOCK-FORWARD', position: 1 };

describe('FakeIptablesDriver', () => {
  it('observes what the real driver would: rendered rules, one jump, foreign rules kept', async () => {
    const fw = new FakeIptablesDriver({ forwardPolicy: 'DROP' });
    await fw.applyFirewall([chain], [jump]);
    await fw.applyFirewall([], [jump]);
    const observed = await fw.observe();
    expect(observed.chains).toEqual([{ table: 'filter', name: 'CROSSDOCK-FORWARD', rules: [renderRule(chain.chain, chain.rules[0]!)] }]);
    expect(observed.jumps).toEqual([{ table: 'filter', from: 'DOCKER-USER', to: 'CROSSDOCK-FORWARD', position: 1 }]);
    expect(observed.forwardPolicy).toBe('DROP');
    expect(fw.rulesOf('filter', 'DOCKER-USER')).toEqual(['-A DOCKER-USER -j CROSSDOCK-FORWARD', '-A DOCKER-USER -j RETURN']);
    await fw.removeAll();
    expect(await fw.observe()).toMatchObject({ chains: [], jumps: [] });
    expect(fw.rulesOf('filter', 'FORWARD')).toEqual(['-A FORWARD -j DOCKER-USER']);
  });

  it('has no DOCKER-USER on a host without Docker', async () => {
    const fw = new FakeIptablesDriver({ dockerUser: false });
    expect((await fw.applyFirewall([chain], [jump])).jumps[0]?.ok).toBe(false);
    expect((await fw.applyFirewall([], [{ ...jump, from: 'FORWARD' }])).jumps[0]?.ok).toBe(true);
    expect((await fw.observe()).builtinChains.map((c) => c.name)).toEqual(['FORWARD', 'POSTROUTING']);
  });
});

describe('FakeDockerDriver', () => {
  it('creates, observes and removes managed networks; refuses the others', async () => {
    const docker = new FakeDockerDriver();
    await docker.createNetwork({ kind: 'docker.network.create', name: 'crossdock', subnet: '10.1.0.0/24', gateway: '10.1.0.1', options: {}, labels: {} });
    expect((await docker.observe()).networks).toMatchObject([{ name: 'crossdock', labels: { 'io.crossdock.managed': 'true' }, containers: 0 }]);
    docker.networks.set('theirs', { id: 'x', name: 'theirs', subnet: null, gateway: null, labels: {}, options: {}, containers: 0 });
    expect((await docker.removeNetwork({ kind: 'docker.network.remove', name: 'theirs' })).ok).toBe(false);
    docker.networks.get('crossdock')!.containers = 2;
    expect((await docker.removeNetwork({ kind: 'docker.network.remove', name: 'crossdock' })).ok).toBe(false);
    docker.networks.get('crossdock')!.containers = 0;
    expect((await docker.removeNetwork({ kind: 'docker.network.remove', name: 'crossdock' })).ok).toBe(true);
  });

  it('sets bip only when allowed to restart the engine', async () => {
    const docker = new FakeDockerDriver();
    const bip = { kind: 'docker.daemon.bip', bip: '10.1.0.1/24' } as const;
    expect((await docker.setBip(bip, { daemonJsonPath: '/etc/docker/daemon.json', restartCommand: null })).stderr).toContain('--allow-engine-restart');
    expect((await docker.setBip(bip, { daemonJsonPath: '/etc/docker/daemon.json', restartCommand: ['true'] })).ok).toBe(true);
    expect(docker).toMatchObject({ bip: '10.1.0.1/24', restarts: 1, daemonJson: { bip: '10.1.0.1/24' } });
  });
});

describe('FakeSysctlDriver', () => {
  it('keeps values', async () => {
    const sysctl = new FakeSysctlDriver();
    await sysctl.write({ kind: 'sysctl.set', key: 'net.ipv4.ip_forward', value: '1' });
    expect(await sysctl.observe()).toEqual({ 'net.ipv4.ip_forward': '1' });
  });
});
