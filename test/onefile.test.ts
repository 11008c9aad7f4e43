// The one-file executor as an operator gets it: built by scripts/build.mjs, copied alone into an
// empty directory, run with nothing but node. It installs and uninstalls itself under --root
// (exactly the documented files, the token 0600 and nowhere else), and, in a network namespace
// with a dockerd of its own, it connects to a real controller process and leaves the host exactly
// as the checkout's executor does; its --purge removes all of it, keeping a network that still
// has containers.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { docker } from './lab/engine.ts';
import { buildImageTar, importImage } from './lab/image.ts';
import { IMAGE } from './lab/state.ts';
import { REPO_ROOT, api, startController, type ControllerProcess } from './support/controller-process.ts';
import { SETTLED } from './support/fleet.ts';
import { cleanPrivateEngine, startPrivateEngine, type PrivateEngine } from './support/private-engine.ts';
import { missing } from './support/requirements.ts';
import { EXECUTOR_NODE_OPTIONS } from '../executor/src/install.ts';

const EXECUTOR_VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'executor/package.json'), 'utf8')) as { version: string }).version;
const TOKEN = 'cdh_onefile-test-token-0123456789abcdef';

let work: string;
/** the built file, alone in a directory of its own */
let oneFile: string;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'crossdock-onefile-'));
  const alone = path.join(work, 'alone');
  mkdirSync(alone);
  const built = path.join(work, 'build', 'crossdock-executor.mjs');
  execFileSync(process.execPath, ['scripts/build.mjs', '--onefile', built], { cwd: REPO_ROOT, stdio: 'pipe' });
  oneFile = path.join(alone, 'crossdock-executor.mjs');
  copyFileSync(built, oneFile);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs the one file with node from its own directory; nothing else on the command line. */
function runOneFile(args: string[], options: { input?: string; cwd?: string } = {}) {
  const result = spawnSync(process.execPath, [oneFile, ...args], {
    cwd: options.cwd ?? path.dirname(oneFile),
    encoding: 'utf8',
    input: options.input,
    env: { PATH: process.env.PATH },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Every file, link and directory under root, with its type and mode. */
function tree(root: string): Record<string, string> {
  const found: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      const stat = lstatSync(file);
      const key = `/${path.relative(root, file)}`;
      if (stat.isSymbolicLink()) found[key] = 'link';
      else if (stat.isDirectory()) {
        found[key] = 'dir';
        walk(file);
      } else found[key] = `file ${(stat.mode & 0o7777).toString(8)}`;
    }
  };
  if (existsSync(root)) walk(root);
  return found;
}

describe('the one file, copied alone', () => {
  it('has no node_modules anywhere above it, and prints its version with node alone', () => {
    for (let dir = path.dirname(oneFile); dir !== '/'; dir = path.dirname(dir)) expect(existsSync(path.join(dir, 'node_modules')), dir).toBe(false);
    expect(existsSync('/node_modules')).toBe(false);
    expect(readdirSync(path.dirname(oneFile))).toEqual(['crossdock-executor.mjs']);
    const result = runOneFile(['--version']);
    expect(result).toEqual({ status: 0, stdout: `${EXECUTOR_VERSION}\n`, stderr: '' });
    // from another directory too, and as a command of its own (the shebang)
    expect(runOneFile(['--version'], { cwd: '/' }).stdout).toBe(`${EXECUTOR_VERSION}\n`);
    expect(execFileSync(oneFile, ['--version'], { encoding: 'utf8', cwd: '/' })).toBe(`${EXECUTOR_VERSION}\n`);
  });

  it('refuses a bad invocation with a message and status 2', () => {
    const result = runOneFile(['--controller', 'http://127.0.0.1:7800']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('crossdock-executor: no host token given');
  });
});

describe('install --root and uninstall --root, with the one file', () => {
  const DOCUMENTED = {
    '/etc': 'dir',
    '/etc/crossdock': 'dir',
    '/etc/crossdock/token': 'file 600',
    '/etc/systemd': 'dir',
    '/etc/systemd/system': 'dir',
    '/etc/systemd/system/crossdock-executor.service': 'file 644',
    '/usr': 'dir',
    '/usr/local': 'dir',
    '/usr/local/bin': 'dir',
    '/usr/local/bin/crossdock-executor': 'link',
    '/usr/local/lib': 'dir',
    '/usr/local/lib/crossdock': 'dir',
    '/usr/local/lib/crossdock/crossdock-executor.mjs': 'file 755',
  };

  it('writes exactly the documented files, the token only in its 0600 file, and the installed command runs', () => {
    const root = path.join(work, 'root-1');
    const install = runOneFile(['install', '--root', root, '--controller', 'http://192.168.32.5:7800', '--token', TOKEN]);
    expect(install.stderr).toBe('');
    expect(install.status).toBe(0);
    expect(tree(root)).toEqual(DOCUMENTED);
    expect(readFileSync(path.join(root, 'etc/crossdock/token'), 'utf8')).toBe(`${TOKEN}\n`);
    const unit = readFileSync(path.join(root, 'etc/systemd/system/crossdock-executor.service'), 'utf8');
    expect(unit).not.toContain(TOKEN);
    expect(unit).toContain('Environment="CROSSDOCK_TOKEN_FILE=/etc/crossdock/token"');
    expect(unit).toContain(`ExecStart=${process.execPath} /usr/local/lib/crossdock/crossdock-executor.mjs`);
    expect(install.stdout).not.toContain(TOKEN);
    expect(readFileSync(path.join(root, 'usr/local/lib/crossdock/crossdock-executor.mjs')).equals(readFileSync(oneFile))).toBe(true);
    // the command, through its link, from anywhere
    expect(execFileSync(path.join(root, 'usr/local/bin/crossdock-executor'), ['--version'], { encoding: 'utf8', cwd: '/' })).toBe(`${EXECUTOR_VERSION}\n`);
  });

  it('a second install changes nothing; uninstall removes exactly what install wrote', () => {
    const root = path.join(work, 'root-2');
    mkdirSync(path.join(root, 'usr/local/bin'), { recursive: true });
    writeFileSync(path.join(root, 'usr/local/bin/other-tool'), 'not ours\n');
    const argv = ['install', '--root', root, '--controller', 'http://192.168.32.5:7800', '--token-file', '-'];
    expect(runOneFile(argv, { input: `${TOKEN}\n` }).status).toBe(0);
    const files = ['etc/crossdock/token', 'etc/systemd/system/crossdock-executor.service', 'usr/local/lib/crossdock/crossdock-executor.mjs'];
    const before = files.map((f) => statSync(path.join(root, f)));
    const again = runOneFile(argv, { input: `${TOKEN}\n` });
    expect(again.status).toBe(0);
    expect(again.stdout.split('\n').filter((l) => l.endsWith(' is up to date'))).toHaveLength(4);
    const after = files.map((f) => statSync(path.join(root, f)));
    expect(after.map((s) => [s.ino, s.mtimeMs, s.mode])).toEqual(before.map((s) => [s.ino, s.mtimeMs, s.mode]));

    const uninstall = runOneFile(['uninstall', '--root', root]);
    expect(uninstall.status).toBe(0);
    expect(uninstall.stdout).toContain(`removed ${root}/etc/crossdock/token`);
    // what is left: the standard directories install created, and the file that was there before
    expect(tree(root)).toEqual({
      '/etc': 'dir',
      '/etc/systemd': 'dir',
      '/etc/systemd/system': 'dir',
      '/usr': 'dir',
      '/usr/local': 'dir',
      '/usr/local/bin': 'dir',
      '/usr/local/bin/other-tool': 'file 644',
      '/usr/local/lib': 'dir',
    });
    expect(runOneFile(['uninstall', '--root', root]).stdout).toContain('nothing to remove');
  });

  it('refuses bad input with status 2 and writes nothing', () => {
    const root = path.join(work, 'root-3');
    const result = runOneFile(['install', '--root', root, '--controller', 'http://192.168.32.5:7800', '--token', TOKEN, '--transport', 'udp']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('transport "udp" is unknown; use auto, websocket or polling');
    expect(existsSync(root)).toBe(false);
  });

  it('the checkout refuses to install itself and names the one file', () => {
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'executor/src/main.ts', 'install', '--root', path.join(work, 'root-4'), '--controller', 'http://a:1', '--token', TOKEN],
      {
        cwd: REPO_ROOT,
        encoding: 'utf8',
      },
    );
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('npm run build');
    expect(existsSync(path.join(work, 'root-4'))).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------

const NS = 'cdtest-onefile-h';
const ROOT_SIDE = 'cdtonefile0';
const ENGINE_DIR = '/run/cdtest-onefile';
// A /29 of its own: the controller on the root side, host-a in the namespace, host-b never runs.
const CONTROLLER_ADDRESS = '203.0.113.249';
const HOST_A = '203.0.113.250';
const HOST_B = '203.0.113.251';
const PREFIX = 29;
const ADMIN = 'cda_onefile-netns-token-0000000';
const RECONCILE_INTERVAL_MS = 500;

function sh(argv: string[]): string {
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
const inNs = (...argv: string[]) => sh(['nsenter', `--net=/run/netns/${NS}`, ...argv]);

function removeNetwork(): void {
  if (
    sh(['ip', 'netns', 'list'])
      .split('\n')
      .some((line) => line.split(' ')[0] === NS)
  )
    sh(['ip', 'netns', 'delete', NS]);
  // Deleting the namespace destroys the veth pair too, asynchronously: the root side may be
  // gone by the time it is deleted here, which is what was wanted.
  const deleted = spawnSync('ip', ['link', 'delete', ROOT_SIDE], { encoding: 'utf8' });
  if (deleted.status !== 0 && !/Cannot find device/.test(deleted.stderr)) throw new Error(`ip link delete ${ROOT_SIDE}: ${deleted.stderr}`);
}

/** What crossdock made on the host, as text that does not change between identical runs. */
async function hostState(dockerHost: string) {
  const routes = inNs('ip', '-N', 'route', 'show', 'proto', '252').trim().split('\n').filter(Boolean).sort();
  const firewall = inNs('iptables-save')
    .split('\n')
    .filter((line) => line.includes('CROSSDOCK') || line.startsWith('*'))
    .map((line) => line.replace(/ \[\d+:\d+\]$/, ''));
  const inspected = await docker(dockerHost, ['network', 'inspect', 'crossdock'], { check: false });
  const network =
    inspected.code === 0
      ? (() => {
          const [n] = JSON.parse(inspected.stdout) as { Driver: string; IPAM: unknown; Options: unknown; Labels: unknown; Internal: boolean }[];
          return { driver: n!.Driver, ipam: n!.IPAM, options: n!.Options, labels: n!.Labels, internal: n!.Internal };
        })()
      : null;
  return { routes, firewall, network, ipForward: inNs('cat', '/proc/sys/net/ipv4/ip_forward').trim() };
}

describe.skipIf(missing('root', 'netns', 'iptables', 'dockerd', 'busybox'))(
  'the one file in a network namespace with its own dockerd, against a real controller (needs root, netns, iptables, dockerd, busybox)',
  () => {
    let engine: PrivateEngine;
    let controller: ControllerProcess;
    let call: ReturnType<typeof api>;
    let token: string;
    let executor: ChildProcess | undefined;
    let executorLog = '';
    const installRoot = () => path.join(work, 'host-root');

    function startExecutor(argv: string[], env: NodeJS.ProcessEnv, cwd = '/'): void {
      executorLog = '';
      executor = spawn('nsenter', [`--net=/run/netns/${NS}`, ...argv], {
        cwd,
        env: { PATH: process.env.PATH, CROSSDOCK_IPAM_SOCKET: 'off', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      executor.stdout!.on('data', (d: Buffer) => (executorLog += d.toString()));
      executor.stderr!.on('data', (d: Buffer) => (executorLog += d.toString()));
    }

    async function stopExecutor(): Promise<void> {
      if (executor && executor.exitCode === null && executor.signalCode === null) {
        const exited = new Promise((resolve) => executor!.once('exit', resolve));
        executor.kill('SIGTERM');
        await exited;
      }
      executor = undefined;
    }

    /** Waits until host-a is online and has applied everything it should. */
    async function converged(dockerHost: string): Promise<void> {
      await vi.waitFor(
        async () => {
          const host = (await call('GET', '/v1/hosts/host-a')).body;
          expect(host.status).toBe('online');
          expect(host.generation.applied).toBe(host.generation.desired);
          const state = await hostState(dockerHost);
          expect(state.network).not.toBeNull();
          expect(state.routes.length).toBe(1);
        },
        { ...SETTLED, timeout: 60_000, interval: 250 },
      );
      // one more reconcile interval: a report after the last job finds nothing left to do
      await new Promise((resolve) => setTimeout(resolve, RECONCILE_INTERVAL_MS * 3));
    }

    beforeAll(async () => {
      await cleanPrivateEngine(ENGINE_DIR, NS);
      removeNetwork();
      // A sealed link: the namespace reaches the controller's address and nothing else.
      sh(['ip', 'netns', 'add', NS]);
      sh(['ip', 'link', 'add', ROOT_SIDE, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS]);
      sh(['ip', 'addr', 'add', `${CONTROLLER_ADDRESS}/${PREFIX}`, 'dev', ROOT_SIDE]);
      sh(['ip', 'link', 'set', ROOT_SIDE, 'up']);
      inNs('ip', 'addr', 'add', `${HOST_A}/${PREFIX}`, 'dev', 'eth0');
      inNs('ip', 'link', 'set', 'eth0', 'up');
      inNs('ip', 'link', 'set', 'lo', 'up');
      engine = await startPrivateEngine(ENGINE_DIR, NS);
      await importImage(engine.dockerHost, await buildImageTar(work));

      controller = await startController({ dbFile: path.join(work, 'c.db'), adminToken: ADMIN, listen: `${CONTROLLER_ADDRESS}:0` });
      call = api(controller.url, ADMIN);
      const a = await call('POST', '/v1/hosts', { name: 'host-a', address: HOST_A, interface: 'eth0' });
      expect(a.status).toBe(201);
      token = a.body.token;
      expect(a.body.join).toBe(
        `node crossdock-executor.mjs install --controller ${controller.url} --token ${token} --ca-fingerprint ${controller.caFingerprint}`,
      );
      expect((await call('POST', '/v1/hosts', { name: 'host-b', address: HOST_B })).status).toBe(201);
    });

    afterAll(async () => {
      await stopExecutor();
      await controller?.stop();
      await engine?.stop();
      await cleanPrivateEngine(ENGINE_DIR, NS);
      removeNetwork();
    });

    let built: Awaited<ReturnType<typeof hostState>>;

    it('installed from the join line with --root and started by the command it prints, it applies routes, chains and the network', async () => {
      const join = (await call('POST', '/v1/hosts/host-a/token')).body.join as string;
      const words = join.split(' ');
      token = words[words.indexOf('--token') + 1]!;
      // the join line, as printed, plus --root (no systemd here)
      const argv = join.split(' ').slice(2);
      const install = runOneFile([
        ...argv,
        '--root',
        installRoot(),
        '--docker-host',
        engine.dockerHost,
        '--reconcile-interval-ms',
        String(RECONCILE_INTERVAL_MS),
      ]);
      expect(install.status, install.stderr).toBe(0);
      expect(install.stdout).toContain('systemd was left alone (--root)');
      // The service's environment, as the unit gives it, with the paths under the install root.
      const unit = readFileSync(path.join(installRoot(), 'etc/systemd/system/crossdock-executor.service'), 'utf8');
      const env = Object.fromEntries([...unit.matchAll(/^Environment="([A-Z_]+)=(.*)"$/gm)].map((m) => [m[1]!, m[2]!]));
      expect(env).toEqual({
        CROSSDOCK_CONTROLLER: controller.url,
        CROSSDOCK_CA_FINGERPRINT: controller.caFingerprint,
        DOCKER_HOST: engine.dockerHost,
        CROSSDOCK_RECONCILE_INTERVAL_MS: String(RECONCILE_INTERVAL_MS),
        CROSSDOCK_TOKEN_FILE: '/etc/crossdock/token',
        NODE_OPTIONS: EXECUTOR_NODE_OPTIONS,
      });
      env.CROSSDOCK_TOKEN_FILE = path.join(installRoot(), 'etc/crossdock/token');
      startExecutor([path.join(installRoot(), 'usr/local/bin/crossdock-executor')], env);
      // the token is in no process's command line
      expect(readFileSync(`/proc/${executor!.pid}/cmdline`, 'utf8')).not.toContain(token);

      await converged(engine.dockerHost);
      built = await hostState(engine.dockerHost);
      const bSubnet = (await call('GET', '/v1/hosts/host-b')).body.subnets[0].cidr as string;
      const aSubnet = (await call('GET', '/v1/hosts/host-a')).body.subnets[0].cidr as string;
      expect(built.routes).toEqual([`${bSubnet} via ${HOST_B} dev eth0`]);
      expect(built.firewall).toContain(':CROSSDOCK-FORWARD -');
      expect(built.firewall).toContain('-A DOCKER-USER -j CROSSDOCK-FORWARD');
      expect(built.firewall).toContain('-A POSTROUTING -j CROSSDOCK-POSTROUTING');
      expect(built.network).toMatchObject({
        driver: 'bridge',
        labels: { 'io.crossdock.managed': 'true' },
        ipam: { Config: [{ Subnet: aSubnet, Gateway: aSubnet.replace(/0\/24$/, '1') }] },
      });
      expect(built.ipForward).toBe('1');
      expect(executorLog).not.toContain('"level":50');
    });

    it('GET /v1/hosts shows the version the executor said in its hello', async () => {
      const hosts = (await call('GET', '/v1/hosts')).body.items as { name: string; executor: unknown }[];
      expect(hosts.map((h) => [h.name, h.executor])).toEqual([
        ['host-a', { version: EXECUTOR_VERSION, protocol: 1 }],
        ['host-b', null],
      ]);
    });

    it('uninstall --purge removes routes, chains and networks, keeping one that still has a container and saying so', async () => {
      await stopExecutor();
      await docker(engine.dockerHost, ['run', '-d', '--name', 'cdtest-onefile-sleeper', '--network', 'crossdock', IMAGE, 'sleep', '3600']);
      const installed = path.join(installRoot(), 'usr/local/bin/crossdock-executor');
      const purge = (extra: string[] = []) =>
        spawnSync(
          'nsenter',
          [`--net=/run/netns/${NS}`, installed, 'uninstall', '--root', installRoot(), '--purge', '--docker-host', engine.dockerHost, ...extra],
          {
            encoding: 'utf8',
          },
        );
      const dry = purge(['--dry-run']);
      expect(dry.status, dry.stderr).toBe(0);
      expect(dry.stdout).toContain('would keep Docker network crossdock: 1 container(s) attached');
      expect(await hostState(engine.dockerHost)).toEqual(built);

      const first = purge();
      expect(first.status).toBe(1);
      expect(first.stdout).toMatch(/network crossdock was kept: .*still has containers: cdtest-onefile-sleeper/);
      const kept = await hostState(engine.dockerHost);
      expect(kept.routes).toEqual([]);
      expect(kept.firewall.filter((line) => !line.startsWith('*'))).toEqual([]);
      expect(kept.network).toEqual(built.network);
      expect(tree(installRoot())['/etc/crossdock/token']).toBeUndefined();

      await docker(engine.dockerHost, ['rm', '-f', 'cdtest-onefile-sleeper']);
      // the installed command is gone with the rest: purge again with the copy the operator has
      const again = spawnSync(
        'nsenter',
        [`--net=/run/netns/${NS}`, process.execPath, oneFile, 'uninstall', '--root', installRoot(), '--purge', '--docker-host', engine.dockerHost],
        { encoding: 'utf8' },
      );
      expect(again.status, again.stdout + again.stderr).toBe(0);
      expect(again.stdout).toContain("removed 0 route(s), crossdock's firewall chains and 1 Docker network(s)");
      expect((await hostState(engine.dockerHost)).network).toBeNull();
    });

    it("the checkout's executor, on the same clean host, makes exactly the same routes, chains and network", { timeout: 90_000 }, async () => {
      writeFileSync(path.join(work, 'checkout-token'), `${token}\n`, { mode: 0o600 });
      startExecutor(
        [process.execPath, '--import', 'tsx', 'executor/src/main.ts'],
        {
          CROSSDOCK_CONTROLLER: controller.url,
          CROSSDOCK_CA_FINGERPRINT: controller.caFingerprint!,
          CROSSDOCK_TOKEN_FILE: path.join(work, 'checkout-token'),
          DOCKER_HOST: engine.dockerHost,
          CROSSDOCK_RECONCILE_INTERVAL_MS: String(RECONCILE_INTERVAL_MS),
        },
        REPO_ROOT,
      );
      await converged(engine.dockerHost).catch((error: Error) => {
        throw new Error(`${error.message}\nthe executor said:\n${executorLog}`);
      });
      expect(await hostState(engine.dockerHost)).toEqual(built);
    });
  },
);
