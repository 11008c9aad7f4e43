// The Docker driver against a real engine: a lab host's (test/lab). Its unit tests against a
// stub engine are executor/src/drivers/docker.test.ts.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DockerNetworkCreate } from '@crossdock/shared';
import { createDockerDriver, dockerFromHost } from '../../executor/src/drivers/docker.ts';
import { dockerdPidOf, down, engineRestartArgv, hostExec, hostPaths, removeContainer, runContainer, up, type LabHost, type LabState } from '../lab/lab.ts';
import { missing } from '../support/requirements.ts';

const network: DockerNetworkCreate = {
  kind: 'docker.network.create',
  name: 'crossdock',
  subnet: '10.1.0.0/24',
  gateway: '10.1.0.1',
  options: { 'com.docker.network.bridge.name': 'br-crossdock' },
  labels: { 'io.crossdock.subnet': 'sub1' },
};

// The real engine is a lab host's (test/lab): its own containerd in a private mount namespace,
// its own sockets, data root, daemon.json (with the libtrust key inside the lab) and cgroup
// parent, in the host's network namespace; `down` removes all of it. The lab cleans up by name
// (every cdlab-* namespace, link and cgroup and every process in them, whatever the lab
// directory), so two labs cannot coexist and a dedicated directory would not isolate this suite:
// it uses the default lab directory and replaces whatever lab is there, as test/lab's own suite
// does. Within `vitest run` that is safe because test files run one at a time
// (fileParallelism: false in vitest.config.ts); do not run it while a lab from
// `npm run lab -- up` is in use.
describe.skipIf(missing('root', 'netns', 'dockerd', 'busybox'))('DockerDriver against a lab engine (needs root, netns, dockerd, busybox)', () => {
  let lab: LabState;
  let host: LabHost;
  let daemonJson = '';
  let docker: ReturnType<typeof dockerFromHost>;
  let driver: ReturnType<typeof createDockerDriver>;

  beforeAll(async () => {
    lab = await up({ hosts: 1, crossdock: false });
    host = lab.hosts[0]!;
    daemonJson = hostPaths(lab.dir, host.name).daemonJson;
    docker = dockerFromHost(host.dockerHost);
    driver = createDockerDriver({ docker });
  });

  // idempotent, and complete even when up failed half-way
  afterAll(() => down());

  it('observes the engine: version, default bridge, no managed networks', async () => {
    const observed = await driver.observe();
    expect(observed).toMatchObject({ available: true, bip: '172.17.0.1/16', networks: [] });
    expect(observed.version).toMatch(/^\d+\.\d+/);
  });

  it('creates a labelled network, observes it, and removes it', async () => {
    const created = await driver.createNetwork(network);
    expect(created, created.stderr).toMatchObject({ ok: true });
    expect((await driver.createNetwork(network)).stdout).toContain('already exists as wanted');
    const [observed] = (await driver.observe()).networks;
    expect(observed).toMatchObject({
      name: 'crossdock',
      subnet: '10.1.0.0/24',
      gateway: '10.1.0.1',
      labels: { 'io.crossdock.managed': 'true', 'io.crossdock.subnet': 'sub1' },
      options: { 'com.docker.network.bridge.name': 'br-crossdock' },
      containers: 0,
    });
    // the bridge is in the lab host's network namespace, not this machine's
    expect((await hostExec(host, ['ip', 'link', 'show', 'br-crossdock'], { check: false })).code).toBe(0);
    expect(existsSync('/sys/class/net/br-crossdock')).toBe(false);
    expect((await driver.createNetwork({ ...network, subnet: '10.2.0.0/24', gateway: '10.2.0.1' })).stderr).toContain('its subnet is 10.1.0.0/24');
    expect(await driver.removeNetwork({ kind: 'docker.network.remove', name: 'crossdock' })).toMatchObject({ ok: true, stdout: 'removed network crossdock\n' });
    expect((await driver.observe()).networks).toEqual([]);
    expect((await driver.removeNetwork({ kind: 'docker.network.remove', name: 'crossdock' })).stdout).toBe('network crossdock is already gone\n');
  });

  it('neither lists nor removes a network without the managed label', async () => {
    await docker.createNetwork({ Name: 'theirs', Driver: 'bridge', IPAM: { Config: [{ Subnet: '10.3.0.0/24' }] } });
    expect((await driver.observe()).networks).toEqual([]);
    const result = await driver.removeNetwork({ kind: 'docker.network.remove', name: 'theirs' });
    expect(result.stderr).toBe('network theirs is not labelled io.crossdock.managed=true; crossdock removes only networks it created\n');
    expect((await docker.listNetworks()).some((n) => n.Name === 'theirs')).toBe(true);
  });

  it('refuses to remove a network with a running container, naming it', async () => {
    expect((await driver.createNetwork(network)).ok).toBe(true);
    await runContainer(host, { name: 'cdtest-sleeper', network: 'crossdock' }); // the lab's busybox image
    expect((await driver.observe()).networks[0]?.containers).toBe(1);
    const refused = await driver.removeNetwork({ kind: 'docker.network.remove', name: 'crossdock' });
    expect(refused.stderr).toBe('network crossdock still has containers: cdtest-sleeper; stop them or disconnect them from crossdock first\n');
    await removeContainer(host, 'cdtest-sleeper');
    expect((await driver.removeNetwork({ kind: 'docker.network.remove', name: 'crossdock' })).ok).toBe(true);
  });

  it('sets bip: refuses without permission, then rewrites daemon.json, restarts the engine and waits for it', async () => {
    // the lab's own key (deprecated-key-path) and one more: setBip must keep both
    const labConfig = JSON.parse(readFileSync(daemonJson, 'utf8')) as Record<string, unknown>;
    expect(labConfig['deprecated-key-path']).toBe(hostPaths(lab.dir, host.name).keyJson);
    const initialConfig = { ...labConfig, 'log-level': 'info' };
    writeFileSync(daemonJson, JSON.stringify(initialConfig));

    const bip = { kind: 'docker.daemon.bip', bip: '10.1.0.1/24' } as const;
    const refused = await driver.setBip(bip, { daemonJsonPath: daemonJson, restartCommand: null });
    expect(refused.stderr).toContain('--allow-engine-restart');
    expect(JSON.parse(readFileSync(daemonJson, 'utf8'))).toEqual(initialConfig);

    const before = dockerdPidOf(lab.dir, host.name);
    expect(before).not.toBeNull();
    // what the lab's executors run: `lab restart-engine h1`, dockerd stopped and started with the same flags
    const result = await driver.setBip(bip, { daemonJsonPath: daemonJson, restartCommand: engineRestartArgv(lab.dir, host.name) });
    expect(result, result.stderr).toMatchObject({ ok: true });
    const after = dockerdPidOf(lab.dir, host.name);
    expect(after).not.toBeNull();
    expect(after).not.toBe(before);
    expect(JSON.parse(readFileSync(daemonJson, 'utf8'))).toEqual({ ...initialConfig, bip: '10.1.0.1/24' });
    expect((await driver.observe()).bip).toBe('10.1.0.1/24');

    const again = await driver.setBip(bip, { daemonJsonPath: daemonJson, restartCommand: ['false'] });
    expect(again.stdout).toBe('bip is already 10.1.0.1/24\n');
  }, 120_000);
});
