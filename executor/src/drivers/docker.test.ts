import { createServer } from 'node:http';
import { PassThrough } from 'node:stream';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Dockerode from 'dockerode';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CommandResult, DockerNetworkCreate } from '@crossdock/shared';
import { createDockerDriver, dockerFromHost, type DockerClient } from './docker.ts';
import type { Runner } from './run.ts';

type NetworkInfo = Dockerode.NetworkInspectInfo;

const network: DockerNetworkCreate = {
  kind: 'docker.network.create',
  name: 'crossdock',
  subnet: '10.1.0.0/24',
  gateway: '10.1.0.1',
  options: { 'com.docker.network.bridge.name': 'br-crossdock' },
  labels: { 'io.crossdock.subnet': 'sub1' },
};

/** An engine in memory: enough of the Docker API for the driver's decisions. */
class StubEngine implements DockerClient {
  up = true;
  bridge: { Subnet: string; Gateway?: string } | null = { Subnet: '172.17.0.0/16' };
  networks: NetworkInfo[] = [];
  removed: string[] = [];
  /** the open event streams: the engine writes one JSON line per event */
  streams: PassThrough[] = [];
  eventsUp = true;

  async getEvents(options: { filters: string }) {
    if (!this.eventsUp) throw new Error('connect ENOENT /var/run/docker.sock');
    expect(JSON.parse(options.filters)).toEqual({ type: ['network'] });
    const stream = new PassThrough();
    this.streams.push(stream);
    return stream;
  }

  emit(Action: string, name: string) {
    for (const s of this.streams)
      s.write(`${JSON.stringify({ Type: 'network', Action, Actor: { ID: `${name}-id`, Attributes: { name, type: 'bridge' } } })}\n`);
  }

  async ping() {
    if (!this.up) throw new Error('connect ENOENT /var/run/docker.sock');
    return 'OK';
  }
  async version() {
    return { Version: '20.10.24' };
  }
  async listNetworks(options?: { filters?: Record<string, string[]> }) {
    const name = options?.filters?.name?.[0];
    const label = options?.filters?.label?.[0]?.split('=');
    return this.networks.filter((n) => (name === undefined || n.Name.includes(name)) && (label === undefined || n.Labels?.[label[0] ?? ''] === label[1]));
  }
  getNetwork(id: string) {
    return {
      inspect: async () => {
        if (id === 'bridge') {
          if (!this.bridge) throw Object.assign(new Error('network bridge not found'), { statusCode: 404 });
          return info('bridge', { IPAM: { Driver: 'default', Config: [this.bridge] } });
        }
        const found = this.networks.find((n) => n.Id === id);
        if (!found) throw Object.assign(new Error(`network ${id} not found`), { statusCode: 404 });
        return found;
      },
      remove: async () => {
        this.removed.push(id);
        this.networks = this.networks.filter((n) => n.Id !== id);
      },
    };
  }
  async createNetwork(options: Dockerode.NetworkCreateOptions) {
    const created = info(options.Name, { IPAM: options.IPAM, Options: options.Options, Labels: options.Labels });
    this.networks.push(created);
    return { id: created.Id };
  }
}

function info(name: string, over: Partial<NetworkInfo> = {}): NetworkInfo {
  return {
    Name: name,
    Id: `${name}-id`.padEnd(64, '0'),
    Created: '',
    Scope: 'local',
    Driver: 'bridge',
    EnableIPv6: false,
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigOnly: false,
    Containers: {},
    Options: {},
    Labels: {},
    ...over,
  };
}

describe('DockerDriver against a stub engine', () => {
  let engine: StubEngine;
  beforeEach(() => {
    engine = new StubEngine();
  });

  it('reports an engine that does not answer as unavailable', async () => {
    engine.up = false;
    expect(await createDockerDriver({ docker: engine }).observe()).toEqual({ available: false, version: null, networks: [], bip: null });
  });

  it('reports the default bridge gateway as the first host when the engine omits it', async () => {
    expect((await createDockerDriver({ docker: engine }).observe()).bip).toBe('172.17.0.1/16');
    engine.bridge = { Subnet: '10.1.0.0/24', Gateway: '10.1.0.254' };
    expect((await createDockerDriver({ docker: engine }).observe()).bip).toBe('10.1.0.254/24');
    engine.bridge = null;
    expect((await createDockerDriver({ docker: engine }).observe()).bip).toBeNull();
  });

  it('creates a labelled network once; a second create finds it as wanted', async () => {
    const driver = createDockerDriver({ docker: engine });
    expect((await driver.createNetwork(network)).ok).toBe(true);
    expect(engine.networks[0]?.Labels).toEqual({ 'io.crossdock.subnet': 'sub1', 'io.crossdock.managed': 'true' });
    const again = await driver.createNetwork(network);
    expect(again).toMatchObject({ ok: true, exitCode: null });
    expect(again.stdout).toContain('already exists as wanted');
    expect(engine.networks).toHaveLength(1);
  });

  it('refuses to create over a network of the same name that differs', async () => {
    engine.networks.push(
      info('crossdock', { IPAM: { Driver: 'default', Config: [{ Subnet: '10.9.0.0/24', Gateway: '10.9.0.1' }] }, Labels: { 'io.crossdock.managed': 'true' } }),
    );
    const result = await createDockerDriver({ docker: engine }).createNetwork(network);
    expect(result.stderr).toBe(
      'network crossdock already exists but its subnet is 10.9.0.0/24 gateway 10.9.0.1, not 10.1.0.0/24 gateway 10.1.0.1; remove it first (docker network rm crossdock)\n',
    );
  });

  it('matches names exactly, though the API filter matches substrings', async () => {
    engine.networks.push(info('crossdock-old', { Labels: { 'io.crossdock.managed': 'true' } }));
    expect((await createDockerDriver({ docker: engine }).removeNetwork({ kind: 'docker.network.remove', name: 'crossdock' })).stdout).toBe(
      'network crossdock is already gone\n',
    );
    expect(engine.removed).toEqual([]);
  });

  it('refuses to remove a network without the managed label', async () => {
    engine.networks.push(info('crossdock'));
    const result = await createDockerDriver({ docker: engine }).removeNetwork({ kind: 'docker.network.remove', name: 'crossdock' });
    expect(result).toMatchObject({
      ok: false,
      stderr: 'network crossdock is not labelled io.crossdock.managed=true; crossdock removes only networks it created\n',
    });
    expect(engine.removed).toEqual([]);
  });

  it('refuses to remove a network that still has containers, naming them', async () => {
    const containers = {
      a: { Name: 'web', EndpointID: '', MacAddress: '', IPv4Address: '', IPv6Address: '' },
      b: { Name: 'db', EndpointID: '', MacAddress: '', IPv4Address: '', IPv6Address: '' },
    };
    engine.networks.push(info('crossdock', { Labels: { 'io.crossdock.managed': 'true' }, Containers: containers }));
    const result = await createDockerDriver({ docker: engine }).removeNetwork({ kind: 'docker.network.remove', name: 'crossdock' });
    expect(result.stderr).toBe('network crossdock still has containers: web, db; stop them or disconnect them from crossdock first\n');
  });

  it('reports API errors as failed results', async () => {
    engine.createNetwork = async () => {
      throw Object.assign(new Error('(HTTP code 409) conflict'), { statusCode: 409, json: { message: 'cannot create network, conflicts with network x' } });
    };
    const result = await createDockerDriver({ docker: engine }).createNetwork(network);
    expect(result).toMatchObject({ ok: false, stderr: 'docker: cannot create network, conflicts with network x (HTTP 409)\n' });
  });

  describe('setBip', () => {
    let dir = '';
    let path = '';
    const original = { 'log-level': 'warn', 'storage-driver': 'vfs', 'insecure-registries': ['10.0.0.1:5000'] };
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'cdtest-drv-bip-'));
      path = join(dir, 'daemon.json');
      writeFileSync(path, JSON.stringify(original));
      chmodSync(path, 0o600);
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    /** A restart command that brings the engine back with the new bip after a few polls. */
    function restarting(pollsUntilBack: number) {
      const argvs: (readonly string[])[] = [];
      const runner: Runner = async (argv) => {
        argvs.push(argv);
        engine.up = false;
        let polls = 0;
        const ping = engine.ping.bind(engine);
        engine.ping = async () => {
          polls += 1;
          if (polls > pollsUntilBack) {
            engine.up = true;
            engine.bridge = { Subnet: '10.1.0.0/24', Gateway: '10.1.0.1' };
          }
          return ping();
        };
        return { ok: true, exitCode: 0, stdout: '', stderr: '', durationMs: 1 } satisfies CommandResult;
      };
      return { runner, argvs };
    }

    it('without permission to restart, says how to give it and changes nothing', async () => {
      const result = await createDockerDriver({ docker: engine }).setBip(
        { kind: 'docker.daemon.bip', bip: '10.1.0.1/24' },
        { daemonJsonPath: path, restartCommand: null },
      );
      expect(result.ok).toBe(false);
      expect(result.stderr).toContain('start it with --allow-engine-restart');
      expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(original);
    });

    it('rewrites daemon.json keeping every other key and its mode, restarts, waits for the new bip', async () => {
      const { runner, argvs } = restarting(3);
      const driver = createDockerDriver({ docker: engine, runner, pollIntervalMs: 1 });
      const result = await driver.setBip(
        { kind: 'docker.daemon.bip', bip: '10.1.0.1/24' },
        { daemonJsonPath: path, restartCommand: ['systemctl', 'restart', 'docker'] },
      );
      expect(result, result.stderr).toMatchObject({ ok: true });
      expect(argvs).toEqual([['systemctl', 'restart', 'docker']]);
      expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ ...original, bip: '10.1.0.1/24' });
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(readdirSync(dir)).toEqual(['daemon.json']);
    });

    it('creates daemon.json where there is none', async () => {
      rmSync(path);
      const { runner } = restarting(0);
      const result = await createDockerDriver({ docker: engine, runner, pollIntervalMs: 1 }).setBip(
        { kind: 'docker.daemon.bip', bip: '10.1.0.1/24' },
        { daemonJsonPath: join(dir, 'etc', 'docker', 'daemon.json'), restartCommand: ['true'] },
      );
      expect(result.ok).toBe(true);
      expect(JSON.parse(readFileSync(join(dir, 'etc', 'docker', 'daemon.json'), 'utf8'))).toEqual({ bip: '10.1.0.1/24' });
    });

    it('does nothing when the engine already runs with that bip', async () => {
      writeFileSync(path, JSON.stringify({ ...original, bip: '10.1.0.1/24' }));
      engine.bridge = { Subnet: '10.1.0.0/24', Gateway: '10.1.0.1' };
      const { runner, argvs } = restarting(0);
      const result = await createDockerDriver({ docker: engine, runner }).setBip(
        { kind: 'docker.daemon.bip', bip: '10.1.0.1/24' },
        { daemonJsonPath: path, restartCommand: null },
      );
      expect(result).toMatchObject({ ok: true, stdout: 'bip is already 10.1.0.1/24\n' });
      expect(argvs).toEqual([]);
    });

    it('will not overwrite a daemon.json it cannot parse', async () => {
      writeFileSync(path, '{ "log-level": "warn", }');
      const result = await createDockerDriver({ docker: engine }).setBip(
        { kind: 'docker.daemon.bip', bip: '10.1.0.1/24' },
        { daemonJsonPath: path, restartCommand: ['true'] },
      );
      expect(result.stderr).toMatch(/is not valid JSON .*; fix it by hand, crossdock will not overwrite it/);
      expect(readFileSync(path, 'utf8')).toBe('{ "log-level": "warn", }');
    });

    it('fails with what it last saw when the engine does not come back in time', async () => {
      const { runner } = restarting(Number.POSITIVE_INFINITY);
      const result = await createDockerDriver({ docker: engine, runner, pollIntervalMs: 5 }).setBip(
        { kind: 'docker.daemon.bip', bip: '10.1.0.1/24' },
        { daemonJsonPath: path, restartCommand: ['true'], timeoutMs: 50 },
      );
      expect(result.stderr).toBe(
        "the engine did not come back with bip 10.1.0.1/24 within 0 s (last seen: connect ENOENT /var/run/docker.sock); see dockerd's log\n",
      );
    });

    it('reports a failing restart command', async () => {
      const runner: Runner = async () => ({ ok: false, exitCode: 5, stdout: '', stderr: 'Unit docker.service not found.\n', durationMs: 1 });
      const result = await createDockerDriver({ docker: engine, runner }).setBip(
        { kind: 'docker.daemon.bip', bip: '10.1.0.1/24' },
        { daemonJsonPath: path, restartCommand: ['systemctl', 'restart', 'docker'] },
      );
      expect(result).toMatchObject({ ok: false, exitCode: 5 });
      expect(result.stderr).toContain('restarting the engine (systemctl restart docker) failed');
    });
  });

  it('watches the engine: network changes are announced, attachments are not, and a lost stream is followed again', async () => {
    const seen: string[] = [];
    const watch = createDockerDriver({ docker: engine, eventsRetryMs: 10 }).watch((what) => seen.push(what));
    await vi.waitFor(() => expect(engine.streams).toHaveLength(1));
    engine.emit('destroy', 'crossdock');
    engine.emit('connect', 'crossdock');
    engine.emit('create', 'other');
    await vi.waitFor(() => expect(seen).toEqual(['docker network destroy: crossdock', 'docker network create: other']));
    // The engine restarts: its stream ends, the next open fails for a while, then works.
    engine.eventsUp = false;
    engine.streams[0]!.end();
    await new Promise((resolve) => setTimeout(resolve, 50));
    engine.eventsUp = true;
    await vi.waitFor(() => expect(seen.at(-1)).toBe('the Docker engine answers again; looking again'));
    expect(engine.streams).toHaveLength(2);
    watch.stop();
    engine.emit('destroy', 'late');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(seen).not.toContain('docker network destroy: late');
  });

  it('understands unix and tcp endpoints', () => {
    const modem = (host: string) => dockerFromHost(host).modem as unknown as { socketPath?: string; host?: string; port?: string };
    expect(modem('unix:///run/x.sock').socketPath).toBe('/run/x.sock');
    expect(modem('tcp://10.0.0.1:2375')).toMatchObject({ host: '10.0.0.1', port: '2375' });
    expect(() => dockerFromHost('ssh://x')).toThrow('use unix:///var/run/docker.sock or tcp://host:2375');
  });

  it('keeps a silent event stream open past the request timeout, which still ends a silent API call', async () => {
    // An engine that answers /events and then says nothing, and never answers /version.
    const dir = mkdtempSync(join(tmpdir(), 'crossdock-events-'));
    const socket = join(dir, 'docker.sock');
    const server = createServer((request, response) => {
      if (request.url?.startsWith('/events')) {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.flushHeaders();
      }
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      const docker = dockerFromHost(`unix://${socket}`, 200);
      const stream = await docker.getEvents({ filters: '{}' });
      let ended = false;
      for (const event of ['end', 'close', 'error']) stream.on(event, () => (ended = true));
      await expect(docker.version()).rejects.toThrow();
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(ended).toBe(false);
      (stream as unknown as { destroy(): void }).destroy();
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
