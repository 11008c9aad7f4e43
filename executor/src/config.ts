// Executor settings: flags first, then environment (DESIGN.md, Configuration).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MIN_INTERVAL_MS } from '@crossdock/shared';
import { parseFingerprint } from '@crossdock/shared/trust';
import type { Transport } from './agent.ts';
import { ControllerListError, parseControllerList } from './controllers.ts';

export interface ExecutorConfig {
  /** one controller, or a leader and its standbys in any order */
  controllerUrls: string[];
  token: string;
  dockerHost: string;
  transport: Transport;
  reconcileIntervalMs: number | undefined;
  daemonJsonPath: string;
  /** null: engine restarts (bip mode) are not allowed */
  engineRestartCommand: string[] | null;
  /** where the Docker IPAM plugin listens; null: not served */
  ipamSocket: string | null;
  /** the IPAM plugin's pools and addresses */
  ipamStateFile: string;
  /** the controller's CA, pinned by fingerprint (the join line's) and/or given as a file */
  caFingerprint: string | undefined;
  caFile: string | undefined;
}

export const DEFAULT_IPAM_SOCKET = '/run/docker/plugins/crossdock.sock';
export const DEFAULT_IPAM_STATE_FILE = '/var/lib/crossdock/ipam.json';

export class ConfigError extends Error {}

export const DEFAULT_ENGINE_RESTART_COMMAND = ['systemctl', 'restart', 'docker'];

export const USAGE = `usage: crossdock-executor --controller URL --token TOKEN [options]
  --controller URL[,URL...]        controller base URL (CROSSDOCK_CONTROLLER), e.g. http://10.0.0.5:7800; several
                                   comma-separated (a leader and its standbys): the executor attaches to the leader
  --token TOKEN                    this host's token (CROSSDOCK_TOKEN)
  --token-file PATH                read the token from a file instead (CROSSDOCK_TOKEN_FILE)
  --ca-fingerprint sha256:HEX      trust only a controller whose certificate chains to this CA (CROSSDOCK_CA_FINGERPRINT;
                                   the join line's)
  --ca-file PATH                   trust only the CA(s) in this PEM file (CROSSDOCK_CA_FILE; install saves the pinned CA
                                   as /etc/crossdock/ca.pem)
  --docker-host URL                Docker endpoint (DOCKER_HOST, default unix:///var/run/docker.sock)
  --transport auto|websocket|polling   (CROSSDOCK_TRANSPORT, default auto: WebSocket, polling if it fails)
  --reconcile-interval-ms N        how often to report state (default: what the controller says)
  --daemon-json PATH               Docker's daemon.json (CROSSDOCK_DAEMON_JSON, default /etc/docker/daemon.json)
  --allow-engine-restart           allow bip-mode subnets to rewrite daemon.json and restart dockerd
  --engine-restart-command JSON    argv that restarts dockerd (default ["systemctl","restart","docker"])
  --ipam-socket PATH|off           the Docker IPAM plugin "crossdock" (CROSSDOCK_IPAM_SOCKET, default ${DEFAULT_IPAM_SOCKET})
  --ipam-state PATH                its pools and addresses (CROSSDOCK_IPAM_STATE, default ${DEFAULT_IPAM_STATE_FILE})
  --help`;

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): ExecutorConfig | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        controller: { type: 'string' },
        token: { type: 'string' },
        'token-file': { type: 'string' },
        'ca-fingerprint': { type: 'string' },
        'ca-file': { type: 'string' },
        'docker-host': { type: 'string' },
        transport: { type: 'string' },
        'reconcile-interval-ms': { type: 'string' },
        'daemon-json': { type: 'string' },
        'allow-engine-restart': { type: 'boolean' },
        'engine-restart-command': { type: 'string' },
        'ipam-socket': { type: 'string' },
        'ipam-state': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}; see --help`);
  }
  if (values.help) return 'help';

  let controllerUrls: string[];
  try {
    controllerUrls = parseControllerList(values.controller ?? env.CROSSDOCK_CONTROLLER ?? '');
  } catch (error) {
    if (error instanceof ControllerListError) throw new ConfigError(error.message);
    throw error;
  }

  const tokenFile = values['token-file'] ?? env.CROSSDOCK_TOKEN_FILE;
  // A --token-file flag beats CROSSDOCK_TOKEN from the environment: flags first.
  let token = values.token ?? (values['token-file'] === undefined ? env.CROSSDOCK_TOKEN : undefined);
  if (!token && tokenFile) {
    try {
      token = readFileSync(tokenFile, 'utf8').trim();
    } catch (error) {
      throw new ConfigError(`cannot read the token file ${tokenFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  if (!token) throw new ConfigError('no host token given; pass --token (the token POST /v1/hosts returned) or set CROSSDOCK_TOKEN');

  const transport = (values.transport ?? env.CROSSDOCK_TRANSPORT ?? 'auto') as Transport;
  if (!['auto', 'websocket', 'polling'].includes(transport)) throw new ConfigError(`transport "${transport}" is unknown; use auto, websocket or polling`);

  const intervalText = values['reconcile-interval-ms'] ?? env.CROSSDOCK_RECONCILE_INTERVAL_MS;
  const reconcileIntervalMs = intervalText === undefined ? undefined : Number(intervalText);
  if (reconcileIntervalMs !== undefined && (!Number.isInteger(reconcileIntervalMs) || reconcileIntervalMs < MIN_INTERVAL_MS)) {
    throw new ConfigError(`reconcile interval "${intervalText}" must be a whole number of milliseconds, at least ${MIN_INTERVAL_MS}`);
  }

  const allowRestart = values['allow-engine-restart'] ?? env.CROSSDOCK_ALLOW_ENGINE_RESTART === 'true';
  const commandText = values['engine-restart-command'] ?? env.CROSSDOCK_ENGINE_RESTART_COMMAND;
  let engineRestartCommand: string[] | null = null;
  if (allowRestart) {
    engineRestartCommand = DEFAULT_ENGINE_RESTART_COMMAND;
    if (commandText !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(commandText);
      } catch {
        parsed = undefined;
      }
      if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((p) => typeof p === 'string')) {
        throw new ConfigError(`engine restart command must be a JSON array of strings, such as ["systemctl","restart","docker"]`);
      }
      engineRestartCommand = parsed as string[];
    }
  } else if (commandText !== undefined) {
    throw new ConfigError('--engine-restart-command needs --allow-engine-restart as well');
  }

  const ipamSocket = values['ipam-socket'] ?? env.CROSSDOCK_IPAM_SOCKET ?? DEFAULT_IPAM_SOCKET;
  if (ipamSocket !== 'off' && !ipamSocket.startsWith('/')) {
    throw new ConfigError(`IPAM socket "${ipamSocket}" must be an absolute path, such as ${DEFAULT_IPAM_SOCKET}, or off`);
  }
  // Docker looks for <plugin name>.sock: the file name is the driver's name (--ipam-driver).
  if (ipamSocket !== 'off' && !ipamSocket.endsWith('.sock')) {
    throw new ConfigError(`IPAM socket "${ipamSocket}" must end in .sock (Docker names the driver after the file: crossdock.sock is --ipam-driver crossdock)`);
  }
  const ipamStateFile = values['ipam-state'] ?? env.CROSSDOCK_IPAM_STATE ?? DEFAULT_IPAM_STATE_FILE;
  if (!ipamStateFile.startsWith('/')) throw new ConfigError(`IPAM state file "${ipamStateFile}" must be an absolute path, such as ${DEFAULT_IPAM_STATE_FILE}`);
  const caFingerprint = values['ca-fingerprint'] ?? env.CROSSDOCK_CA_FINGERPRINT ?? undefined;
  if (caFingerprint !== undefined && !parseFingerprint(caFingerprint)) {
    throw new ConfigError(`CA fingerprint "${caFingerprint}" is not sha256:<64 hex digits>; copy it from the join line (POST /v1/hosts answers it)`);
  }
  const caFile = values['ca-file'] ?? env.CROSSDOCK_CA_FILE ?? undefined;
  const plain = controllerUrls.find((u) => new URL(u).protocol === 'http:');
  if ((caFingerprint || caFile) && plain !== undefined) {
    throw new ConfigError(
      `controller URL ${plain} is plain http://, but a CA is pinned (--ca-fingerprint or --ca-file); use https://, or no pin for a controller with TLS off`,
    );
  }

  return {
    controllerUrls,
    caFingerprint: caFingerprint || undefined,
    caFile: caFile || undefined,
    token,
    dockerHost: values['docker-host'] ?? env.DOCKER_HOST ?? 'unix:///var/run/docker.sock',
    transport,
    reconcileIntervalMs,
    daemonJsonPath: values['daemon-json'] ?? env.CROSSDOCK_DAEMON_JSON ?? '/etc/docker/daemon.json',
    engineRestartCommand,
    ipamSocket: ipamSocket === 'off' ? null : ipamSocket,
    ipamStateFile,
  };
}
