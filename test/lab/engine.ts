// Each lab host's container engine: its own containerd and dockerd, inside the host's network
// namespace and in one private mount namespace that the two share.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { allPids, cgroupPathsOf, cmdlineOf, isAlive, readPidfile, signal, terminate, waitForExit } from './processes.ts';
import { netnsPath, run, spawnDetached, waitFor, WaitAborted, type RunOptions, type RunResult } from './run.ts';
import { hostPaths, LAB_ENV_MARKER, netnsOf, type HostPaths } from './state.ts';

export const ENGINE_READY_TIMEOUT_MS = 60_000;
export const ENGINE_STOP_GRACE_MS = 20_000;
/** Seconds dockerd gives a container to stop on shutdown; busybox `sleep` as PID 1 ignores SIGTERM. */
const DOCKERD_SHUTDOWN_TIMEOUT_S = 2;
const DOCKER_PROBE_TIMEOUT_MS = 5_000;
const READY_POLL_INTERVAL_MS = 100;

/**
 * containerd's configuration: everything it writes under the host's directory. The lab starts
 * containerd itself, because a dockerd left to start its own first looks for
 * /run/containerd/containerd.sock and, where a system containerd runs (Debian starts one with
 * docker.io), every lab engine would share it and outside our mount namespaces.
 */
export function containerdConfig(paths: HostPaths): string {
  return [
    'version = 2',
    `root = ${JSON.stringify(paths.containerdRoot)}`,
    `state = ${JSON.stringify(paths.containerdState)}`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '',
    '[grpc]',
    `  address = ${JSON.stringify(paths.containerdSocket)}`,
    '',
    '[debug]',
    '  level = "info"',
    '',
    '# by default /opt/containerd, created on the machine',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${JSON.stringify(paths.containerdOpt)}`,
    '',
  ].join('\n');
}

/**
 * The flags that let several dockerds share one kernel and filesystem: each has its own data
 * root, exec root, pidfile, API socket, containerd (and containerd namespace), and daemon.json
 * instead of /etc/docker/daemon.json, so crossdock's bip mode rewrites this host's file only.
 * The cgroup parent names the host, so cleanup finds its containers' processes even after
 * dockerd and the shims are gone.
 */
export function dockerdArgs(name: string, paths: HostPaths): string[] {
  const netns = netnsOf(name);
  return [
    '--data-root',
    paths.dataRoot,
    '--exec-root',
    paths.execRoot,
    '--pidfile',
    paths.pidfile,
    '--host',
    paths.dockerHost,
    '--config-file',
    paths.daemonJson,
    '--containerd',
    paths.containerdSocket,
    '--containerd-namespace',
    netns,
    '--containerd-plugins-namespace',
    `${netns}-plugins`,
    '--cgroup-parent',
    netns,
    '--iptables=true',
    '--ip-forward=true',
    '--shutdown-timeout',
    String(DOCKERD_SHUTDOWN_TIMEOUT_S),
  ];
}

/** Where Docker looks for plugin sockets; in each engine's mount namespace, its host's own directory. */
export const DOCKER_PLUGIN_DIR = '/run/docker/plugins';

/**
 * The host's plugin directory, bound over /run/docker/plugins for its engine alone: the host's
 * executor serves the IPAM plugin "crossdock" there, and no other lab engine sees it.
 */
export function pluginDirOf(paths: HostPaths): string {
  return path.join(paths.dir, 'plugins');
}

/**
 * containerd goes into a new mount namespace (a slave of the root one) and the host's network
 * namespace. The overlay, netns and shm mounts that dockerd and the containers make then never
 * appear in the root mount namespace and vanish with the engine's last process, so a killed lab
 * cannot leave busy mounts behind. The host's plugin directory is bound over /run/docker/plugins
 * in that namespace. unshare, sh and nsenter exec: the pid is containerd's own.
 */
export function containerdCommand(name: string, paths: HostPaths): string[] {
  return [
    'unshare',
    '--mount',
    '--propagation',
    'slave',
    '--',
    'sh',
    '-c',
    `mkdir -p ${DOCKER_PLUGIN_DIR} && mount --bind "$0" ${DOCKER_PLUGIN_DIR} && exec "$@"`,
    pluginDirOf(paths),
    'nsenter',
    `--net=${netnsPath(netnsOf(name))}`,
    '--',
    'containerd',
    '--config',
    paths.containerdConfig,
  ];
}

/** dockerd joins containerd's mount namespace: runc must see the rootfs mounts dockerd makes. */
export function dockerdCommand(name: string, paths: HostPaths, containerdPid: number): string[] {
  return ['nsenter', `--mount=/proc/${containerdPid}/ns/mnt`, `--net=${netnsPath(netnsOf(name))}`, '--', 'dockerd', ...dockerdArgs(name, paths)];
}

function isProcessOf(pid: number, program: string, marker: string): boolean {
  const argv = cmdlineOf(pid);
  return (argv[0] ?? '').split('/').pop() === program && argv.includes(marker);
}

function isContainerdOf(pid: number, paths: HostPaths): boolean {
  return isProcessOf(pid, 'containerd', paths.containerdConfig);
}

export function isDockerdOf(pid: number, paths: HostPaths): boolean {
  return isProcessOf(pid, 'dockerd', paths.pidfile);
}

/** The pid of the host's running dockerd, from its pidfile. */
export function dockerdPidOf(dir: string, name: string): number | null {
  const paths = hostPaths(dir, name);
  const pid = readPidfile(paths.pidfile);
  return pid !== null && isAlive(pid) && isDockerdOf(pid, paths) ? pid : null;
}

function runningContainerd(paths: HostPaths): number | null {
  const pid = readPidfile(paths.containerdPidfile);
  return pid !== null && isAlive(pid) && isContainerdOf(pid, paths) ? pid : null;
}

export function docker(dockerHost: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const env = { ...process.env, ...options.env };
  delete env.DOCKER_CONTEXT;
  delete env.DOCKER_TLS_VERIFY;
  delete env.DOCKER_CERT_PATH;
  return run('docker', ['-H', dockerHost, ...args], { ...options, env });
}

function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function socketAccepts(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const connection = net.connect(socket);
    connection.once('connect', () => {
      connection.destroy();
      resolve(true);
    });
    connection.once('error', () => resolve(false));
  });
}

async function startContainerd(dir: string, name: string, paths: HostPaths): Promise<number> {
  writeFileSync(paths.containerdConfig, containerdConfig(paths));
  mkdirSync(pluginDirOf(paths), { recursive: true });
  const pid = await spawnDetached(containerdCommand(name, paths), { cwd: paths.dir, env: { ...process.env, [LAB_ENV_MARKER]: dir }, log: paths.containerdLog });
  writeFileSync(paths.containerdPidfile, `${pid}\n`);
  await waitFor(`containerd of ${name} to listen on ${paths.containerdSocket}`, ENGINE_READY_TIMEOUT_MS, READY_POLL_INTERVAL_MS, async () => {
    if (!isAlive(pid)) throw new WaitAborted(`containerd of ${name} (pid ${pid}) exited; end of ${paths.containerdLog}:\n${logTail(paths.containerdLog)}`);
    return (await socketAccepts(paths.containerdSocket)) ? true : undefined;
  });
  return pid;
}

/** The lab's keys in daemon.json; crossdock adds "bip" and keeps the rest. */
async function ensureDaemonJson(paths: HostPaths): Promise<void> {
  if (existsSync(paths.daemonJson)) return;
  // 20.10 has no flag for its libtrust key and would write /etc/docker/key.json otherwise
  await writeFile(paths.daemonJson, `${JSON.stringify({ 'deprecated-key-path': paths.keyJson }, null, 2)}\n`);
}

/**
 * Starts the host's engine detached (it outlives this process): containerd unless it is already
 * running, then dockerd. Returns dockerd's pid once the engine answers, with its version.
 */
export async function startEngine(dir: string, name: string): Promise<{ pid: number; version: string }> {
  const paths = hostPaths(dir, name);
  await mkdir(paths.dir, { recursive: true });
  await ensureDaemonJson(paths);
  if (dockerdPidOf(dir, name) !== null) throw new Error(`dockerd of ${name} is already running`);
  rmSync(paths.pidfile, { force: true }); // dockerd refuses to start over a pidfile naming a live process

  const containerdPid = runningContainerd(paths) ?? (await startContainerd(dir, name, paths));
  const pid = await spawnDetached(dockerdCommand(name, paths, containerdPid), {
    cwd: paths.dir,
    env: { ...process.env, [LAB_ENV_MARKER]: dir },
    log: paths.dockerdLog,
  });
  const version = await waitFor(`dockerd of ${name} to answer on ${paths.socket}`, ENGINE_READY_TIMEOUT_MS, READY_POLL_INTERVAL_MS, async () => {
    if (!isAlive(pid)) throw new WaitAborted(`dockerd of ${name} (pid ${pid}) exited; end of ${paths.dockerdLog}:\n${logTail(paths.dockerdLog)}`);
    if (!existsSync(paths.socket)) return undefined;
    const result = await docker(paths.dockerHost, ['version', '--format', '{{.Server.Version}}'], { check: false, timeoutMs: DOCKER_PROBE_TIMEOUT_MS });
    return result.code === 0 ? result.stdout.trim() : undefined;
  });
  return { pid, version };
}

/**
 * Removes every container, then stops dockerd and waits for it to exit. Where the API does not
 * answer, the containers' processes are killed instead (found by the host's cgroup parent):
 * dockerd would otherwise give each its full stop timeout (10 s by default) on shutdown.
 */
export async function stopDockerd(dockerHost: string, pid: number, cgroupParent: string | undefined): Promise<void> {
  const listed = await docker(dockerHost, ['ps', '-aq'], { check: false, timeoutMs: DOCKER_PROBE_TIMEOUT_MS }).catch(() => null);
  const ids = listed?.code === 0 ? listed.stdout.split('\n').filter(Boolean) : [];
  const removed =
    ids.length === 0
      ? listed?.code === 0
      : (await docker(dockerHost, ['rm', '-f', '-v', ...ids], { check: false, timeoutMs: 30_000 }).catch(() => null))?.code === 0;
  if (!removed && cgroupParent) {
    const containers = allPids().filter((candidate) => cgroupPathsOf(candidate).some((cgroup) => cgroup.startsWith(`/${cgroupParent}/`)));
    for (const container of containers) signal(container, 'SIGKILL');
    await waitForExit(containers, ENGINE_STOP_GRACE_MS);
  }
  const survivors = await terminate([pid], ENGINE_STOP_GRACE_MS);
  if (survivors.length > 0) throw new Error(`dockerd (pid ${pid}) survived SIGKILL`);
}

/**
 * What crossdock's executor runs for docker.daemon.bip: stop this host's dockerd and start it
 * again with the same flags (containerd keeps running). Containers stop, as on a real host.
 */
export async function restartEngine(dir: string, name: string): Promise<number> {
  const pid = dockerdPidOf(dir, name);
  if (pid !== null) {
    const survivors = await terminate([pid], ENGINE_STOP_GRACE_MS);
    if (survivors.length > 0) throw new Error(`dockerd of ${name} (pid ${pid}) survived SIGKILL`);
  }
  return (await startEngine(dir, name)).pid;
}
