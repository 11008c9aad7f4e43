// One contract for every DockerDriver: the fake and the real driver must give the same results,
// messages included. The real driver runs against an engine that is not there (no engine
// needed), and against a live engine: the one CROSSDOCK_TEST_DOCKER_HOST names (with
// CROSSDOCK_TEST_DOCKER_IMAGE naming an image that can run `sleep`), else a one-host lab's. The suite creates and removes
// only networks and containers named cdtest-*.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DockerNetworkCreate, DockerNetworkRemove } from '@crossdock/shared';
import { createDockerDriver, dockerFromHost, type DockerDriver } from '../../executor/src/drivers/docker.ts';
import { FakeDockerDriver } from '../../executor/src/drivers/fake.ts';
import { down as labDown, up as labUp } from '../lab/lab.ts';
import { IMAGE as LAB_IMAGE } from '../lab/state.ts';
import { missing } from '../support/requirements.ts';

interface DockerHost {
  driver: DockerDriver;
  /** a network crossdock did not make */
  addForeignNetwork(name: string, subnet: string): Promise<void>;
  /** a running container attached to `network`: its name */
  attachContainer?(network: string): Promise<string>;
  close(): Promise<void>;
}

interface Subject {
  name: string;
  skip: string | null;
  open(): Promise<DockerHost>;
}

const PREFIX = 'cdtest-';

const fake: Subject = {
  name: 'fake',
  skip: null,
  async open() {
    const driver = new FakeDockerDriver();
    return {
      driver,
      addForeignNetwork: async (name, subnet) =>
        void driver.networks.set(name, { id: 'f'.repeat(64), name, subnet, gateway: null, labels: {}, options: {}, containers: [] }),
      attachContainer: async (network) => {
        driver.networks.get(network)!.containers.push(`${PREFIX}sleeper`);
        return `${PREFIX}sleeper`;
      },
      close: async () => {},
    };
  },
};

const ENGINE = process.env.CROSSDOCK_TEST_DOCKER_HOST;
const IMAGE = process.env.CROSSDOCK_TEST_DOCKER_IMAGE;
// With no engine given, a one-host lab (test/lab) provides one where the machine allows it
// (root, namespaces, dockerd, busybox: CI installs them, and there a missing one fails).
const labMissing = ENGINE ? null : missing('root', 'netns', 'dockerd', 'busybox');
let lab: Promise<{ dockerHost: string }> | undefined;
async function engine(): Promise<{ dockerHost: string; image: string | undefined }> {
  if (ENGINE) return { dockerHost: ENGINE, image: IMAGE };
  lab ??= labUp({ hosts: 1, crossdock: false }).then((state) => ({ dockerHost: state.hosts[0]!.dockerHost }));
  return { ...(await lab), image: LAB_IMAGE };
}
afterAll(async () => {
  if (lab !== undefined) await labDown();
});

const live: Subject = {
  name: `real, against ${ENGINE ? `the engine at ${ENGINE}` : "a lab host's engine"}`,
  skip: labMissing,
  async open() {
    const { dockerHost, image } = await engine();
    const docker = dockerFromHost(dockerHost);
    const cleanUp = async () => {
      for (const c of await docker.listContainers({ all: true, filters: { name: [PREFIX] } })) await docker.getContainer(c.Id).remove({ force: true });
      for (const n of await docker.listNetworks({ filters: { name: [PREFIX] } })) await docker.getNetwork(n.Id).remove();
    };
    await cleanUp();
    return {
      driver: createDockerDriver({ docker }),
      addForeignNetwork: async (name, subnet) => void (await docker.createNetwork({ Name: name, Driver: 'bridge', IPAM: { Config: [{ Subnet: subnet }] } })),
      ...(image
        ? {
            attachContainer: async (network: string) => {
              const container = await docker.createContainer({
                name: `${PREFIX}sleeper`,
                Image: image,
                Cmd: ['sleep', '3600'],
                HostConfig: { NetworkMode: network },
              });
              await container.start();
              return `${PREFIX}sleeper`;
            },
          }
        : {}),
      close: cleanUp,
    };
  },
};

const network: DockerNetworkCreate = {
  kind: 'docker.network.create',
  name: `${PREFIX}net`,
  subnet: '10.251.0.0/24',
  gateway: '10.251.0.1',
  options: { 'com.docker.network.bridge.name': 'br-cdtest' },
  labels: { 'io.crossdock.subnet': '1' },
};
const remove = (name: string): DockerNetworkRemove => ({ kind: 'docker.network.remove', name });
const text = (expected: string | RegExp) => (typeof expected === 'string' ? expected : expect.stringMatching(expected));
/** A result of work that ran no process: an API call or a refusal. */
const result = (ok: boolean, stdout: string | RegExp, stderr: string | RegExp = '') => ({
  ok,
  exitCode: null,
  stdout: text(stdout),
  stderr: text(stderr),
  durationMs: expect.any(Number),
});
const ours = async (driver: DockerDriver) => (await driver.observe()).networks.filter((n) => n.name.startsWith(PREFIX));

for (const subject of [fake, live]) {
  describe.skipIf(subject.skip)(`DockerDriver contract: ${subject.name}`, () => {
    let host: DockerHost;
    let driver: DockerDriver;
    beforeEach(async () => {
      host = await subject.open();
      driver = host.driver;
    });
    afterEach(() => host.close());

    it('observes the engine: its version, the default bridge, only the networks crossdock made', async () => {
      await host.addForeignNetwork(`${PREFIX}theirs`, '10.252.0.0/24');
      const observed = await driver.observe();
      expect(observed).toMatchObject({ available: true, version: expect.stringMatching(/^\d+\.\d+/), bip: expect.stringMatching(/^\d+\.\d+\.\d+\.\d+\/\d+$/) });
      expect(await ours(driver)).toEqual([]);
    });

    it('creates a labelled network once; the same create again finds it as wanted', async () => {
      expect(await driver.createNetwork(network)).toEqual(result(true, /^created network cdtest-net \([0-9a-f]{12}\)\n$/));
      expect(await driver.createNetwork(network)).toEqual(result(true, /^network cdtest-net already exists as wanted \([0-9a-f]{12}\)\n$/));
      const [observed, ...others] = await ours(driver);
      expect(others).toEqual([]);
      expect(observed).toMatchObject({
        name: 'cdtest-net',
        subnet: '10.251.0.0/24',
        gateway: '10.251.0.1',
        labels: { 'io.crossdock.managed': 'true', 'io.crossdock.subnet': '1' },
        options: { 'com.docker.network.bridge.name': 'br-cdtest' },
        containers: 0,
      });
    });

    it('refuses to create over a network of the same name that differs, or that it did not make', async () => {
      await driver.createNetwork(network);
      expect(await driver.createNetwork({ ...network, subnet: '10.251.1.0/24', gateway: '10.251.1.1' })).toEqual(
        result(
          false,
          '',
          'network cdtest-net already exists but its subnet is 10.251.0.0/24 gateway 10.251.0.1, not 10.251.1.0/24 gateway 10.251.1.1; remove it first (docker network rm cdtest-net)\n',
        ),
      );
      await host.addForeignNetwork(`${PREFIX}theirs`, '10.252.0.0/24');
      expect(await driver.createNetwork({ ...network, name: `${PREFIX}theirs` })).toEqual(
        result(
          false,
          '',
          'network cdtest-theirs already exists but it is not labelled io.crossdock.managed=true; remove it first (docker network rm cdtest-theirs)\n',
        ),
      );
    });

    it('removes its network; removing it again, or one whose name only contains it, finds it already gone', async () => {
      // its own bridge device: an engine refuses two networks on one (the fake does not model that)
      await driver.createNetwork({
        ...network,
        name: `${PREFIX}net-old`,
        subnet: '10.251.9.0/24',
        gateway: '10.251.9.1',
        options: { 'com.docker.network.bridge.name': 'br-cdtest-old' },
      });
      expect(await driver.removeNetwork(remove(`${PREFIX}net`))).toEqual(result(true, 'network cdtest-net is already gone\n'));
      expect(await driver.createNetwork(network)).toMatchObject({ ok: true });
      expect(await driver.removeNetwork(remove(`${PREFIX}net`))).toEqual(result(true, 'removed network cdtest-net\n'));
      expect((await ours(driver)).map((n) => n.name)).toEqual([`${PREFIX}net-old`]);
    });

    it('refuses to remove a network it did not make', async () => {
      await host.addForeignNetwork(`${PREFIX}theirs`, '10.252.0.0/24');
      expect(await driver.removeNetwork(remove(`${PREFIX}theirs`))).toEqual(
        result(false, '', 'network cdtest-theirs is not labelled io.crossdock.managed=true; crossdock removes only networks it created\n'),
      );
      expect(await driver.createNetwork({ ...network, name: `${PREFIX}theirs` })).toMatchObject({ ok: false });
    });

    it('refuses to remove a network with a container attached, naming it', async (context) => {
      if (!host.attachContainer) return context.skip('no image to run a container (CROSSDOCK_TEST_DOCKER_IMAGE)');
      await driver.createNetwork(network);
      const name = await host.attachContainer(network.name);
      expect((await ours(driver))[0]?.containers).toBe(1);
      expect(await driver.removeNetwork(remove(network.name))).toEqual(
        result(false, '', `network cdtest-net still has containers: ${name}; stop them or disconnect them from cdtest-net first\n`),
      );
    });

    it('refuses invalid commands and touches nothing', async () => {
      expect(await driver.createNetwork({ ...network, name: 'cdtest net' })).toMatchObject({ ok: false, exitCode: null, stdout: '' });
      expect(await driver.removeNetwork(remove('cdtest net'))).toMatchObject({ ok: false, exitCode: null, stdout: '' });
      expect(await ours(driver)).toEqual([]);
    });

    it('will not set bip without permission to restart the engine, and says how to give it', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cdtest-drv-bip-'));
      try {
        const daemonJson = join(dir, 'daemon.json');
        writeFileSync(daemonJson, '{"log-level":"warn"}');
        const bip = { kind: 'docker.daemon.bip', bip: '10.251.0.1/24' } as const;
        expect(await driver.setBip(bip, { daemonJsonPath: daemonJson, restartCommand: null })).toEqual(
          result(
            false,
            '',
            'setting bip 10.251.0.1/24 needs an engine restart, which this executor may not do; start it with --allow-engine-restart, ' +
              `or set "bip": "10.251.0.1/24" in ${daemonJson} and restart dockerd by hand\n`,
          ),
        );
        expect(readFileSync(daemonJson, 'utf8')).toBe('{"log-level":"warn"}');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

/** No engine behind the socket: what a host sees while dockerd is down. */
const down: Array<{ name: string; driver: () => DockerDriver }> = [
  {
    name: 'fake',
    driver: () => Object.assign(new FakeDockerDriver(), { available: false }),
  },
  {
    name: 'real, against a socket nobody listens on',
    driver: () => createDockerDriver({ dockerHost: `unix://${join(tmpdir(), 'cdtest-drv-no-engine.sock')}` }),
  },
];

for (const subject of down) {
  describe(`DockerDriver contract, engine down: ${subject.name}`, () => {
    it('observes the engine as unavailable, and fails commands saying why', async () => {
      const driver = subject.driver();
      expect(await driver.observe()).toEqual({ available: false, version: null, networks: [], bip: null });
      for (const outcome of [await driver.createNetwork(network), await driver.removeNetwork(remove(network.name))]) {
        expect(outcome).toEqual(result(false, '', /^docker: connect ENOENT \S+\n$/));
      }
    });
  });
}
