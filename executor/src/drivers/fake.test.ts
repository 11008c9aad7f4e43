// The fakes must behave like the real drivers where other suites rely on it.
import { describe, expect, it } from 'vitest';
import { FakeDockerDriver } from './fake.ts';

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
