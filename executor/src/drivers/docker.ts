// The Docker engine through its API (dockerode). crossdock creates and removes only networks
// labelled io.crossdock.managed=true, and changes the default bridge (bip) only when the
// executor was started with permission to restart the engine.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import Dockerode from 'dockerode';
import {
  formatIPv4,
  hostRange,
  MANAGED_LABEL,
  networkLabels,
  parseCidr,
  type CommandResult,
  type DockerDaemonBip,
  type DockerNetworkCreate,
  type DockerNetworkRemove,
} from '@crossdock/shared';
import { createRunner, firstInvalid, resultWithoutProcess, type Runner } from './run.ts';
import { MONITOR_RESTART_DELAY_MS, type OnChange, type Watch } from './watch.ts';

export const DOCKER_API_TIMEOUT_MS = 30_000;
export const ENGINE_RESTART_TIMEOUT_MS = 120_000;
export const ENGINE_POLL_INTERVAL_MS = 500;

export interface ObservedDockerNetwork {
  id: string;
  name: string;
  subnet: string | null;
  gateway: string | null;
  labels: Record<string, string>;
  options: Record<string, string>;
  /** containers attached right now */
  containers: number;
}

export interface ObservedDocker {
  available: boolean;
  version: string | null;
  /** only networks labelled io.crossdock.managed=true */
  networks: ObservedDockerNetwork[];
  /** the default bridge's address/prefix as the engine runs it, such as 172.17.0.1/16 */
  bip: string | null;
}

export interface SetBipOptions {
  daemonJsonPath: string;
  /** argv that restarts the engine; null unless the executor runs with --allow-engine-restart */
  restartCommand: readonly string[] | null;
  /** how long to wait for the engine to answer with the new bip */
  timeoutMs?: number;
}

export interface DockerDriver {
  observe(): Promise<ObservedDocker>;
  createNetwork(command: DockerNetworkCreate): Promise<CommandResult>;
  removeNetwork(command: DockerNetworkRemove): Promise<CommandResult>;
  setBip(command: DockerDaemonBip, options: SetBipOptions): Promise<CommandResult>;
  /**
   * Calls onChange when a network is created or removed on the engine, by anyone (the engine's
   * event stream), and when the engine comes back after the stream was lost.
   */
  watch(onChange: OnChange): Watch;
}

/** Network events that may change what crossdock observes (connect/disconnect only move counts). */
const NETWORK_CHANGES = new Set(['create', 'destroy', 'remove', 'update']);

type NetworkInfo = Dockerode.NetworkInspectInfo;

/** The part of dockerode the driver uses; tests can stand in for it. */
export interface DockerClient {
  ping(): Promise<unknown>;
  version(): Promise<{ Version: string }>;
  listNetworks(options?: { filters?: Record<string, string[]> }): Promise<NetworkInfo[]>;
  getNetwork(id: string): { inspect(): Promise<NetworkInfo>; remove(): Promise<unknown> };
  createNetwork(options: Dockerode.NetworkCreateOptions): Promise<{ id: string }>;
  getEvents(options: { filters: string }): Promise<NodeJS.ReadableStream>;
}

export interface DockerDriverOptions {
  /** a dockerode instance; otherwise one is made from dockerHost */
  docker?: DockerClient;
  /** unix:///path or tcp://host:port; default $DOCKER_HOST, then unix:///var/run/docker.sock */
  dockerHost?: string;
  /** runs the engine restart command */
  runner?: Runner;
  pollIntervalMs?: number;
  /** how long after the event stream is lost it is opened again */
  eventsRetryMs?: number;
}

export function dockerFromHost(host: string, timeoutMs = DOCKER_API_TIMEOUT_MS): Dockerode {
  let connection: Dockerode.DockerOptions;
  if (host.startsWith('unix://')) connection = { socketPath: host.slice('unix://'.length) };
  else if (host.startsWith('tcp://')) {
    const url = new URL(`http://${host.slice('tcp://'.length)}`);
    connection = { host: url.hostname, port: url.port || '2375', protocol: 'http' };
  } else throw new Error(`Docker endpoint "${host}" is not understood; use unix:///var/run/docker.sock or tcp://host:2375`);
  const docker = new Dockerode({ ...connection, timeout: timeoutMs });
  // The event stream is one response that stays silent while nothing happens. The request
  // timeout is an idle timeout on the socket: it cut the stream after every timeoutMs of quiet,
  // and a network removed before the watch opened it again (eventsRetryMs later) went
  // unannounced until the next report. An engine that stops closes the stream itself.
  const events = new Dockerode(connection);
  docker.getEvents = events.getEvents.bind(events) as Dockerode['getEvents'];
  return docker;
}

export function createDockerDriver(options: DockerDriverOptions = {}): DockerDriver {
  const docker: DockerClient = options.docker ?? dockerFromHost(options.dockerHost ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock');
  const run = options.runner ?? createRunner();
  const pollIntervalMs = options.pollIntervalMs ?? ENGINE_POLL_INTERVAL_MS;
  const eventsRetryMs = options.eventsRetryMs ?? MONITOR_RESTART_DELAY_MS;

  /** Networks with exactly this name (the API's name filter matches substrings). */
  async function networksNamed(name: string): Promise<NetworkInfo[]> {
    const found = await docker.listNetworks({ filters: { name: [name] } });
    return found.filter((n) => n.Name === name);
  }

  async function engineBip(): Promise<string | null> {
    let bridge: NetworkInfo;
    try {
      bridge = await docker.getNetwork('bridge').inspect();
    } catch (error) {
      if (statusOf(error) === 404) return null; // engine started with --bridge none
      throw error;
    }
    const config = bridge.IPAM?.Config?.[0];
    if (!config?.Subnet) return null;
    const subnet = parseCidr(config.Subnet);
    if (!subnet.ok) return null;
    // The default bridge reports no Gateway unless bip was set: the engine uses the first host.
    const gateway = config.Gateway ?? formatIPv4(hostRange(subnet.cidr).first);
    return `${gateway}/${subnet.cidr.prefixLength}`;
  }

  return {
    async observe() {
      try {
        await docker.ping();
      } catch {
        return { available: false, version: null, networks: [], bip: null };
      }
      const { Version } = await docker.version();
      const listed = await docker.listNetworks({ filters: { label: [`${MANAGED_LABEL}=true`] } });
      // Listing leaves Containers empty; only inspect fills it in.
      const networks = await Promise.all(listed.map((n) => docker.getNetwork(n.Id).inspect()));
      return { available: true, version: Version, networks: networks.map(toObserved), bip: await engineBip() };
    },

    watch(onChange) {
      let stopped = false;
      let stream: NodeJS.ReadableStream | undefined;
      let retry: NodeJS.Timeout | undefined;
      let lost = false;
      const follow = async () => {
        if (stopped) return;
        try {
          stream = await docker.getEvents({ filters: JSON.stringify({ type: ['network'] }) });
        } catch {
          // No engine (yet): try again later; the periodic report covers the meantime.
          lost = true;
          retry = setTimeout(() => void follow(), eventsRetryMs);
          retry.unref();
          return;
        }
        if (stopped) {
          destroy(stream);
          return;
        }
        if (lost) onChange('the Docker engine answers again; looking again');
        lost = false;
        let pending = '';
        stream.on('data', (chunk: Buffer | string) => {
          pending += chunk.toString();
          let end = pending.indexOf('\n');
          while (end >= 0) {
            const line = pending.slice(0, end);
            pending = pending.slice(end + 1);
            end = pending.indexOf('\n');
            try {
              const event = JSON.parse(line) as { Action?: string; Actor?: { Attributes?: { name?: string } } };
              if (event.Action && NETWORK_CHANGES.has(event.Action)) onChange(`docker network ${event.Action}: ${event.Actor?.Attributes?.name ?? '?'}`);
            } catch {
              // not an event line
            }
          }
        });
        const ended = () => {
          if (stopped || lost) return;
          lost = true;
          retry = setTimeout(() => void follow(), eventsRetryMs);
          retry.unref();
        };
        stream.on('end', ended);
        stream.on('error', ended);
        stream.on('close', ended);
      };
      void follow();
      return {
        stop() {
          stopped = true;
          clearTimeout(retry);
          if (stream) destroy(stream);
        },
      };
    },

    async createNetwork(command) {
      const started = performance.now();
      const invalid = firstInvalid([command]);
      if (invalid) return resultWithoutProcess(false, '', `${invalid}\n`, started);
      const labels = networkLabels(command);
      try {
        const [existing] = await networksNamed(command.name);
        if (existing) {
          const difference = networkDifference(toObserved(existing), command, labels);
          return difference === null
            ? resultWithoutProcess(true, `network ${command.name} already exists as wanted (${existing.Id.slice(0, 12)})\n`, '', started)
            : resultWithoutProcess(
                false,
                '',
                `network ${command.name} already exists but ${difference}; remove it first (docker network rm ${command.name})\n`,
                started,
              );
        }
        const created = await docker.createNetwork({
          Name: command.name,
          Driver: 'bridge',
          CheckDuplicate: true,
          IPAM: { Driver: 'default', Config: [{ Subnet: command.subnet, Gateway: command.gateway }] },
          Options: command.options,
          Labels: labels,
        });
        return resultWithoutProcess(true, `created network ${command.name} (${created.id.slice(0, 12)})\n`, '', started);
      } catch (error) {
        return resultWithoutProcess(false, '', `docker: ${describeError(error)}\n`, started);
      }
    },

    async removeNetwork(command) {
      const started = performance.now();
      const invalid = firstInvalid([command]);
      if (invalid) return resultWithoutProcess(false, '', `${invalid}\n`, started);
      const { name } = command;
      try {
        const found = await networksNamed(name);
        if (found.length === 0) return resultWithoutProcess(true, `network ${name} is already gone\n`, '', started);
        if (found.length > 1)
          return resultWithoutProcess(false, '', `${found.length} networks are named ${name}; remove the extra ones by hand (docker network ls)\n`, started);
        const network = docker.getNetwork(found[0]?.Id ?? name);
        const info = await network.inspect();
        if (info.Labels?.[MANAGED_LABEL] !== 'true') {
          return resultWithoutProcess(
            false,
            '',
            `network ${name} is not labelled ${MANAGED_LABEL}=true; crossdock removes only networks it created\n`,
            started,
          );
        }
        const containers = Object.values(info.Containers ?? {}).map((c) => c.Name);
        if (containers.length > 0) {
          return resultWithoutProcess(
            false,
            '',
            `network ${name} still has containers: ${containers.join(', ')}; stop them or disconnect them from ${name} first\n`,
            started,
          );
        }
        await network.remove();
        return resultWithoutProcess(true, `removed network ${name}\n`, '', started);
      } catch (error) {
        return resultWithoutProcess(false, '', `docker: ${describeError(error)}\n`, started);
      }
    },

    async setBip(command, { daemonJsonPath, restartCommand, timeoutMs = ENGINE_RESTART_TIMEOUT_MS }) {
      const started = performance.now();
      const invalid = firstInvalid([command]);
      if (invalid) return resultWithoutProcess(false, '', `${invalid}\n`, started);
      const fail = (message: string) => resultWithoutProcess(false, '', `${message}\n`, started);

      const config = await readDaemonJson(daemonJsonPath);
      if (typeof config === 'string') return fail(config);
      const running = await engineBip().catch(() => null);
      if (config.bip === command.bip && running === command.bip) {
        return resultWithoutProcess(true, `bip is already ${command.bip}\n`, '', started);
      }
      if (restartCommand === null) {
        return fail(
          `setting bip ${command.bip} needs an engine restart, which this executor may not do; start it with --allow-engine-restart, ` +
            `or set "bip": "${command.bip}" in ${daemonJsonPath} and restart dockerd by hand`,
        );
      }
      if (config.bip !== command.bip) {
        try {
          await writeFileAtomically(daemonJsonPath, `${JSON.stringify({ ...config, bip: command.bip }, null, 2)}\n`);
        } catch (error) {
          return fail(`cannot write ${daemonJsonPath}: ${(error as Error).message}`);
        }
      }

      const restart = await run(restartCommand);
      if (!restart.ok) {
        return {
          ...restart,
          stderr: `${restart.stderr}restarting the engine (${restartCommand.join(' ')}) failed; ${daemonJsonPath} now has "bip": "${command.bip}"\n`,
        };
      }
      // The restart command may return before the old engine is gone: wait for the new bip.
      const deadline = performance.now() + timeoutMs;
      let seen = 'no answer';
      while (performance.now() < deadline) {
        try {
          await docker.ping();
          const bip = await engineBip();
          if (bip === command.bip) {
            return resultWithoutProcess(
              true,
              `${restart.stdout}wrote "bip": "${command.bip}" to ${daemonJsonPath}; the engine answers with it\n`,
              restart.stderr,
              started,
            );
          }
          seen = `bip ${bip ?? 'none'}`;
        } catch (error) {
          seen = describeError(error);
        }
        await sleep(pollIntervalMs);
      }
      return fail(`the engine did not come back with bip ${command.bip} within ${Math.round(timeoutMs / 1000)} s (last seen: ${seen}); see dockerd's log`);
    },
  };
}

function toObserved(n: NetworkInfo): ObservedDockerNetwork {
  const config = n.IPAM?.Config?.[0];
  return {
    id: n.Id,
    name: n.Name,
    subnet: config?.Subnet ?? null,
    gateway: config?.Gateway ?? null,
    labels: n.Labels ?? {},
    options: n.Options ?? {},
    containers: Object.keys(n.Containers ?? {}).length,
  };
}

/** What keeps an existing network from being the one asked for, or null. */
export function networkDifference(
  existing: Pick<ObservedDockerNetwork, 'subnet' | 'gateway' | 'labels' | 'options'>,
  command: DockerNetworkCreate,
  labels: Record<string, string>,
): string | null {
  if (existing.labels[MANAGED_LABEL] !== 'true') return `it is not labelled ${MANAGED_LABEL}=true`;
  if (existing.subnet !== command.subnet || existing.gateway !== command.gateway) {
    return `its subnet is ${existing.subnet ?? 'none'} gateway ${existing.gateway ?? 'none'}, not ${command.subnet} gateway ${command.gateway}`;
  }
  // Newer engines add options of their own, so only the ones asked for are compared.
  for (const [kind, wanted, actual] of [
    ['option', command.options, existing.options],
    ['label', labels, existing.labels],
  ] as const) {
    for (const [key, value] of Object.entries(wanted)) {
      if (actual[key] !== value) return `its ${kind} ${key} is ${actual[key] === undefined ? 'unset' : `"${actual[key]}"`}, not "${value}"`;
    }
  }
  return null;
}

/** daemon.json as an object ({} when missing), or a message saying why it cannot be used. */
async function readDaemonJson(path: string): Promise<Record<string, unknown> | string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    return `cannot read ${path}: ${(error as Error).message}`;
  }
  if (text.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    return `${path} does not hold a JSON object; fix it by hand, crossdock will not overwrite it`;
  } catch (error) {
    return `${path} is not valid JSON (${(error as Error).message}); fix it by hand, crossdock will not overwrite it`;
  }
}

/** Temp file in the same directory, fsync, rename: readers see the old file or the new one. */
export async function writeFileAtomically(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const mode = await stat(path).then(
    (s) => s.mode & 0o7777,
    () => 0o644,
  );
  const temp = `${path}.crossdock-${randomBytes(4).toString('hex')}.tmp`;
  try {
    const file = await open(temp, 'wx', mode);
    try {
      await file.chmod(mode); // open() applied the umask
      await file.writeFile(text);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number }).statusCode;
}

function describeError(error: unknown): string {
  const e = error as { statusCode?: number; json?: { message?: string }; message?: string };
  const message = e.json?.message ?? e.message ?? String(error);
  return e.statusCode ? `${message} (HTTP ${e.statusCode})` : message;
}

function destroy(stream: NodeJS.ReadableStream): void {
  (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
}
