// A Docker engine of a suite's own, in a cdtest-* network namespace, for suites that need a real
// dockerd but not the lab (which one user at a time owns). The lab's recipe (test/lab/engine.ts):
// containerd in a private mount namespace and that network namespace, dockerd joining both, every
// path (data root, exec root, pidfiles, sockets, daemon.json) under one directory; only the names
// differ: the containerd namespace and cgroup parent are the suite's namespace, not cdlab-*, so the
// lab's cleanup never touches this engine and this one's never touches the lab.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { containerdConfig, docker, dockerdArgs, stopDockerd } from '../lab/engine.ts';
import { allPids, cgroupPathsOf, cmdlineOf, isAlive, signal, terminate, waitForExit } from '../lab/processes.ts';
import { netnsPath, spawnDetached, waitFor, WaitAborted } from '../lab/run.ts';
import { hostPaths, netnsOf } from '../lab/state.ts';

const READY_TIMEOUT_MS = 60_000;
const READY_POLL_INTERVAL_MS = 200;
const STOP_GRACE_MS = 20_000;
/** hostPaths() wants a host name; the engine's files go in <dir>/<ENGINE>/ */
const ENGINE = 'engine';

export interface PrivateEngine {
  dockerHost: string;
  stop(): Promise<void>;
}

/** The processes of an engine under `dir` (containerd, its shims, dockerd, their containers), alive or left by a killed run. */
function processesOf(dir: string, netns: string): number[] {
  return allPids().filter((pid) => {
    if (pid === process.pid) return false;
    if (cmdlineOf(pid).some((arg) => arg.startsWith(`${dir}/`))) return true;
    return cgroupPathsOf(pid).some((cgroup) => cgroup.startsWith(`/${netns}/`));
  });
}

/** Stops whatever a previous run left under `dir` and removes it. */
export async function cleanPrivateEngine(dir: string, netns: string): Promise<void> {
  const pids = processesOf(dir, netns);
  for (const pid of pids) signal(pid, 'SIGKILL');
  await waitForExit(pids, STOP_GRACE_MS);
  rmSync(dir, { recursive: true, force: true });
}

/** Starts containerd and dockerd inside `netns` (which must exist), with every file under `dir`. */
export async function startPrivateEngine(dir: string, netns: string): Promise<PrivateEngine> {
  const paths = hostPaths(dir, ENGINE);
  mkdirSync(paths.dir, { recursive: true });
  // dockerd 20.10 writes its libtrust key to /etc/docker/key.json unless told otherwise
  writeFileSync(paths.daemonJson, `${JSON.stringify({ 'deprecated-key-path': paths.keyJson })}\n`);
  writeFileSync(paths.containerdConfig, containerdConfig(paths));
  const containerd = await spawnDetached(
    ['unshare', '--mount', '--propagation', 'slave', '--', 'nsenter', `--net=${netnsPath(netns)}`, '--', 'containerd', '--config', paths.containerdConfig],
    { cwd: paths.dir, env: process.env, log: paths.containerdLog },
  );
  await waitFor('the private containerd to listen', READY_TIMEOUT_MS, READY_POLL_INTERVAL_MS, async () => {
    if (!isAlive(containerd)) throw new WaitAborted(`containerd exited; see ${paths.containerdLog}`);
    return existsSync(paths.containerdSocket) ? true : undefined;
  });
  const labName = netnsOf(ENGINE);
  const args = dockerdArgs(ENGINE, paths).map((arg) => (arg === labName ? netns : arg === `${labName}-plugins` ? `${netns}-plugins` : arg));
  const dockerd = await spawnDetached(['nsenter', `--mount=/proc/${containerd}/ns/mnt`, `--net=${netnsPath(netns)}`, '--', 'dockerd', ...args], {
    cwd: paths.dir,
    env: process.env,
    log: paths.dockerdLog,
  });
  try {
    await waitFor('the private dockerd to answer', READY_TIMEOUT_MS, READY_POLL_INTERVAL_MS, async () => {
      if (!isAlive(dockerd)) throw new WaitAborted(`dockerd exited; see ${paths.dockerdLog}`);
      if (!existsSync(paths.socket)) return undefined;
      return (await docker(paths.dockerHost, ['version'], { check: false, timeoutMs: 5_000 })).code === 0 ? true : undefined;
    });
  } catch (error) {
    await terminate([dockerd, containerd], STOP_GRACE_MS);
    throw error;
  }
  return {
    dockerHost: paths.dockerHost,
    async stop() {
      await stopDockerd(paths.dockerHost, dockerd, netns);
      await terminate([containerd], STOP_GRACE_MS);
      // containerd's shims may outlive it by a moment
      await waitForExit(processesOf(dir, netns), STOP_GRACE_MS);
    },
  };
}
