// Tearing the lab down from any state: complete, half-built, killed, or with state.json lost.
// Everything the lab makes is found by name (cdlab-* namespaces, links and cgroups), by path
// (the lab directory in a process's argv or mounts) or by the environment marker, never only
// through state.json.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmdirSync, unlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { ENGINE_STOP_GRACE_MS, stopDockerd } from './engine.ts';
import {
  allPids,
  ancestorsOf,
  cgroupPathsOf,
  cmdlineOf,
  environOf,
  isAlive,
  netnsInodeOf,
  netnsInodeOfPath,
  readPidfile,
  signal,
  terminate,
  waitForExit,
} from './processes.ts';
import { ipIn, netnsPath, run, sleep } from './run.ts';
import { controllerPaths, hostPaths, LAB_ENV_MARKER, LAB_PREFIX } from './state.ts';

const CROSSDOCK_STOP_GRACE_MS = 5_000;
const KILL_ROUNDS = 20;
const KILL_ROUND_WAIT_MS = 2_000;
const NETNS_DIR = '/run/netns';
/** containerd puts every shim's socket here, whatever its state directory (containerd 1.6). */
const CONTAINERD_SHIM_SOCKET_DIR = '/run/containerd/s';

export type Log = (line: string) => void;

export interface LabProcess {
  pid: number;
  argv: string[];
  why: string;
}

function refersTo(arg: string, dir: string): boolean {
  return arg === dir || arg.includes(`${dir}/`) || arg.endsWith(`=${dir}`);
}

export function labNamespaces(): string[] {
  try {
    return readdirSync(NETNS_DIR)
      .filter((name) => name.startsWith(LAB_PREFIX))
      .sort();
  } catch {
    return [];
  }
}

/**
 * Every live process that belongs to the lab: its argv or environment names the lab directory,
 * it runs in a lab namespace (dockerd, containerd, shims, executors, anything nsenter'ed), or it
 * sits in a lab cgroup (containers, even when their shim is gone). Never this process or its ancestors.
 */
export function findLabProcesses(dir: string): LabProcess[] {
  const excluded = ancestorsOf(process.pid);
  const namespaces = new Map<number, string>();
  for (const name of labNamespaces()) {
    const inode = netnsInodeOfPath(netnsPath(name));
    if (inode !== null) namespaces.set(inode, name);
  }
  const marker = `${LAB_ENV_MARKER}=${dir}`;
  const found: LabProcess[] = [];
  for (const pid of allPids()) {
    if (excluded.has(pid) || !isAlive(pid)) continue;
    const argv = cmdlineOf(pid);
    if (argv.length === 0) continue; // kernel threads
    let why: string | null = null;
    if (argv.some((arg) => refersTo(arg, dir))) why = 'argv names the lab directory';
    else if (environOf(pid).includes(marker)) why = `environment has ${marker}`;
    else {
      const inode = netnsInodeOf(pid);
      const netns = inode === null ? undefined : namespaces.get(inode);
      if (netns) why = `runs in namespace ${netns}`;
      else if (cgroupPathsOf(pid).some((cgroup) => cgroup.startsWith(`/${LAB_PREFIX}`))) why = 'in a lab cgroup';
    }
    if (why) found.push({ pid, argv, why });
  }
  return found;
}

function optionValue(argv: string[], ...names: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    for (const name of names) {
      if (arg === name) return argv[i + 1];
      if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1);
    }
  }
  return undefined;
}

interface Mount {
  target: string;
  fstype: string;
}

function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export function mounts(): Mount[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const fields = line.split(' ');
      const separator = fields.indexOf('-');
      return { target: unescapeMountinfo(fields[4] ?? ''), fstype: fields[separator + 1] ?? '' };
    });
}

export function mountsUnder(dir: string): string[] {
  return mounts()
    .map((mount) => mount.target)
    .filter((target) => target === dir || target.startsWith(`${dir}/`));
}

/** Deepest first; a mount that will not go (busy) is detached lazily. */
async function unmountUnder(dir: string, log: Log): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const targets = [...new Set(mountsUnder(dir))].sort((a, b) => b.split('/').length - a.split('/').length || b.length - a.length);
    if (targets.length === 0) return;
    for (const target of targets) {
      const result = await run('umount', [target], { check: false });
      if (result.code !== 0) {
        log(`umount ${target} failed (${result.stderr.trim()}); detaching it lazily`);
        await run('umount', ['-l', target], { check: false });
      }
    }
  }
}

function cgroupMounts(): string[] {
  return mounts()
    .filter((mount) => mount.fstype === 'cgroup' || mount.fstype === 'cgroup2')
    .map((mount) => mount.target);
}

export function labCgroups(): string[] {
  const found: string[] = [];
  for (const mount of cgroupMounts()) {
    try {
      for (const entry of readdirSync(mount, { withFileTypes: true })) {
        if (entry.isDirectory() && entry.name.startsWith(LAB_PREFIX)) found.push(path.join(mount, entry.name));
      }
    } catch {
      // a hierarchy we may not read
    }
  }
  return found;
}

/** rmdir depth first: a cgroup directory holds only control files, which go with it. */
function removeCgroup(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroup(path.join(dir, entry.name));
  }
  rmdirSync(dir);
}

export async function labRootLinks(): Promise<string[]> {
  const result = await ipIn(null, ['-j', 'link', 'show'], { check: false });
  if (result.code !== 0) return [];
  const links = JSON.parse(result.stdout) as Array<{ ifname: string }>;
  return links.map((link) => link.ifname).filter((name) => name.startsWith(LAB_PREFIX));
}

/**
 * The sockets containerd 1.6 made for the lab's shims: /run/containerd/s/sha256(address/namespace/id),
 * from the task directories under each exec root and from the shims still running.
 */
function shimSockets(dir: string, processes: LabProcess[]): string[] {
  const keys = new Set<string>();
  for (const proc of processes) {
    if (!programOf(proc).startsWith('containerd-shim')) continue;
    const address = optionValue(proc.argv, '-address', '--address');
    const namespace = optionValue(proc.argv, '-namespace', '--namespace');
    const id = optionValue(proc.argv, '-id', '--id');
    if (address && namespace && id) keys.add(path.join(address, namespace, id));
  }
  let hostDirs: string[] = [];
  try {
    hostDirs = readdirSync(dir);
  } catch {
    // no lab directory
  }
  for (const host of hostDirs) {
    const paths = hostPaths(dir, host);
    const tasks = path.join(paths.containerdState, 'io.containerd.runtime.v2.task');
    for (const namespace of safeReaddir(tasks)) {
      for (const id of safeReaddir(path.join(tasks, namespace))) keys.add(path.join(paths.containerdSocket, namespace, id));
    }
  }
  return [...keys].map((key) => path.join(CONTAINERD_SHIM_SOCKET_DIR, createHash('sha256').update(key).digest('hex')));
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function otherContainerdRunning(): boolean {
  return allPids().some((pid) => isAlive(pid) && path.basename(cmdlineOf(pid)[0] ?? '').startsWith('containerd'));
}

/** Executors and the controller, from their pidfiles, before the engines they talk to go away. */
export async function stopCrossdockProcesses(dir: string, log: Log): Promise<void> {
  const pidfiles = [controllerPaths(dir).pidfile, ...safeReaddir(dir).map((host) => hostPaths(dir, host).executorPidfile)];
  const marker = `${LAB_ENV_MARKER}=${dir}`;
  const pids = pidfiles.map(readPidfile).filter((pid): pid is number => pid !== null && isAlive(pid) && environOf(pid).includes(marker));
  if (pids.length === 0) return;
  log(`stopping crossdock processes ${pids.join(', ')}`);
  await terminate(pids, CROSSDOCK_STOP_GRACE_MS);
}

function programOf(proc: LabProcess): string {
  return path.basename(proc.argv[0] ?? '');
}

/**
 * Every engine of the lab, recorded or not: remove each dockerd's containers, SIGTERM it and
 * wait for it to exit, then the same for each containerd (whose shims then have nothing to run).
 */
async function stopEngines(dir: string, log: Log): Promise<void> {
  const dockerds = findLabProcesses(dir).filter((proc) => programOf(proc) === 'dockerd');
  await Promise.all(
    dockerds.map(async (proc) => {
      const dockerHost = optionValue(proc.argv, '--host', '-H') ?? '';
      log(`stopping dockerd ${proc.pid} (${dockerHost})`);
      await stopDockerd(dockerHost, proc.pid, optionValue(proc.argv, '--cgroup-parent')).catch((error: Error) => log(error.message));
    }),
  );
  const containerds = findLabProcesses(dir).filter((proc) => programOf(proc) === 'containerd');
  if (containerds.length > 0) {
    log(`stopping containerd ${containerds.map((proc) => proc.pid).join(', ')}`);
    await terminate(
      containerds.map((proc) => proc.pid),
      ENGINE_STOP_GRACE_MS,
    );
  }
}

/** SIGKILL whatever is left (containerd, shims, orphaned container processes, strays in a lab namespace). */
async function killLabProcesses(dir: string, log: Log): Promise<void> {
  for (let round = 0; round < KILL_ROUNDS; round++) {
    const left = findLabProcesses(dir);
    if (left.length === 0) return;
    for (const proc of left) {
      log(`killing ${proc.pid} (${proc.why}): ${proc.argv.join(' ').slice(0, 160)}`);
      signal(proc.pid, 'SIGKILL');
    }
    await waitForExit(
      left.map((proc) => proc.pid),
      KILL_ROUND_WAIT_MS,
    );
  }
}

async function removeNamespaces(log: Log): Promise<void> {
  for (const name of labNamespaces()) {
    const result = await ipIn(null, ['netns', 'delete', name], { check: false });
    if (result.code !== 0 && existsSync(netnsPath(name))) {
      log(`ip netns delete ${name} failed (${result.stderr.trim()}); detaching it lazily`);
      await run('umount', ['-l', netnsPath(name)], { check: false });
      try {
        unlinkSync(netnsPath(name));
      } catch {
        // reported by leftovers()
      }
    }
  }
}

async function removeDir(dir: string, log: Log): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rm(dir, { recursive: true, force: true });
      return;
    } catch (error) {
      if (attempt >= 3) throw error;
      log(`removing ${dir} failed (${(error as Error).message}); unmounting and retrying`);
      await unmountUnder(dir, log);
      await sleep(500);
    }
  }
}

/** What is left of a lab; empty after a successful teardown. */
export async function leftovers(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const proc of findLabProcesses(dir)) found.push(`process ${proc.pid} (${proc.why}): ${proc.argv.join(' ').slice(0, 160)}`);
  for (const name of labNamespaces()) found.push(`network namespace ${name}`);
  for (const link of await labRootLinks()) found.push(`link ${link} in the root namespace`);
  for (const target of mountsUnder(dir)) found.push(`mount ${target}`);
  for (const target of mounts()
    .map((mount) => mount.target)
    .filter((target) => target.startsWith(`${NETNS_DIR}/${LAB_PREFIX}`)))
    found.push(`mount ${target}`);
  for (const cgroup of labCgroups()) found.push(`cgroup ${cgroup}`);
  if (existsSync(dir)) found.push(`directory ${dir}`);
  return found;
}

export async function teardown(dir: string, log: Log): Promise<void> {
  await stopCrossdockProcesses(dir, log);
  await stopEngines(dir, log);
  const sockets = shimSockets(dir, findLabProcesses(dir));
  await killLabProcesses(dir, log);
  await unmountUnder(dir, log);
  for (const link of await labRootLinks()) await ipIn(null, ['link', 'delete', link], { check: false });
  await removeNamespaces(log);
  for (const cgroup of labCgroups()) {
    try {
      removeCgroup(cgroup);
    } catch (error) {
      log(`cannot remove cgroup ${cgroup}: ${(error as Error).message}`);
    }
  }
  for (const socket of sockets) {
    try {
      unlinkSync(socket);
    } catch {
      // the shim removed it on a clean exit
    }
  }
  // containerd and its shims create these on demand: remove them when empty and no other
  // containerd (another test's engine, the system's) could be about to use them
  if (!otherContainerdRunning()) {
    for (const empty of [CONTAINERD_SHIM_SOCKET_DIR, path.dirname(CONTAINERD_SHIM_SOCKET_DIR)]) {
      try {
        rmdirSync(empty);
      } catch {
        // absent, or in use
      }
    }
  }
  await removeDir(dir, log);
  const left = await leftovers(dir);
  if (left.length > 0) throw new Error(`the lab could not be removed completely:\n  ${left.join('\n  ')}`);
}
