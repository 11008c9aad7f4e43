// A real controller process and a real executor process inside a throwaway network namespace
// (real ip, iptables and sysctl there), joined by a sealed veth: the namespace reaches the
// controller's address and nothing else. For the suites that watch a real host converge. With
// `engineDir`, a dockerd of the suite's own runs in the namespace too (test/support/private-engine.ts).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, vi } from 'vitest';
import { REPO_ROOT, api, startController, type ControllerProcess } from './controller-process.ts';
import { SETTLED } from './fleet.ts';
import { cleanPrivateEngine, startPrivateEngine, type PrivateEngine } from './private-engine.ts';

export interface NetnsHostOptions {
  /** the namespace's name (cdtest-*: CI deletes leftovers) */
  ns: string;
  /** the veth end left in the root namespace */
  rootSide: string;
  controllerAddress: string;
  hostAddress: string;
  adminToken: string;
  reconcileIntervalMs: number;
  /** the executor's Docker endpoint; default a socket where no engine listens (ignored with engineDir) */
  dockerHost?: string;
  /**
   * Start a private dockerd in the namespace, every file under this directory (cdtest-*: one
   * per suite), and point the executor at it. A leftover of a killed run is removed first.
   */
  engineDir?: string;
}

export interface NetnsHost {
  controller: ControllerProcess;
  call: ReturnType<typeof api>;
  executor: ChildProcess;
  /** the executor's Docker endpoint (the private engine's with engineDir) */
  dockerHost: string;
  /** everything the executor printed so far */
  log(): string;
  /** runs argv inside the namespace */
  inNs(...argv: string[]): string;
  stop(): Promise<void>;
}

export function sh(argv: string[], input?: string): string {
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function removeQuietly(argv: string[]): void {
  try {
    sh(argv);
  } catch {
    /* not there */
  }
}

/** Registers host-a for the namespace, starts its executor and waits until it is online. */
export async function startNetnsHost(options: NetnsHostOptions): Promise<NetnsHost> {
  const { ns, rootSide, engineDir } = options;
  const cleanup = async () => {
    // the engine's processes first: they hold the namespace (found by path and cgroup, alive or left by a killed run)
    if (engineDir !== undefined) await cleanPrivateEngine(engineDir, ns);
    removeQuietly(['ip', 'netns', 'delete', ns]);
    removeQuietly(['ip', 'link', 'delete', rootSide]);
  };
  await cleanup();
  const inNs = (...argv: string[]) => sh(['ip', 'netns', 'exec', ns, ...argv]);
  sh(['ip', 'netns', 'add', ns]);
  sh(['ip', 'link', 'add', rootSide, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  sh(['ip', 'addr', 'add', `${options.controllerAddress}/24`, 'dev', rootSide]);
  sh(['ip', 'link', 'set', rootSide, 'up']);
  inNs('ip', 'addr', 'add', `${options.hostAddress}/24`, 'dev', 'eth0');
  inNs('ip', 'link', 'set', 'eth0', 'up');
  inNs('ip', 'link', 'set', 'lo', 'up');

  const dir = mkdtempSync(path.join(tmpdir(), 'crossdock-netns-'));
  let engine: PrivateEngine | undefined;
  let controller: ControllerProcess | undefined;
  let executor: ChildProcess | undefined;
  const stop = async () => {
    try {
      if (executor && executor.exitCode === null && executor.signalCode === null) {
        const exited = new Promise((resolve) => executor!.once('exit', resolve));
        executor.kill('SIGTERM');
        await exited;
      }
      await controller?.stop();
      await engine?.stop();
    } finally {
      await cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    if (engineDir !== undefined) engine = await startPrivateEngine(engineDir, ns);
    const dockerHost = engine?.dockerHost ?? options.dockerHost ?? `unix://${dir}/no-docker.sock`;
    controller = await startController({ dbFile: path.join(dir, 'c.db'), adminToken: options.adminToken, listen: `${options.controllerAddress}:0` });
    const call = api(controller.url, options.adminToken);
    const a = await call('POST', '/v1/hosts', { name: 'host-a', address: options.hostAddress, interface: 'eth0' });
    expect(a.status).toBe(201);
    const started = spawn(
      'nsenter',
      [
        `--net=/run/netns/${ns}`,
        process.execPath,
        '--import',
        'tsx',
        'executor/src/main.ts',
        '--controller',
        controller.url,
        '--token',
        a.body.token,
        '--docker-host',
        dockerHost,
        '--reconcile-interval-ms',
        String(options.reconcileIntervalMs),
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    executor = started;
    let log = '';
    started.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    started.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    await vi.waitFor(async () => expect((await call('GET', '/v1/hosts/host-a')).body.status).toBe('online'), { ...SETTLED, timeout: 30_000 });
    return { controller, call, executor: started, dockerHost, log: () => log, inNs, stop };
  } catch (error) {
    // a suite whose beforeAll failed has no host to stop: leave nothing behind here
    await stop().catch(() => {});
    throw error;
  }
}
