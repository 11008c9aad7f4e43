// The crossdock step of `up`, kept apart from the infrastructure: the controller in the root
// namespace on the LAN address, every host registered, one executor per host in its namespace.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ControllerTrust, pemFingerprint, trustedRequest } from '@crossdock/shared/trust';
import { seedTestCa } from '../support/test-ca.ts';
import { stopCrossdockProcesses, type Log } from './cleanup.ts';
import { pluginDirOf } from './engine.ts';
import { EXECUTOR_NODE_OPTIONS } from '../../executor/src/install.ts';
import { isAlive, terminate } from './processes.ts';
import { netnsPath, spawnDetached, waitFor, WaitAborted } from './run.ts';
import {
  CONTROLLER_ADDRESS,
  CONTROLLER_PORT,
  controllerPaths,
  HOST_INTERFACE,
  hostPaths,
  LAB_ENV_MARKER,
  writeState,
  type LabController,
  type LabState,
  type LabSubnet,
} from './state.ts';

export const CONTROLLER_READY_TIMEOUT_MS = 60_000;
export const EXECUTOR_RECONCILE_INTERVAL_MS = 2_000;
/** The executors' report interval: EXECUTOR_RECONCILE_INTERVAL_MS unless CROSSDOCK_LAB_RECONCILE_INTERVAL_MS says otherwise (the drift benchmark runs the product default). */
function reconcileIntervalMs(): number {
  const configured = Number(process.env.CROSSDOCK_LAB_RECONCILE_INTERVAL_MS);
  return Number.isInteger(configured) && configured > 0 ? configured : EXECUTOR_RECONCILE_INTERVAL_MS;
}
export const LAB_DEFAULT_POOL = '10.100.0.0/16';
const HTTP_TIMEOUT_MS = 5_000;
const EXECUTOR_STOP_GRACE_MS = 5_000;
const CONTROLLER_STOP_GRACE_MS = 10_000;
const READY_POLL_INTERVAL_MS = 250;

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** An absolute loader URL, so the commands below work from any working directory. */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** TypeScript through tsx; a built bundle (.mjs, .js) as an operator runs it, with node alone. */
function tsxArgv(script: string, args: string[]): string[] {
  const file = path.resolve(REPO_ROOT, script);
  return script.endsWith('.ts') ? [process.execPath, '--import', TSX_LOADER, file, ...args] : [process.execPath, file, ...args];
}

export interface CrossdockOptions {
  log?: Log;
  /** Entry points, relative to the repository root (or absolute). */
  controllerEntry?: string;
  executorEntry?: string;
}

const CONTROLLER_ENTRY = 'controller/src/server.ts';
const EXECUTOR_ENTRY = 'executor/src/main.ts';

/** Checked before `up` builds anything, so a missing entry point fails in a second, not after the hosts. */
export function assertCrossdockEntries(options: CrossdockOptions = {}): void {
  for (const entry of [options.controllerEntry ?? CONTROLLER_ENTRY, options.executorEntry ?? EXECUTOR_ENTRY]) {
    const file = path.resolve(REPO_ROOT, entry);
    if (!existsSync(file)) throw new Error(`${file} does not exist; use --no-crossdock for the hosts and engines alone`);
  }
}

/** The argv the executor runs to restart its engine (docker.daemon.bip): this CLI's restart-engine. */
export function engineRestartArgv(dir: string, host: string): string[] {
  return tsxArgv('test/lab/cli.ts', ['restart-engine', host, '--lab-dir', dir]);
}

function logTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Requests to the lab's controller, trusting its CA file (the lab runs outside vitest's trusted CA too). */
export async function labApi<T>(controller: LabController, method: string, route: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await trustedRequest(new ControllerTrust({ caFile: controller.caFile }), `${controller.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${controller.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  return { status: response.status, body: (response.text ? JSON.parse(response.text) : null) as T };
}

async function startController(state: LabState, entry: string): Promise<void> {
  const paths = controllerPaths(state.dir);
  await mkdir(paths.dir, { recursive: true });
  // a restart (restartController) keeps the token the tests and operators already hold
  const adminToken = state.controller?.adminToken ?? randomBytes(24).toString('hex');
  const url = `https://${CONTROLLER_ADDRESS}:${CONTROLLER_PORT}`;
  // Under vitest, the run's CA (which its processes trust); else the controller makes its own.
  seedTestCa(paths.dir);
  const caFile = path.join(paths.dir, 'ca.pem');
  const pid = await spawnDetached(tsxArgv(entry, []), {
    cwd: REPO_ROOT,
    log: paths.log,
    env: {
      ...process.env,
      [LAB_ENV_MARKER]: state.dir,
      // the LAN address only: reachable from the hosts and from this machine, not from its uplink
      CROSSDOCK_LISTEN: `${CONTROLLER_ADDRESS}:${CONTROLLER_PORT}`,
      CROSSDOCK_DB: paths.db,
      CROSSDOCK_ADMIN_TOKEN: adminToken,
      CROSSDOCK_DEFAULT_POOL: LAB_DEFAULT_POOL,
    },
  });
  writeFileSync(paths.pidfile, `${pid}\n`);
  state.controller = {
    url,
    address: CONTROLLER_ADDRESS,
    port: CONTROLLER_PORT,
    adminToken,
    pid,
    caFile,
    caFingerprint: state.controller?.caFingerprint ?? null,
  };
  await writeState(state);
  const controller = state.controller;
  await waitFor(`the controller to answer ${url}/healthz`, CONTROLLER_READY_TIMEOUT_MS, READY_POLL_INTERVAL_MS, async () => {
    if (!isAlive(pid)) throw new WaitAborted(`the controller (pid ${pid}) exited; end of ${paths.log}:\n${logTail(paths.log)}`);
    if (!existsSync(caFile)) return undefined;
    const response = await labApi(controller, 'GET', '/healthz');
    return response.status === 200 ? true : undefined;
  });
  controller.caFingerprint = pemFingerprint(readFileSync(caFile, 'utf8'));
  await writeState(state);
}

async function registerHosts(state: LabState): Promise<void> {
  for (const host of state.hosts) {
    const response = await labApi<{ host: { subnets?: LabSubnet[] }; token: string }>(state.controller!, 'POST', '/v1/hosts', {
      name: host.name,
      address: host.address,
      interface: HOST_INTERFACE,
    });
    if (response.status !== 201) throw new Error(`registering ${host.name} returned ${response.status}: ${JSON.stringify(response.body)}`);
    host.token = response.body.token;
    host.subnets = (response.body.host.subnets ?? []).map(({ id, cidr, gateway, network, mode }) => ({ id, cidr, gateway, network, mode }));
  }
  await writeState(state);
}

export function executorArgv(state: LabState, host: LabState['hosts'][number], entry = EXECUTOR_ENTRY): string[] {
  const paths = hostPaths(state.dir, host.name);
  return [
    'nsenter',
    `--net=${netnsPath(host.netns)}`,
    '--',
    ...tsxArgv(entry, [
      '--controller',
      state.controller!.url,
      '--token',
      host.token!,
      // pinned as the join line pins it
      ...(state.controller!.caFingerprint ? ['--ca-fingerprint', state.controller!.caFingerprint] : []),
      '--docker-host',
      host.dockerHost,
      '--daemon-json',
      hostPaths(state.dir, host.name).daemonJson,
      '--reconcile-interval-ms',
      String(reconcileIntervalMs()),
      '--allow-engine-restart',
      '--engine-restart-command',
      JSON.stringify(engineRestartArgv(state.dir, host.name)),
      // the IPAM plugin where this host's engine alone finds it (engine.ts)
      '--ipam-socket',
      path.join(pluginDirOf(paths), 'crossdock.sock'),
      '--ipam-state',
      path.join(paths.dir, 'ipam.json'),
    ]),
  ];
}

async function spawnExecutor(state: LabState, host: LabState['hosts'][number], entry: string): Promise<void> {
  const paths = hostPaths(state.dir, host.name);
  host.executorPid = await spawnDetached(executorArgv(state, host, entry), {
    cwd: REPO_ROOT,
    log: paths.executorLog,
    env: {
      ...process.env,
      [LAB_ENV_MARKER]: state.dir,
      // The bundle runs as the installed service runs it (its unit sets these).
      ...(entry.endsWith('.mjs') ? { NODE_OPTIONS: EXECUTOR_NODE_OPTIONS } : {}),
    },
  });
  writeFileSync(paths.executorPidfile, `${host.executorPid}\n`);
}

async function startExecutors(state: LabState, entry: string): Promise<void> {
  for (const host of state.hosts) await spawnExecutor(state, host, entry);
  await writeState(state);
}

function labHost(state: LabState, name: string): LabState['hosts'][number] {
  const host = state.hosts.find((h) => h.name === name);
  if (!host) throw new Error(`the lab has no host ${name}`);
  return host;
}

/**
 * Starts one host's executor again, with `token` when given (the one a new registration
 * returned), after stopping the one still running. Returns its pid.
 */
export async function startExecutor(state: LabState, name: string, options: { token?: string; executorEntry?: string } = {}): Promise<number> {
  const host = labHost(state, name);
  await stopExecutor(state, name);
  if (options.token !== undefined) host.token = options.token;
  await spawnExecutor(state, host, options.executorEntry ?? EXECUTOR_ENTRY);
  await writeState(state);
  return host.executorPid!;
}

/** Stops one host's executor (SIGTERM; it leaves the host as it is). */
export async function stopExecutor(state: LabState, name: string): Promise<void> {
  const host = labHost(state, name);
  if (host.executorPid !== null && isAlive(host.executorPid)) {
    const survivors = await terminate([host.executorPid], EXECUTOR_STOP_GRACE_MS);
    if (survivors.length > 0) throw new Error(`the executor of ${name} (pid ${host.executorPid}) survived SIGKILL`);
  }
  host.executorPid = null;
  await writeState(state);
}

/** Stops the controller alone: the executors keep running, and their hosts keep what they applied. */
export async function stopController(state: LabState): Promise<void> {
  const pid = state.controller?.pid ?? null;
  if (pid !== null && isAlive(pid)) {
    const survivors = await terminate([pid], CONTROLLER_STOP_GRACE_MS);
    if (survivors.length > 0) throw new Error(`the controller (pid ${pid}) survived SIGKILL`);
  }
  if (state.controller) state.controller.pid = null;
  await writeState(state);
}

/** Starts the controller again on the same address, database and admin token; resolves once it answers. */
export async function restartController(state: LabState, options: CrossdockOptions = {}): Promise<LabState> {
  if (!state.controller) throw new Error('the lab has no controller to restart (it was started with --no-crossdock)');
  await stopController(state);
  await startController(state, options.controllerEntry ?? CONTROLLER_ENTRY);
  return state;
}

/** Starts the controller, registers every host, starts every executor; records all of it in state.json. */
export async function startCrossdock(state: LabState, options: CrossdockOptions = {}): Promise<LabState> {
  const log = options.log ?? (() => {});
  assertCrossdockEntries(options);
  log(`starting the controller on ${CONTROLLER_ADDRESS}:${CONTROLLER_PORT}`);
  await startController(state, options.controllerEntry ?? CONTROLLER_ENTRY);
  log(`registering ${state.hosts.map((host) => host.name).join(', ')}`);
  await registerHosts(state);
  log('starting the executors');
  await startExecutors(state, options.executorEntry ?? EXECUTOR_ENTRY);
  return state;
}

/** Stops the executors and the controller, leaving the hosts and their engines as they are. */
export async function stopCrossdock(state: LabState, log: Log = () => {}): Promise<LabState> {
  await stopCrossdockProcesses(state.dir, log);
  for (const host of state.hosts) host.executorPid = null;
  state.controller = null;
  await writeState(state);
  return state;
}
